#include "core/io/safetensors.h"

#include "core/io/atomic_file.h"
#include "core/io/mapped_file.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kinema::io assumes a little-endian host"
#endif

namespace kinema::io {
namespace {

// The reference's largest accepted header.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t itemsize;
  int alignment_rank;  // position in the reference's dtype enum: writers sort by it, descending
};

const DtypeInfo kDtypes[] = {
    {"BOOL", at::kBool, 1, 0},       {"U8", at::kByte, 1, 1},     {"I8", at::kChar, 1, 2},
    {"I16", at::kShort, 2, 5},       {"F16", at::kHalf, 2, 7},    {"BF16", at::kBFloat16, 2, 8},
    {"I32", at::kInt, 4, 9},         {"F32", at::kFloat, 4, 11},  {"F64", at::kDouble, 8, 12},
    {"I64", at::kLong, 8, 13},
};
// Dtypes the format defines but LibTorch 1.13 cannot hold.
const char* const kUnsupportedDtypes[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// Validates every tensor first (so nothing is written for bad input) and
// returns them in the reference writer's order with their packed offsets.
std::vector<Entry> plan(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<Entry> entries;
  for (const auto& [name, t] : tensors) {
    TORCH_CHECK(name != "__metadata__", "kinema::io::save_safetensors: '", path,
                "': '__metadata__' is reserved and cannot name a tensor");
    TORCH_CHECK(t.defined(), "kinema::io::save_safetensors: '", path, "': tensor '", name,
                "' is undefined");
    const DtypeInfo* d = dtype_by_type(t.scalar_type());
    TORCH_CHECK(d, "kinema::io::save_safetensors: '", path, "': tensor '", name, "' has dtype ",
                t.scalar_type(), ", which safetensors cannot store");
    TORCH_CHECK(t.layout() == at::kStrided, "kinema::io::save_safetensors: '", path,
                "': tensor '", name, "' is not dense (layout ", t.layout(), ")");
    entries.push_back({name, d, t.sizes().vec(), 0, 0});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.dtype->alignment_rank != b.dtype->alignment_rank)
      return a.dtype->alignment_rank > b.dtype->alignment_rank;
    return a.name < b.name;
  });
  uint64_t offset = 0;
  for (auto& e : entries) {
    const uint64_t n = static_cast<uint64_t>(tensors.at(e.name).numel()) * e.dtype->itemsize;
    e.begin = offset;
    e.end = offset + n;
    offset = e.end;
  }
  return entries;
}

std::string header_bytes(const std::vector<Entry>& entries,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const auto& e : entries) {
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["dtype"] = e.dtype->name;
    info["shape"] = e.shape;
    info["data_offsets"] = {e.begin, e.end};
    header[e.name] = std::move(info);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

[[noreturn]] void bad(const std::string& what, const std::string& problem) {
  TORCH_CHECK(false, "kinema::io::load_safetensors: '", what, "': ", problem);
}

uint64_t as_offset(const nlohmann::json& v, const std::string& what, const std::string& name) {
  if (!v.is_number_unsigned()) bad(what, "tensor '" + name + "': data_offsets must be two non-negative integers");
  return v.get<uint64_t>();
}

}  // namespace

const at::Tensor* SafetensorsContent::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::map<std::string, at::Tensor> SafetensorsContent::to_map() const {
  return std::map<std::string, at::Tensor>(tensors.begin(), tensors.end());
}

std::string safetensors_header(const std::map<std::string, at::Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  return header_bytes(plan("<memory>", tensors, metadata), metadata);
}

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::vector<Entry> entries = plan(path, tensors, metadata);
  const std::string header = header_bytes(entries, metadata);
  AtomicFile file(path);
  file.write(header);
  for (const auto& e : entries) {
    // One CPU copy at a time keeps peak memory at one tensor beyond the model.
    const at::Tensor t = tensors.at(e.name).to(at::kCPU).contiguous();
    const size_t n = e.end - e.begin;
    if (n > 0) file.write(t.data_ptr(), n);
  }
  file.commit();
}

