#include "core/io/npz.h"

#include "core/io/atomic_file.h"
#include "core/io/mapped_file.h"
#include "core/io/zip_reader.h"

#include <c10/util/Exception.h>
#include <zip.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <vector>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kinema::io assumes a little-endian host"
#endif

namespace kinema::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

// ---- the header: a Python dict literal --------------------------------------
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  bool has_descr = false, has_order = false, has_shape = false;
};

// A tiny parser for the literal numpy writes: {'descr': '<f4', 'fortran_order':
// False, 'shape': (2, 3), }. Anything else (e.g. a structured descr list) is an error.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  NpyHeader parse() {
    NpyHeader h;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        TORCH_CHECK(peek() == '\'' || peek() == '"', "kinema::io::load_npy: '", what_,
                    "': structured dtypes (descr ", rest(), ") are not supported");
        h.descr = parse_string();
        h.has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        h.has_order = true;
      } else if (key == "shape") {
        h.shape = parse_shape();
        h.has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    if (!h.has_descr || !h.has_order || !h.has_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) {
    TORCH_CHECK(false, "kinema::io::load_npy: '", what_, "': malformed header (", problem,
                ") in: ", s_);
  }
  std::string rest() const { return s_.substr(std::min(pos_, s_.size()), 40); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) return pos_ += 4, true;
    if (s_.compare(pos_, 5, "False") == 0) return pos_ += 5, false;
    fail("fortran_order is not True/False");
  }
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape entry is not an integer");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (int64_t{1} << 50)) fail("shape entry too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix
      shape.push_back(v);
      skip_space();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return shape;
  }

  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;
};

struct NpyType {
  at::ScalarType type;
  size_t itemsize;
  bool big_endian;
  bool is_bool;
  size_t swap_unit;  // complex values swap each of their two parts
};

NpyType decode_descr(const std::string& descr, const std::string& what) {
  TORCH_CHECK(descr.size() >= 2, "kinema::io::load_npy: '", what, "': bad dtype '", descr, "'");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  TORCH_CHECK(order == '<' || order == '>' || order == '|' || order == '=',
              "kinema::io::load_npy: '", what, "': bad byte-order in dtype '", descr, "'");
  TORCH_CHECK(kind != "O", "kinema::io::load_npy: '", what,
              "': object arrays (dtype '|O') are not supported (they need Python's pickle)");
  struct Entry {
    const char* kind;
    at::ScalarType type;
    size_t size;
  };
  static const Entry table[] = {
      {"f8", at::kDouble, 8}, {"f4", at::kFloat, 4}, {"f2", at::kHalf, 2},
      {"i8", at::kLong, 8},   {"i4", at::kInt, 4},   {"i2", at::kShort, 2},
      {"i1", at::kChar, 1},   {"u1", at::kByte, 1},  {"b1", at::kBool, 1},
      {"c8", at::kComplexFloat, 8}, {"c16", at::kComplexDouble, 16},
  };
  for (const auto& e : table) {
    if (kind == e.kind) {
      const bool is_complex = kind[0] == 'c';
      return {e.type, e.size, order == '>' && e.size > 1, e.type == at::kBool,
              is_complex ? e.size / 2 : e.size};
    }
  }
  TORCH_CHECK(false, "kinema::io::load_npy: '", what, "': unsupported dtype '", descr,
              "' (supported: f8 f4 f2 i8 i4 i2 i1 u1 b1 c8 c16, either byte order)");
}

void byte_swap(unsigned char* data, size_t bytes, size_t unit) {
  const size_t units = bytes / unit;
  for (size_t i = 0; i < units; ++i) std::reverse(data + i * unit, data + (i + 1) * unit);
}

uint32_t read_le(const unsigned char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}

const char* descr_of(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "<f8";
    case at::kFloat: return "<f4";
    case at::kHalf: return "<f2";
    case at::kLong: return "<i8";
    case at::kInt: return "<i4";
    case at::kShort: return "<i2";
    case at::kChar: return "|i1";
    case at::kByte: return "|u1";
    case at::kBool: return "|b1";
    case at::kComplexFloat: return "<c8";
    case at::kComplexDouble: return "<c16";
    default: return nullptr;
  }
}

}  // namespace

