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
// and non-contiguous views (strides kept). Unknown Python objects in a
// checkpoint (argparse.Namespace, numpy scalars) become placeholder strings.
// Not covered (clear errors): quantized/sparse tensors, pre-1.0 storage views.
// TorchScript archives go through torch::jit::load after a CRC check of every member.
#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <utility>
#include <vector>

namespace kinema::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The object torch.save wrote, as an IValue (dicts keep their order; unknown
// objects are strings "<object module.Name>"). A TorchScript archive is
// refused here (use load_torchscript).
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
// ("fc.weight", "norm.running_mean"), as a state dict of detached tensors.
NamedTensors load_torchscript(const std::string& path);

// True when the bytes start like a torch.save file in the legacy (non-zip) format.
bool is_legacy_torch_save(const void* data, size_t size);

}  // namespace kinema::io
