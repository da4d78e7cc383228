#include "core/io/atomic_file.h"

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

namespace kinema::io {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A name unlikely to collide across threads and processes; O_EXCL settles the rest.
std::string temp_name_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
         std::to_string(rng() % 1000000);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  TORCH_CHECK(!path_.empty(), "kinema::io::AtomicFile: empty path");
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_path_ = temp_name_for(path_);
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) {
    const int err = errno;
    TORCH_CHECK(false, "kinema::io: cannot write '", path_, "': creating temporary file '",
                temp_path_, "' failed: ", errno_text(err));
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) abort();
}

void AtomicFile::abort() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  TORCH_CHECK(fd_ >= 0 && !committed_, "kinema::io: write to '", path_,
              "' after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      abort();
      TORCH_CHECK(false, "kinema::io: writing '", path_, "' failed: ", errno_text(err));
    }
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  TORCH_CHECK(fd_ >= 0 && !committed_, "kinema::io: commit of '", path_,
              "' after commit or failure");
  auto fail = [this](const char* step) {
    const int err = errno;
    abort();
    TORCH_CHECK(false, "kinema::io: writing '", path_, "' failed (", step, "): ", errno_text(err));
  };
  if (::fsync(fd_) != 0) fail("fsync");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("rename");
  committed_ = true;
  // The rename is only durable once the directory entry is on disk. Failing to
  // sync the directory (e.g. on filesystems that refuse fsync on directories)
  // leaves a complete file in place, so it is not reported as an error.
  const std::string dir = directory_of(path_);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  AtomicFile file(path);
  file.write(data, size);
  file.commit();
}

}  // namespace kinema::io
