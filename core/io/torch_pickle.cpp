#include "core/io/torch_pickle.h"

#include "core/io/mapped_file.h"
#include "core/io/unpickler.h"
#include "core/io/zip_reader.h"
#include "ops/torch_compat.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstring>
#include <map>
#include <set>

namespace kinema::io {
namespace {

// The legacy format opens with a protocol-2 pickle of the magic number
// 0x1950a86a20f9469cfc6c: PROTO 2, LONG1 10 bytes, STOP.
constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                          0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

bool starts_with_zip(const MappedFile& file) {
  return file.size() >= 4 && std::memcmp(file.data(), "PK\x03\x04", 4) == 0;
}

at::Storage allocate_storage(size_t nbytes) {
  return at::Storage(c10::Storage::use_byte_size_t(), nbytes, c10::GetDefaultCPUAllocator(),
                     /*resizable=*/false);
}

// c10::Error carries a C++ backtrace in what(); users need only the message.
std::string short_message(const std::exception& e) {
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->msg();
  return e.what();
}

// The archive's records live under one top-level folder (named after the file
// by torch.save, "archive" by others); returns it with its '/' or "" if absent.
bool find_record_prefix(const ZipReader& zip, const std::string& record, std::string* prefix) {
  for (int64_t i = 0; i < zip.count(); ++i) {
    const std::string& name = zip.name(i);
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash + 1, std::string::npos, record) == 0) {
      *prefix = name.substr(0, slash + 1);
      return true;
    }
  }
  return false;
}

c10::IValue load_zip_object(const std::string& path, const ZipReader& zip) {
  std::string prefix;
  TORCH_CHECK(!find_record_prefix(zip, "constants.pkl", &prefix), "kinema::io::load_pt: '", path,
              "' is a TorchScript archive; use load_torchscript");
  TORCH_CHECK(find_record_prefix(zip, "data.pkl", &prefix), "kinema::io::load_pt: '", path,
              "' is a zip archive without data.pkl, not a torch.save file");
  const std::string pickle = zip.read(zip.find(prefix + "data.pkl"));
  auto load_storage = [&](const StorageRequest& r) {
    const std::string record = prefix + "data/" + r.key;
    const int64_t index = zip.find(record);
    TORCH_CHECK(index >= 0, "kinema::io::load_pt: '", path, "': storage record '", record,
                "' is missing");
    const size_t nbytes = static_cast<size_t>(r.numel) * c10::elementSize(r.dtype);
    TORCH_CHECK(zip.size(index) == nbytes, "kinema::io::load_pt: '", path, "': storage record '",
                record, "' has ", zip.size(index), " bytes, expected ", nbytes);
    at::Storage storage = allocate_storage(nbytes);
    if (nbytes) zip.read(index, compat::mutable_data(storage));
    return storage;
  };
  try {
    return unpickle_torch(pickle.data(), pickle.size(), load_storage, path + ":" + prefix + "data.pkl");
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "kinema::io::load_pt: ", e.msg());
  }
}

