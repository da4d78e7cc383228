// The dicts numpy.save writes into object arrays, read by kinema::io's
// restricted unpickler (one pickle interpreter for the whole project), and an
// .npz member walk that hands numeric members to kinema::io::parse_npy.
#include "core/data/detections_pickle.h"

#include "core/io/npz.h"
#include "core/io/unpickler.h"
#include "core/io/zip_reader.h"

namespace kinema::data {

std::map<std::string, at::Tensor> unpickle_numpy_dict(const std::string& bytes, const std::string& what) {
  const io::StorageLoader no_storage = [&](const io::StorageRequest&) -> at::Storage {
    TORCH_CHECK(false, what, ": a torch storage in a numpy pickle");
  };
  c10::IValue root;
  try {
    root = io::unpickle_torch(bytes.data(), bytes.size(), no_storage, what);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, e.msg());  // without LibTorch's C++ backtrace
  }
  // numpy.save of a 0-d object array: the array's single element is the dict.
  if (root.isList() && root.toListRef().size() == 1) root = root.toListRef()[0];
  TORCH_CHECK(root.isGenericDict(), what, ": the pickled object is not a dict");
  std::map<std::string, at::Tensor> out;
  for (const auto& entry : root.toGenericDict()) {
    if (!entry.key().isString()) continue;
    const std::string& key = entry.key().toStringRef();
    const c10::IValue& value = entry.value();
    if (value.isInt()) out[key] = at::scalar_tensor(value.toInt(), at::kLong);
    else if (value.isBool()) out[key] = at::scalar_tensor(int64_t(value.toBool()), at::kLong);
    else if (value.isDouble()) out[key] = at::scalar_tensor(value.toDouble(), at::kDouble);
    else if (value.isTensor()) out[key] = value.toTensor();
    // strings (image_id) and other values are not needed
  }
  return out;
}

std::map<std::string, at::Tensor> load_npz_with_pickled_dicts(const std::string& path) {
  io::ZipReader archive(path, "load_npz");
  std::map<std::string, at::Tensor> out;
  for (int64_t i = 0; i < archive.count(); ++i) {
    std::string name = archive.name(i);
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0) continue;
    const std::string what = path + ":" + name;
    const std::string bytes = archive.read(i);
    name.resize(name.size() - 4);
    // .npy header: magic(6) version(2) header_len(2 or 4) header.
    TORCH_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, what, ": not a .npy member");
    const size_t len_bytes = bytes[6] == 1 ? 2 : 4;
    TORCH_CHECK(bytes.size() >= 8 + len_bytes, what, ": truncated .npy header");
    size_t header_len = 0;
    for (size_t k = len_bytes; k-- > 0;) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + k]);
    TORCH_CHECK(header_len <= bytes.size() - 8 - len_bytes, what, ": truncated .npy header");
    const size_t data_start = 8 + len_bytes + header_len;
    const std::string header = bytes.substr(8 + len_bytes, header_len);
    if (header.find("'|O'") != std::string::npos) {
      for (auto& [key, tensor] : unpickle_numpy_dict(bytes.substr(data_start), what)) {
        out[name + "." + key] = tensor;
      }
    } else {
      out[name] = io::parse_npy(bytes.data(), bytes.size(), what);
    }
  }
  return out;
}

}  // namespace kinema::data
