#pragma once
// A restricted pickle reader for what torch.save writes. It executes nothing:
// it builds plain values (None, bool, int, float, str, bytes, list, tuple,
// dict/OrderedDict), tensors through the known torch._utils rebuild functions
// and storages through a caller-supplied loader; any other class becomes an
// opaque placeholder (a string "<object module.Name>") so that checkpoints
// holding e.g. an argparse.Namespace still yield their tensors.
//
// Written because LibTorch 1.13's own unpickler (torch::jit::pickle_load)
// turns every collections.OrderedDict into None — so it cannot read a
// state_dict — and aborts the process on some corrupt inputs.
#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <string>

namespace kinema::io {

struct StorageRequest {
  std::string key;       // the record name (zip: "<archive>/data/<key>")
  at::ScalarType dtype;  // from the storage class (torch.FloatStorage -> float32)
  int64_t numel;         // elements
  std::string location;  // "cpu", "cuda:0", ... (tensors are always loaded to CPU)
};
// Returns a CPU storage of exactly numel * itemsize bytes.
using StorageLoader = std::function<at::Storage(const StorageRequest&)>;

// Reads one pickle starting at data[0]; *consumed receives the bytes used
// (through the STOP opcode). Storages with the same key are loaded once and
// shared, so tied weights and views keep sharing memory. `what` names the
// source in errors.
c10::IValue unpickle_torch(const char* data, size_t size, const StorageLoader& load_storage,
                           const std::string& what, size_t* consumed = nullptr);

}  // namespace kinema::io