// Legacy layout: pickles of the magic number, the protocol version and system
// info, then the object, then the list of storage keys; then per key the
// element count (int64 little-endian) and the raw bytes.
c10::IValue load_legacy_object(const std::string& path, const MappedFile& file) {
  const char* data = reinterpret_cast<const char*>(file.data());
  const size_t size = file.size();
  size_t pos = sizeof(kLegacyMagic);
  auto no_storage = [&](const StorageRequest&) -> at::Storage {
    TORCH_CHECK(false, "kinema::io::load_pt: '", path, "': storage in a header pickle");
  };
  std::map<std::string, std::pair<at::Storage, StorageRequest>> storages;
  auto allocate = [&](const StorageRequest& r) {
    const size_t itemsize = c10::elementSize(r.dtype);
    TORCH_CHECK(static_cast<uint64_t>(r.numel) <= size / itemsize, "kinema::io::load_pt: '", path,
                "': storage '", r.key, "' is larger than the file");
    at::Storage storage = allocate_storage(static_cast<size_t>(r.numel) * itemsize);
    storages.emplace(r.key, std::make_pair(storage, r));
    return storage;
  };
  size_t used = 0;
  try {
    const c10::IValue protocol = unpickle_torch(data + pos, size - pos, no_storage, path, &used);
    pos += used;
    TORCH_CHECK(protocol.isInt() && protocol.toInt() == 1001, "'", path,
                "': unknown legacy protocol version");
    unpickle_torch(data + pos, size - pos, no_storage, path, &used);  // system info
    pos += used;
    c10::IValue object = unpickle_torch(data + pos, size - pos, allocate, path, &used);
    pos += used;
    const c10::IValue keys = unpickle_torch(data + pos, size - pos, no_storage, path, &used);
    pos += used;
    TORCH_CHECK(keys.isList(), "'", path, "': storage key list missing");
    for (const c10::IValue& key : keys.toListRef()) {
      TORCH_CHECK(key.isString(), "'", path, "': storage keys must be strings");
      auto it = storages.find(key.toStringRef());
      TORCH_CHECK(it != storages.end(), "'", path, "': data for unknown storage '",
                  key.toStringRef(), "'");
      TORCH_CHECK(size - pos >= 8, "'", path, "': truncated storage data");
      int64_t numel = 0;
      std::memcpy(&numel, data + pos, 8);
      pos += 8;
      at::Storage& storage = it->second.first;
      TORCH_CHECK(numel == it->second.second.numel, "'", path, "': storage '", key.toStringRef(),
                  "' holds ", numel, " elements, expected ", it->second.second.numel);
      TORCH_CHECK(size - pos >= storage.nbytes(), "'", path, "': truncated storage data");
      if (storage.nbytes()) std::memcpy(compat::mutable_data(storage), data + pos, storage.nbytes());
      pos += storage.nbytes();
      storages.erase(it);
    }
    TORCH_CHECK(storages.empty(), "'", path, "': storage data missing for '",
                storages.empty() ? "" : storages.begin()->first, "'");
    return object;
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "kinema::io::load_pt: ", e.msg());
  }
}

}  // namespace

bool is_legacy_torch_save(const void* data, size_t size) {
  return size >= sizeof(kLegacyMagic) && std::memcmp(data, kLegacyMagic, sizeof(kLegacyMagic)) == 0;
}

c10::IValue load_pt_object(const std::string& path) {
  MappedFile file(path);
  if (is_legacy_torch_save(file.data(), file.size())) return load_legacy_object(path, file);
  TORCH_CHECK(starts_with_zip(file), "kinema::io::load_pt: '", path,
              "' is not a PyTorch file (neither a zip archive nor the legacy format; ",
              file.size(), " bytes)");
  ZipReader zip(path, "load_pt");
  return load_zip_object(path, zip);
}

NamedTensors flatten_tensors(const c10::IValue& value, const std::string& prefix) {
  NamedTensors out;
  std::function<void(const c10::IValue&, const std::string&)> visit =
      [&](const c10::IValue& v, const std::string& name) {
        auto child = [&](const std::string& key) { return name.empty() ? key : name + "." + key; };
        if (v.isTensor()) {
          out.emplace_back(name, v.toTensor());
        } else if (v.isGenericDict()) {
          for (const auto& item : v.toGenericDict()) {
            const c10::IValue& key = item.key();
            if (key.isString()) visit(item.value(), child(key.toStringRef()));
            else if (key.isInt()) visit(item.value(), child(std::to_string(key.toInt())));
          }
        } else if (v.isList()) {
          const auto list = v.toListRef();
          for (size_t i = 0; i < list.size(); ++i) visit(list[i], child(std::to_string(i)));
        } else if (v.isTuple()) {
          const auto& elements = v.toTupleRef().elements();
          for (size_t i = 0; i < elements.size(); ++i) visit(elements[i], child(std::to_string(i)));
        }
      };
  visit(value, prefix);
  return out;
}

