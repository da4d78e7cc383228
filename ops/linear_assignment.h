// linear_assignment: argument checks shared by the CPU and CUDA backends.
#pragma once

#include "ops/checks.h"

#include <ATen/ATen.h>

namespace kinema::ops::detail {

// Checks shapes/dtypes/devices and returns the per-sample counts as int64
// tensors on the cost's device (full R / C where a count is absent).
inline std::pair<at::Tensor, at::Tensor> check_linear_assignment(
    const at::Tensor& cost, const c10::optional<at::Tensor>& row_counts,
    const c10::optional<at::Tensor>& col_counts) {
  constexpr const char* op = "linear_assignment";
  check_tensor(op, "cost", cost, 3);
  check_floating(op, "cost", cost);
  auto counts = [&](const c10::optional<at::Tensor>& given, const char* arg, int64_t full) {
    if (!given.has_value() || !given->defined())
      return at::full({cost.size(0)}, full, cost.options().dtype(at::kLong));
    check_tensor(op, arg, *given, 1);
    check_same_device(op, arg, *given, "cost", cost);
    TORCH_CHECK(given->scalar_type() == at::kLong, "kinema::linear_assignment: argument '", arg,
                "' must be int64, got ", given->scalar_type());
    check_size(op, arg, *given, 0, cost.size(0), "the batch size of 'cost'");
    return given->contiguous();
  };
  return {counts(row_counts, "row_counts", cost.size(1)),
          counts(col_counts, "col_counts", cost.size(2))};
}

}  // namespace kinema::ops::detail
