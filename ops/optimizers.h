// Fused optimizer steps (kinema::adamw_, kinema::sgd_): argument checks and
// the per-tensor preparation shared by the CPU and CUDA backends. The update
// rules are torch.optim.AdamW / SGD's (see lua/kinema/optim.lua for the
// reference written with one ATen call per term).
#pragma once

#include "ops/checks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <vector>

namespace kinema::ops::detail {

// A hyper-parameter that must be a finite number in [low, high) (high
// exclusive only when high_open). NaN fails every comparison, so it is caught.
inline void check_hyper(const char* op, const char* arg, double value, double low, double high,
                        bool high_open) {
  const bool ok = std::isfinite(value) && value >= low && (high_open ? value < high : value <= high);
  TORCH_CHECK(ok, "kinema::", op, ": argument '", arg, "' must be in [", low, ", ", high,
              high_open ? ")" : "]", ", got ", value);
}

inline void check_adamw_hyper(double lr, double beta1, double beta2, double weight_decay,
                              double eps) {
  constexpr double inf = HUGE_VAL;
  check_hyper("adamw_", "lr", lr, 0.0, inf, true);
  check_hyper("adamw_", "beta1", beta1, 0.0, 1.0, true);
  check_hyper("adamw_", "beta2", beta2, 0.0, 1.0, true);
  check_hyper("adamw_", "weight_decay", weight_decay, 0.0, inf, true);
  check_hyper("adamw_", "eps", eps, 0.0, inf, true);
}

inline void check_sgd_hyper(double lr, double momentum, double dampening, double weight_decay,
                            bool nesterov) {
  constexpr double inf = HUGE_VAL;
  check_hyper("sgd_", "lr", lr, 0.0, inf, true);
  check_hyper("sgd_", "momentum", momentum, 0.0, inf, true);
  check_hyper("sgd_", "dampening", dampening, 0.0, inf, true);
  check_hyper("sgd_", "weight_decay", weight_decay, 0.0, inf, true);
  TORCH_CHECK(!nesterov || (momentum > 0 && dampening == 0),
              "kinema::sgd_: argument 'nesterov' needs momentum > 0 and dampening = 0");
}

// State dtype allowed for a parameter: its own, or float32 for bf16/fp16
// parameters (full-precision moments).
inline bool state_dtype_ok(at::ScalarType param, at::ScalarType state) {
  return state == param ||
         (state == at::kFloat && (param == at::kBFloat16 || param == at::kHalf));
}

// One list argument (name, tensors, whether it is optimizer state).
struct ListArg {
  const char* name;
  at::TensorList tensors;
  bool is_state;
};

// Every list as long as params; element i of each list defined, dense (not
// sparse), on params[0]'s device, with params[i]'s shape; grads in the
// parameter's dtype, state in an allowed one.
inline void check_lists(const char* op, at::TensorList params, std::initializer_list<ListArg> lists) {
  for (const ListArg& list : lists) {
    TORCH_CHECK(list.tensors.size() == params.size(), "kinema::", op, ": argument '", list.name,
                "' has ", list.tensors.size(), " tensors but 'params' has ", params.size());
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    TORCH_CHECK(p.defined(), "kinema::", op, ": argument 'params' element ", i, " is undefined");
    TORCH_CHECK(p.layout() == at::kStrided && at::isFloatingType(p.scalar_type()), "kinema::", op,
                ": argument 'params' element ", i, " must be a dense floating-point tensor, got ",
                p.scalar_type(), " ", p.layout());
    TORCH_CHECK(p.device() == params[0].device(), "kinema::", op, ": argument 'params' element ",
                i, " is on ", p.device(), " but element 0 is on ", params[0].device());
    for (const ListArg& list : lists) {
      const at::Tensor& t = list.tensors[i];
      TORCH_CHECK(t.defined(), "kinema::", op, ": argument '", list.name, "' element ", i,
                  " is undefined");
      TORCH_CHECK(t.layout() == at::kStrided, "kinema::", op, ": argument '", list.name,
                  "' element ", i, " must be a dense (strided) tensor, got ", t.layout());
      TORCH_CHECK(t.device() == p.device(), "kinema::", op, ": argument '", list.name,
                  "' element ", i, " is on ", t.device(), " but its parameter is on ", p.device());
      TORCH_CHECK(t.sizes() == p.sizes(), "kinema::", op, ": argument '", list.name, "' element ",
                  i, " has shape ", t.sizes(), " but its parameter has ", p.sizes());
      if (list.is_state) {
        TORCH_CHECK(state_dtype_ok(p.scalar_type(), t.scalar_type()), "kinema::", op,
                    ": argument '", list.name, "' element ", i, " has dtype ", t.scalar_type(),
                    " for a ", p.scalar_type(), " parameter");
      } else {
        TORCH_CHECK(t.scalar_type() == p.scalar_type(), "kinema::", op, ": argument '", list.name,
                    "' element ", i, " has dtype ", t.scalar_type(), " but its parameter has ",
                    p.scalar_type());
      }
    }
  }
}

// AdamW's step counters: one-element floating tensors on the CPU (as the Lua
// reference keeps them), incremented here; returns the new counts.
inline std::vector<double> advance_steps(at::TensorList steps, size_t count) {
  TORCH_CHECK(steps.size() == count, "kinema::adamw_: argument 'steps' has ", steps.size(),
              " tensors but 'params' has ", count);
  std::vector<double> values(count);
  for (size_t i = 0; i < count; ++i) {
    const at::Tensor& s = steps[i];
    TORCH_CHECK(s.defined() && s.numel() == 1 && s.device().is_cpu() &&
                    at::isFloatingType(s.scalar_type()),
                "kinema::adamw_: argument 'steps' element ", i,
                " must be a one-element floating-point CPU tensor");
    s.add_(1);
    values[i] = s.item<double>();
  }
  return values;
}

// Every argument check of adamw_, the same on each backend; advances the step
// counters and returns their new values.
inline std::vector<double> check_adamw_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                                            at::TensorList exp_avg_sqs, at::TensorList steps, double lr,
                                            double beta1, double beta2, double weight_decay, double eps) {
  check_adamw_hyper(lr, beta1, beta2, weight_decay, eps);
  check_lists("adamw_", params,
              {{"grads", grads, false}, {"exp_avgs", exp_avgs, true}, {"exp_avg_sqs", exp_avg_sqs, true}});
  return advance_steps(steps, params.size());
}

