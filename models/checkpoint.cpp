#include "models/checkpoint.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/torch.h>

#include "ops/torch_compat.h"

namespace kinema::models {
namespace {

using torch::autograd::variable_list;

// The autograd node standing in for the whole checkpointed segment.
struct CheckpointBackward : public torch::autograd::Node {
  CheckpointFn fn;
  at::Tensor input;
  bool restore_rng = false;
  at::Generator generator;
  at::Tensor rng_state;

  std::string name() const override { return "kinema::CheckpointBackward"; }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(input.defined(), "kinema::checkpoint: backward called twice on a checkpointed "
                "segment (its input was released after the first backward)");
    at::Tensor current_state;
    if (restore_rng) {
      current_state = generator.get_state();
      generator.set_state(rng_state);
    }
    at::Tensor x = input.detach().requires_grad_(true);
    at::Tensor y;
    {
      torch::AutoGradMode enable(true);
      y = fn(x);
    }
    if (restore_rng) generator.set_state(current_state);
    at::Tensor grad = grads[0].defined() ? grads[0] : at::zeros_like(y);
    torch::autograd::backward({y}, {grad});
    at::Tensor grad_x = x.grad();
    input.reset();  // the segment's memory is returned, as a non-retained graph would
    fn = nullptr;
    return {grad_x};
  }
};

}  // namespace

at::Tensor checkpoint(const CheckpointFn& fn, const at::Tensor& x, bool preserve_rng_state) {
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return fn(x);
  auto node = compat::make_autograd_node<CheckpointBackward>();
  node->fn = fn;
  node->input = x.detach();
  if (preserve_rng_state) {
    node->restore_rng = true;
    node->generator = at::globalContext().defaultGenerator(x.device());
    node->rng_state = node->generator.get_state();
  }
  at::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = fn(x);
  }
  if (y.is_same(x)) y = y.clone();  // never re-home the caller's tensor
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  torch::autograd::set_history(y, node);
  return y;
}

}  // namespace kinema::models