NamedTensors load_pt(const std::string& path) {
  {
    MappedFile file(path);
    if (starts_with_zip(file)) {
      ZipReader zip(path, "load_pt");
      std::string prefix;
      if (find_record_prefix(zip, "constants.pkl", &prefix)) return load_torchscript(path);
    }
  }
  return flatten_tensors(load_pt_object(path));
}

namespace {

// The parameter and buffer names of each scripted class, read from the
// archive's code/ folder: every class is written there as text, e.g.
//   code/__torch__/torch/nn/modules/linear.py:
//   class Linear(Module):
//     __parameters__ = ["weight", "bias", ]
//     __buffers__ = []
// Only these declarations are read; the code itself is never compiled or run.
struct ScriptClass {
  bool is_module = false;
  std::set<std::string> parameters, buffers;
};

std::vector<std::string> quoted_names(const std::string& line) {
  std::vector<std::string> out;
  size_t at = line.find('[');
  while (at != std::string::npos) {
    const size_t open = line.find('"', at);
    if (open == std::string::npos) break;
    const size_t close = line.find('"', open + 1);
    if (close == std::string::npos) break;
    out.push_back(line.substr(open + 1, close - open - 1));
    at = close + 1;
  }
  return out;
}

std::map<std::string, ScriptClass> script_classes(const ZipReader& zip, const std::string& prefix) {
  std::map<std::string, ScriptClass> classes;
  const std::string code = prefix + "code/";
  for (int64_t i = 0; i < zip.count(); ++i) {
    const std::string& name = zip.name(i);
    if (name.compare(0, code.size(), code) != 0 || name.size() < code.size() + 3 ||
        name.compare(name.size() - 3, 3, ".py") != 0)
      continue;
    std::string module = name.substr(code.size(), name.size() - code.size() - 3);
    for (char& c : module) c = c == '/' ? '.' : c;
    const std::string text = zip.read(i);
    ScriptClass* current = nullptr;
    size_t begin = 0;
    while (begin < text.size()) {
      size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(begin, end - begin);
      begin = end + 1;
      if (line.compare(0, 6, "class ") == 0) {
        const size_t stop = line.find_first_of("(:", 6);
        current = &classes[module + "." + line.substr(6, stop == std::string::npos ? std::string::npos : stop - 6)];
        current->is_module = line.find("(Module)") != std::string::npos;
      } else if (current && line.compare(0, 19, "  __parameters__ = ") == 0) {
        for (auto& n : quoted_names(line)) current->parameters.insert(n);
      } else if (current && line.compare(0, 16, "  __buffers__ = ") == 0) {
        for (auto& n : quoted_names(line)) current->buffers.insert(n);
      } else if (!line.empty() && line[0] != ' ') {
        current = nullptr;  // a top-level function or statement ends the class
      }
    }
  }
  return classes;
}

// Depth-first over the module tree in attribute order, like
// torch::jit::Module::named_parameters / named_buffers.
void collect_script_tensors(const c10::IValue& object, const std::string& prefix,
                            const std::map<std::string, ScriptClass>& classes, bool buffers,
                            const std::string& path, int depth, NamedTensors* out) {
  TORCH_CHECK(depth < 100, "kinema::io::load_torchscript: '", path, "': modules nested too deep");
  const auto dict = object.toGenericDict();
  const std::string& class_name = dict.at(c10::IValue("__class__")).toStringRef();
  auto it = classes.find(class_name);
  TORCH_CHECK(it != classes.end(), "kinema::io::load_torchscript: '", path, "': class '", class_name,
              "' has no definition under code/");
  const std::set<std::string>& wanted = buffers ? it->second.buffers : it->second.parameters;
  for (const auto& entry : dict) {
    if (!entry.key().isString()) continue;
    const std::string& key = entry.key().toStringRef();
    const c10::IValue& value = entry.value();
    if (key == "__class__") continue;
    if (wanted.count(key)) {
      if (value.isNone()) continue;  // e.g. Linear(bias=False)
      TORCH_CHECK(value.isTensor(), "kinema::io::load_torchscript: '", path, "': ",
                  buffers ? "buffer '" : "parameter '", prefix + key, "' is not a tensor");
      out->emplace_back(prefix + key, value.toTensor());
    } else if (value.isGenericDict()) {
      const auto child = value.toGenericDict();
      auto tag = child.find(c10::IValue("__class__"));
      if (tag == child.end()) continue;
      auto child_class = classes.find(tag->value().toStringRef());
      if (child_class != classes.end() && child_class->second.is_module)
        collect_script_tensors(value, prefix + key + ".", classes, buffers, path, depth + 1, out);
    }
  }
}

NamedTensors load_torchscript_running_code(const std::string& path, const MappedFile& file) {
  NamedTensors out;
  std::string problem;
  try {
    auto adapter = std::make_shared<caffe2::serialize::MemoryReadAdapter>(file.data(), file.size());
    torch::jit::Module module = torch::jit::load(adapter, at::Device(at::kCPU));
    for (const auto& p : module.named_parameters(/*recurse=*/true))
      out.emplace_back(p.name, p.value.detach());
    for (const auto& b : module.named_buffers(/*recurse=*/true))
      out.emplace_back(b.name, b.value.detach());
  } catch (const std::exception& e) {
    problem = short_message(e);
  }
  TORCH_CHECK(problem.empty(), "kinema::io::load_torchscript: cannot read '", path, "': ", problem);
  return out;
}

}  // namespace