SafetensorsContent parse_safetensors(const void* data, size_t size, const std::string& what) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size < 8) bad(what, "file too short (" + std::to_string(size) + " bytes) for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  if (n > size - 8)
    bad(what, "header length " + std::to_string(n) + " is beyond the file size " + std::to_string(size));
  if (n > kMaxHeaderSize) bad(what, "header length " + std::to_string(n) + " exceeds 100 MB");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  if (n == 0 || text[0] != '{') bad(what, "header is not a JSON object");

  // Duplicate top-level names would silently overwrite each other in the parse.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + n, on_event);
  } catch (const nlohmann::json::exception& e) {
    bad(what, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) bad(what, "duplicate tensor name '" + duplicate + "' in the header");
  if (!header.is_object()) bad(what, "header is not a JSON object");

  SafetensorsContent out;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) bad(what, "__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) bad(what, "__metadata__ value for '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!info.is_object()) bad(what, where + ": entry is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string())
      bad(what, where + ": missing or non-string 'dtype'");
    const std::string dtype_name = info["dtype"].get<std::string>();
    const DtypeInfo* d = dtype_by_name(dtype_name);
    if (!d) {
      const bool known = std::find_if(std::begin(kUnsupportedDtypes), std::end(kUnsupportedDtypes),
                                      [&](const char* u) { return dtype_name == u; }) !=
                         std::end(kUnsupportedDtypes);
      bad(what, where + ": " + (known ? "dtype '" + dtype_name + "' has no LibTorch equivalent"
                                      : "unknown dtype '" + dtype_name + "'"));
    }
    if (!info.contains("shape") || !info["shape"].is_array())
      bad(what, where + ": missing or non-array 'shape'");
    Entry e{name, d, {}, 0, 0};
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned()) bad(what, where + ": shape entries must be non-negative integers");
      const uint64_t v = dim.get<uint64_t>();
      if (v > uint64_t(std::numeric_limits<int64_t>::max())) overflow = true;
      else if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v / 8) overflow = true;
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    if (overflow) bad(what, where + ": shape overflows");
    const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : nlohmann::json();
    if (!offsets.is_array() || offsets.size() != 2)
      bad(what, where + ": 'data_offsets' must be [begin, end]");
    e.begin = as_offset(offsets[0], what, name);
    e.end = as_offset(offsets[1], what, name);
    if (e.end < e.begin) bad(what, where + ": data_offsets end before they begin");
    const uint64_t expected = numel * d->itemsize;
    if (e.end - e.begin != expected)
      bad(what, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] span " + std::to_string(e.end - e.begin) + " bytes but dtype " + dtype_name +
                    " and shape " + c10::str(c10::IntArrayRef(e.shape)) + " need " +
                    std::to_string(expected));
    entries.push_back(std::move(e));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = size - 8 - n;
  uint64_t cursor = 0;
  for (const auto& e : entries) {
    if (e.begin < cursor) bad(what, "tensor '" + e.name + "' overlaps the tensor before it");
    if (e.begin > cursor) bad(what, "gap before tensor '" + e.name + "' (data must be packed)");
    if (e.end > data_size)
      bad(what, "truncated: tensor '" + e.name + "' ends at byte " + std::to_string(e.end) +
                    " of the data section, which has only " + std::to_string(data_size));
    cursor = e.end;
  }
  if (cursor != data_size)
    bad(what, std::to_string(data_size - cursor) + " trailing bytes after the last tensor");

  const unsigned char* base = bytes + 8 + n;
  out.tensors.reserve(entries.size());
  for (const auto& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), base + e.begin, e.end - e.begin);
    // Bytes other than 0/1 in a BOOL tensor are not valid C++ bools; normalise.
    if (e.dtype->type == at::kBool) t = t.view(at::kByte).ne(0);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

SafetensorsContent load_safetensors(const std::string& path) {
  MappedFile file(path);
  return parse_safetensors(file.data(), file.size(), path);
}

}  // namespace kinema::io
