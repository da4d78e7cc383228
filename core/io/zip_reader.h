#pragma once
// Read-only access to the members of a zip archive (libzip over a memory
// mapping), shared by the .npz and torch.save readers. Every read is exact and
// CRC-checked; errors (c10::Error) name the archive and the member.
#include "core/io/mapped_file.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct zip;

namespace kinema::io {

class ZipReader {
 public:
  // The members together may inflate to at most this floor plus this many
  // times the archive's size (numpy and torch data rarely compress beyond
  // 10:1; deflate's physical limit is about 1032:1).
  static constexpr uint64_t kMaxInflatedFloor = uint64_t(256) << 20;
  static constexpr uint64_t kMaxInflatedRatio = 100;

  // `op` prefixes error messages (e.g. "load_npz").
  ZipReader(const std::string& path, const std::string& op);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  int64_t count() const { return static_cast<int64_t>(names_.size()); }
  const std::string& name(int64_t index) const { return names_.at(index); }
  uint64_t size(int64_t index) const { return sizes_.at(index); }
  int64_t find(const std::string& name) const;  // -1 when absent

  // Reads the whole member into dst (exactly size(index) bytes).
  void read(int64_t index, void* dst) const;
  std::string read(int64_t index) const;
  // Reads every member once, so damage anywhere is reported before a
  // less careful reader (LibTorch's) sees the archive.
  void verify_all() const;

  const std::string& path() const { return path_; }

 private:
  void check_size(int64_t index) const;

  std::string path_, op_;
  std::unique_ptr<MappedFile> file_;
  struct zip* archive_ = nullptr;
  std::vector<std::string> names_;
  std::vector<uint64_t> sizes_;
};

}  // namespace kinema::io