// Every argument check of sgd_, the same on each backend; returns whether the
// step uses momentum (buffers given).
inline bool check_sgd_args(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers, double lr,
                           double momentum, double dampening, double weight_decay, bool nesterov) {
  check_sgd_hyper(lr, momentum, dampening, weight_decay, nesterov);
  const bool with_momentum = momentum != 0;
  TORCH_CHECK(with_momentum || momentum_buffers.empty(),
              "kinema::sgd_: argument 'momentum_buffers' must be empty when momentum is 0");
  if (with_momentum) {
    check_lists("sgd_", params, {{"grads", grads, false}, {"momentum_buffers", momentum_buffers, true}});
  } else {
    check_lists("sgd_", params, {{"grads", grads, false}});
  }
  return with_momentum;
}

// A tensor and the memory a kernel walks for it: `work` is `original` when
// that is already laid out like the parameter's flat working layout, else a
// copy (written back by finish() when the kernel updates it).
struct Operand {
  at::Tensor original;
  at::Tensor work;

  void finish() const {
    if (!work.is_same(original)) original.copy_(work);
  }
};

// The flat layout of a parameter: itself when non-overlapping and dense (any
// stride order), else a contiguous copy.
inline Operand param_operand(const at::Tensor& p) {
  return {p, p.is_non_overlapping_and_dense() ? p : p.contiguous()};
}

// `t` in the layout of `layout` (same sizes and strides), so element k of
// both is at the same offset.
inline Operand operand_like(const at::Tensor& t, const at::Tensor& layout) {
  if (t.strides() == layout.strides() && t.is_non_overlapping_and_dense()) return {t, t};
  at::Tensor copy = at::empty_like(layout, layout.options().dtype(t.scalar_type()));
  copy.copy_(t);
  return {t, copy};
}

// In-place updates through raw pointers skip ADInplaceOrView: bump the
// version counters as an in-place ATen op would, so autograd still detects a
// use of a tensor saved before the step.
inline void bump_versions(at::TensorList tensors) {
  for (const at::Tensor& t : tensors) {
    if (!t.is_inference()) t.unsafeGetTensorImpl()->bump_version();
  }
}

}  // namespace kinema::ops::detail
