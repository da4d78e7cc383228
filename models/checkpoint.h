#pragma once
// Activation checkpointing for LibTorch 1.13, which has no
// torch.utils.checkpoint in C++. The forward runs without recording a graph;
// the backward re-runs `fn` with grad enabled (restoring the random-number
// state so dropout draws the same masks) and back-propagates through it.
//
// Like PyTorch's reentrant checkpoint, parameter gradients reach the parameters
// through a nested backward call, so they accumulate into .grad (loss.backward()
// works; torch::autograd::grad(..., inputs = parameters) does not see them).
#include <ATen/ATen.h>

#include <functional>

namespace kinema::models {

using CheckpointFn = std::function<at::Tensor(const at::Tensor&)>;

// Returns fn(x) while storing only x. When grad mode is off or x does not
// require grad, this is a plain call (nothing to recompute for).
at::Tensor checkpoint(const CheckpointFn& fn, const at::Tensor& x, bool preserve_rng_state = true);

}  // namespace kinema::models