at::Tensor parse_npy(const void* data, size_t size, const std::string& what) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  TORCH_CHECK(size >= kMagicLen + 4 && std::memcmp(bytes, kMagic, kMagicLen) == 0,
              "kinema::io::load_npy: '", what, "' is not a .npy file (bad magic or too short)");
  const unsigned major = bytes[6];
  TORCH_CHECK(major >= 1 && major <= 3, "kinema::io::load_npy: '", what,
              "': unsupported format version ", major, ".", unsigned(bytes[7]));
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicLen + 2 + len_bytes;
  TORCH_CHECK(size >= prefix, "kinema::io::load_npy: '", what, "': truncated header");
  const size_t header_len = read_le(bytes + 8, len_bytes);
  TORCH_CHECK(header_len <= size - prefix, "kinema::io::load_npy: '", what, "': header length ",
              header_len, " exceeds the file size ", size);
  const std::string header_text(reinterpret_cast<const char*>(bytes + prefix), header_len);
  const NpyHeader header = HeaderParser(header_text, what).parse();
  const NpyType type = decode_descr(header.descr, what);

  int64_t count = 1;
  for (int64_t d : header.shape) {
    TORCH_CHECK(d == 0 || count <= (int64_t{1} << 53) / d, "kinema::io::load_npy: '", what,
                "': shape overflows");
    count *= d;
  }
  const size_t payload = size - prefix - header_len;
  const size_t expected = static_cast<size_t>(count) * type.itemsize;
  TORCH_CHECK(payload == expected, "kinema::io::load_npy: '", what, "': data has ", payload,
              " bytes, expected ", expected, " for dtype '", header.descr, "' and shape ",
              c10::IntArrayRef(header.shape), payload < expected ? " (truncated)" : "");

  // Fortran order stores the transposed array in C order.
  std::vector<int64_t> stored_shape = header.shape;
  if (header.fortran_order) std::reverse(stored_shape.begin(), stored_shape.end());
  const at::ScalarType load_type = type.is_bool ? at::kByte : type.type;
  at::Tensor t = at::empty(stored_shape, at::TensorOptions().dtype(load_type));
  if (expected > 0) {
    auto* out = static_cast<unsigned char*>(t.data_ptr());
    std::memcpy(out, bytes + prefix + header_len, expected);
    if (type.big_endian) byte_swap(out, expected, type.swap_unit);
  }
  // numpy may hold bytes other than 0/1 in a bool array; normalise them.
  if (type.is_bool) t = t.ne(0);
  if (header.fortran_order && t.dim() > 1) {
    std::vector<int64_t> perm(t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
    t = t.permute(perm).contiguous();
  }
  return t;
}

at::Tensor load_npy(const std::string& path) {
  MappedFile file(path);
  return parse_npy(file.data(), file.size(), path);
}

std::string serialize_npy(const at::Tensor& tensor, const std::string& what) {
  TORCH_CHECK(tensor.defined(), "kinema::io::save_npy: '", what, "': tensor is undefined");
  const char* descr = descr_of(tensor.scalar_type());
  TORCH_CHECK(descr, "kinema::io::save_npy: '", what, "': dtype ", tensor.scalar_type(),
              " has no NumPy equivalent");
  at::Tensor t = tensor.to(at::kCPU).contiguous();
  if (t.is_conj()) t = t.resolve_conj();
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (int64_t i = 0; i < t.dim(); ++i) {
    dict += std::to_string(t.size(i));
    if (t.dim() == 1 || i + 1 < t.dim()) dict += ",";
    if (i + 1 < t.dim()) dict += " ";
  }
  dict += "), }";
  // Pad with spaces so that magic + length + header (ending in '\n') is a multiple of 64.
  size_t total = kMagicLen + 2 + 2 + dict.size() + 1;
  const bool v2 = ((total + 63) / 64) * 64 - kMagicLen - 4 > 65535;
  if (v2) total += 2;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';

  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  const uint32_t hlen = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) out += static_cast<char>((hlen >> (8 * i)) & 0xff);
  out += dict;
  const size_t nbytes = t.numel() * t.element_size();
  if (nbytes > 0) out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  return out;
}