NamedTensors load_torchscript(const std::string& path, bool run_code) {
  MappedFile file(path);
  TORCH_CHECK(!is_legacy_torch_save(file.data(), file.size()), "kinema::io::load_torchscript: '",
              path, "' is a torch.save file in the legacy format, not a TorchScript archive");
  TORCH_CHECK(starts_with_zip(file), "kinema::io::load_torchscript: '", path,
              "' is not a TorchScript archive (no zip signature)");
  ZipReader zip(path, "load_torchscript");
  std::string prefix;
  TORCH_CHECK(find_record_prefix(zip, "constants.pkl", &prefix), "kinema::io::load_torchscript: '",
              path, "' is not a TorchScript archive (no constants.pkl; a torch.save file?)");
  // LibTorch's reader is not hardened against damaged archives: check every
  // member (CRC, sizes) first.
  zip.verify_all();
  if (run_code) return load_torchscript_running_code(path, file);

  const int64_t data_index = zip.find(prefix + "data.pkl");
  TORCH_CHECK(data_index >= 0, "kinema::io::load_torchscript: '", path, "' has no ", prefix,
              "data.pkl (TorchScript archives older than PyTorch 1.4 are not read)");
  const std::string pickle = zip.read(data_index);
  auto load_storage = [&](const StorageRequest& r) {
    const std::string record = prefix + "data/" + r.key;
    const int64_t index = zip.find(record);
    TORCH_CHECK(index >= 0, "kinema::io::load_torchscript: '", path, "': storage record '", record,
                "' is missing");
    const size_t nbytes = static_cast<size_t>(r.numel) * c10::elementSize(r.dtype);
    TORCH_CHECK(zip.size(index) == nbytes, "kinema::io::load_torchscript: '", path,
                "': storage record '", record, "' has ", zip.size(index), " bytes, expected ", nbytes);
    at::Storage storage = allocate_storage(nbytes);
    if (nbytes) zip.read(index, compat::mutable_data(storage));
    return storage;
  };
  c10::IValue root;
  try {
    UnpickleOptions options;
    options.torchscript = true;
    root = unpickle_torch(pickle.data(), pickle.size(), load_storage, path + ":" + prefix + "data.pkl",
                          nullptr, options);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "kinema::io::load_torchscript: ", e.msg());
  }
  TORCH_CHECK(root.isGenericDict() && root.toGenericDict().contains(c10::IValue("__class__")),
              "kinema::io::load_torchscript: '", path, "': data.pkl does not hold a scripted module");
  const auto classes = script_classes(zip, prefix);
  NamedTensors out;
  collect_script_tensors(root, "", classes, /*buffers=*/false, path, 0, &out);
  collect_script_tensors(root, "", classes, /*buffers=*/true, path, 0, &out);
  return out;
}

}  // namespace kinema::io
