#pragma once
// PyTorch checkpoints: files written by Python's torch.save (the zip format,
// default since PyTorch 1.6, and the legacy format) and TorchScript archives
// (torch.jit.save), flattened to (name, tensor) lists.
//
// torch.save files are read by kinema's own restricted unpickler (unpickler.h):
// LibTorch 1.13's torch::jit::pickle_load turns collections.OrderedDict into
// None (so it fails on every state_dict) and aborts on some damaged inputs.
// Covered: state dicts (OrderedDict), nested dicts, lists/tuples, nn.Parameter,
// float64/32/16, bfloat16, int64/32/16/8, uint8, bool, complex, 0-d and empty
// tensors, tensors sharing one storage (tied weights and views keep sharing it)
// and non-contiguous views (strides kept), argparse.Namespace, numpy scalars
// and arrays. Any other Python class or function a pickle names is refused
// with an error naming it: nothing in a file is ever run.
// Not covered (clear errors): quantized/sparse tensors, pre-1.0 storage views.
//
// TorchScript archives (torch.jit.save; published CLIP checkpoints are such
// archives) are read the same way: data.pkl by the restricted unpickler, the
// tensors from data/, and which attributes are parameters or buffers from the
// class declarations under code/. Their code runs only when a caller asks
// for it explicitly (load_torchscript(path, /*run_code=*/true)).
#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <utility>
#include <vector>

namespace kinema::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The object torch.save wrote, as an IValue (dicts keep their order; unknown
// classes are refused). A TorchScript archive is refused here (use
// load_torchscript).
c10::IValue load_pt_object(const std::string& path);

// Tensors of `value` named by their path: dict keys joined with '.', list and
// tuple elements by index ("optimizer.momentum.0"). Non-tensor leaves (epoch
// counters, learning rates, strings) are skipped. Order: the container order.
NamedTensors flatten_tensors(const c10::IValue& value, const std::string& prefix = "");

// load_pt_object + flatten_tensors; for a TorchScript archive, its
// parameters and buffers (load_torchscript). A checkpoint {"model": sd, "epoch": 3}
// yields "model.<name>" entries; callers strip such prefixes as they need.
NamedTensors load_pt(const std::string& path);

// A TorchScript archive's parameters then buffers, with their module paths
// ("fc.weight", "norm.running_mean"), as a state dict, read without running
// any of the archive's code. run_code = true instead loads the module with
// torch::jit::load, which runs the archive's code (e.g. a class's
// __setstate__): only for archives from a trusted source that the restricted
// reader cannot read.
NamedTensors load_torchscript(const std::string& path, bool run_code = false);

// True when the bytes start like a torch.save file in the legacy (non-zip) format.
bool is_legacy_torch_save(const void* data, size_t size);

}  // namespace kinema::io
