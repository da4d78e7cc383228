#pragma once
// A read-only memory mapping of a whole file (RAII). Loaders parse straight
// from the mapping and copy tensor bytes out, so nothing outlives it.
#include <cstddef>
#include <string>

namespace kinema::io {

class MappedFile {
 public:
  // Errors (c10::Error) name the path and the errno text. An empty file maps to
  // data() == nullptr, size() == 0.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kinema::io