void save_npy(const std::string& path, const at::Tensor& tensor) {
  write_file_atomic(path, serialize_npy(tensor, path));
}

// ---- .npz ---------------------------------------------------------------------
namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};

std::string zip_error_text(zip_error_t* err) { return zip_error_strerror(err); }

}  // namespace

std::map<std::string, at::Tensor> load_npz(const std::string& path) {
  ZipReader archive(path, "load_npz");
  std::map<std::string, at::Tensor> out;
  for (int64_t i = 0; i < archive.count(); ++i) {
    const std::string& name = archive.name(i);
    if (!name.empty() && name.back() == '/') continue;  // directory entry
    std::string key = name;
    if (key.size() >= 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    TORCH_CHECK(!out.count(key), "kinema::io::load_npz: '", path, "': duplicate member '", key, "'");
    const std::string bytes = archive.read(i);
    out.emplace(key, parse_npy(bytes.data(), bytes.size(), path + ":" + name));
  }
  return out;
}

void save_npz(const std::string& path, const std::map<std::string, at::Tensor>& arrays,
              bool compress) {
  // Serialise every member first so a bad tensor fails before anything is written.
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& [name, tensor] : arrays) {
    TORCH_CHECK(!name.empty(), "kinema::io::save_npz: '", path, "': empty array name");
    members.emplace_back(name + ".npy", serialize_npy(tensor, path + ":" + name));
  }
  if (members.empty()) {
    // libzip writes nothing for an empty archive; numpy writes the bare
    // end-of-central-directory record.
    const std::string empty_zip = std::string("PK\x05\x06", 4) + std::string(18, '\0');
    write_file_atomic(path, empty_zip);
    return;
  }

  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* sink = zip_source_buffer_create(nullptr, 0, 0, &err);
  TORCH_CHECK(sink, "kinema::io::save_npz: '", path, "': ", zip_error_text(&err));
  zip_source_keep(sink);  // survives zip_close so the bytes can be read back
  std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> sink_owner(sink, zip_source_free);
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open_from_source(sink, ZIP_TRUNCATE, &err));
  TORCH_CHECK(archive, "kinema::io::save_npz: '", path, "': ", zip_error_text(&err));
  for (const auto& [name, bytes] : members) {
    zip_source_t* s = zip_source_buffer(archive.get(), bytes.data(), bytes.size(), 0);
    TORCH_CHECK(s, "kinema::io::save_npz: '", path, "': ", zip_strerror(archive.get()));
    const zip_int64_t index = zip_file_add(archive.get(), name.c_str(), s, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(s);
      TORCH_CHECK(false, "kinema::io::save_npz: '", path, "': adding '", name,
                  "' failed: ", zip_strerror(archive.get()));
    }
    TORCH_CHECK(zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index),
                                         compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) == 0,
                "kinema::io::save_npz: '", path, "': ", zip_strerror(archive.get()));
  }
  TORCH_CHECK(zip_close(archive.get()) == 0, "kinema::io::save_npz: '", path,
              "': building the archive failed: ", zip_strerror(archive.get()));
  archive.release();  // zip_close freed it

  zip_stat_t st;
  zip_stat_init(&st);
  TORCH_CHECK(zip_source_stat(sink, &st) == 0 && zip_source_open(sink) == 0,
              "kinema::io::save_npz: '", path, "': reading back the archive failed");
  std::string bytes(st.size, '\0');
  const zip_int64_t r = st.size ? zip_source_read(sink, bytes.data(), st.size) : 0;
  zip_source_close(sink);
  TORCH_CHECK(r == static_cast<zip_int64_t>(st.size), "kinema::io::save_npz: '", path,
              "': reading back the archive failed");
  write_file_atomic(path, bytes);
}

}  // namespace kinema::io
