#include "core/io/zip_reader.h"

#include <c10/util/Exception.h>
#include <zip.h>

namespace kinema::io {

ZipReader::ZipReader(const std::string& path, const std::string& op)
    : path_(path), op_(op), file_(std::make_unique<MappedFile>(path)) {
  // 22 bytes: the end-of-central-directory record every zip archive ends with.
  TORCH_CHECK(file_->size() >= 22, "kinema::io::", op_, ": '", path_,
              "' is not a valid zip archive: too short (", file_->size(), " bytes)");
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(file_->data(), file_->size(), 0, &err);
  if (src) archive_ = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!archive_) {
    if (src) zip_source_free(src);
    const std::string text = zip_error_strerror(&err);
    zip_error_fini(&err);
    TORCH_CHECK(false, "kinema::io::", op_, ": '", path_, "' is not a valid zip archive: ", text);
  }
  zip_error_fini(&err);
  const zip_int64_t n = zip_get_num_entries(archive_, 0);
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive_, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !st.name ||
        !(st.valid & ZIP_STAT_SIZE)) {
      const std::string text = zip_strerror(archive_);
      zip_discard(archive_);
      TORCH_CHECK(false, "kinema::io::", op_, ": '", path_, "': cannot read entry ", i, ": ", text);
    }
    names_.emplace_back(st.name);
    sizes_.push_back(st.size);
    total += st.size;
  }
  // Members may overlap in the file (a zip bomb): bound what the whole archive
  // may inflate to by the file's size, not only each member.
  const uint64_t limit = kMaxInflatedFloor + kMaxInflatedRatio * uint64_t(file_->size());
  if (total > limit) {
    zip_discard(archive_);
    archive_ = nullptr;
    TORCH_CHECK(false, "kinema::io::", op_, ": '", path_, "': members inflate to ", total,
                " bytes, more than ", limit, " for a ", file_->size(),
                "-byte archive (", kMaxInflatedFloor >> 20, " MiB + ", kMaxInflatedRatio,
                " x its size); refusing a likely zip bomb");
  }
}

ZipReader::~ZipReader() {
  if (archive_) zip_discard(archive_);
}

int64_t ZipReader::find(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int64_t>(i);
  return -1;
}

void ZipReader::check_size(int64_t index) const {
  // A member claiming far more bytes than the archive could inflate to is
  // damage, not a reason to allocate (deflate stays below ~1032:1).
  TORCH_CHECK(sizes_.at(index) <= uint64_t(file_->size()) * 1100 + 1024, "kinema::io::", op_,
              ": '", path_, ":", names_.at(index), "': implausible size ", sizes_.at(index));
}

void ZipReader::read(int64_t index, void* dst) const {
  check_size(index);
  const std::string& member = names_.at(index);
  const uint64_t size = sizes_.at(index);
  zip_file_t* f = zip_fopen_index(archive_, static_cast<zip_uint64_t>(index), 0);
  TORCH_CHECK(f, "kinema::io::", op_, ": '", path_, ":", member,
              "': cannot open member: ", zip_strerror(archive_));
  uint64_t got = 0;
  std::string problem;
  char* out = static_cast<char*>(dst);
  while (problem.empty()) {
    // Reading one byte past the end makes libzip check the CRC.
    char spare;
    const bool at_end = got == size;
    const zip_int64_t r = at_end ? zip_fread(f, &spare, 1) : zip_fread(f, out + got, size - got);
    if (r < 0) problem = std::string("corrupt member: ") + zip_file_strerror(f);
    else if (r == 0) break;
    else if (at_end) problem = "member longer than its directory entry";
    else got += static_cast<uint64_t>(r);
  }
  zip_fclose(f);
  TORCH_CHECK(problem.empty(), "kinema::io::", op_, ": '", path_, ":", member, "': ", problem);
  TORCH_CHECK(got == size, "kinema::io::", op_, ": '", path_, ":", member, "': truncated (", got,
              " of ", size, " bytes)");
}

std::string ZipReader::read(int64_t index) const {
  check_size(index);
  std::string out(sizes_.at(index), '\0');
  read(index, out.data());
  return out;
}

void ZipReader::verify_all() const {
  for (int64_t i = 0; i < count(); ++i) (void)read(i);
}

}  // namespace kinema::io
