#pragma once
// A restricted pickle reader for what torch.save, torch.jit.save and
// numpy.save write. It executes nothing: it builds plain values (None, bool,
// int, float, str, bytes, list, tuple, dict/OrderedDict), tensors through the
// known torch._utils rebuild functions, numpy arrays and scalars, and storages
// through a caller-supplied loader. Every other global (a class or function a
// pickle names) is refused with an error naming it; so is an object that
// would restore itself with its own code (__setstate__).
//
// Bounds, so that a small hostile file cannot exhaust memory or the stack:
// values are kept in an arena (no recursive destruction, no leaks through
// cycles), nesting is limited to 200 levels, and the values produced
// (shared references counted each time they are reached) are limited by the
// pickle's size.
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

struct UnpickleOptions {
  // TorchScript archives (data.pkl): objects of scripted classes
  // ("__torch__.<module>.<Class>") become dicts of their attributes with the
  // class name under the key "__class__", and torch.jit._pickle's typed-list
  // helpers are read. Off for torch.save files.
  bool torchscript = false;
};

// Reads one pickle starting at data[0]; *consumed receives the bytes used
// (through the STOP opcode). Storages with the same key are loaded once and
// shared, so tied weights and views keep sharing memory. `what` names the
// source in errors. numpy arrays become tensors (object arrays lists), numpy
// scalars numbers, argparse.Namespace a dict of its attributes.
c10::IValue unpickle_torch(const char* data, size_t size, const StorageLoader& load_storage,
                           const std::string& what, size_t* consumed = nullptr,
                           const UnpickleOptions& options = {});

}  // namespace kinema::io
