#pragma once
// Crash-safe file replacement: bytes go to a temporary file in the target's
// directory, which is fsynced and renamed over the target, then the directory
// is fsynced. A reader sees either the old file or the complete new one; on any
// failure (including an exception thrown by the code producing the bytes) the
// old file is untouched and the temporary file is removed.
//
// Errors are c10::Error whose message names the path and the errno text.
#include <cstddef>
#include <string>

namespace kinema::io {

class AtomicFile {
 public:
  // Creates the temporary file next to `path` (mode 0666 minus the umask).
  explicit AtomicFile(std::string path);
  // Not committed -> the temporary file is removed and the target is untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes (retries short writes and EINTR).
  void write(const void* data, size_t size);
  void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, fsync the directory. Call once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  size_t bytes_written() const { return written_; }

 private:
  void abort() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

// One-shot form: the whole content at once.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace kinema::io
