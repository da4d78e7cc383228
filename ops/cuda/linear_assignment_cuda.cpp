// linear_assignment on CUDA: ATen glue around linear_assignment_kernel.cu.
// Built only against a CUDA-enabled Torch (KINEMA_WITH_CUDA). The solve itself
// never syncs with the host; validating the input (counts in range, finite
// costs, with the offending sample named) costs one host read.
#include "ops/cuda/kernels.h"
#include "ops/linear_assignment.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace kinema::ops {
namespace {

void validate(const at::Tensor& cost, const at::Tensor& row_counts, const at::Tensor& col_counts) {
  const int64_t rows = cost.size(1), cols = cost.size(2);
  const at::Tensor bad_rows = row_counts.lt(0) | row_counts.gt(rows);
  const at::Tensor bad_cols = col_counts.lt(0) | col_counts.gt(cols);
  const at::Tensor in_block =
      at::arange(rows, row_counts.options()).view({1, rows, 1}).lt(row_counts.view({-1, 1, 1})) &
      at::arange(cols, col_counts.options()).view({1, 1, cols}).lt(col_counts.view({-1, 1, 1}));
  const at::Tensor bad_cost = (cost.isfinite().logical_not() & in_block).flatten(1).any(1);
  // One read: a code per problem, the first failing sample, in that order.
  const at::Tensor flags = at::stack({bad_rows, bad_cols, bad_cost}).to(at::kLong).cpu();
  const auto any = flags.any(1);
  const char* what[] = {"'row_counts' is outside [0, R]", "'col_counts' is outside [0, C]",
                        "'cost' has a non-finite entry"};
  for (int k = 0; k < 3; ++k) {
    if (!any[k].item<bool>()) continue;
    const int64_t sample = flags[k].argmax().item<int64_t>();
    TORCH_CHECK(false, "kinema::linear_assignment: argument ", what[k], " in sample ", sample);
  }
}

std::tuple<at::Tensor, at::Tensor> linear_assignment_cuda(const at::Tensor& cost,
                                                          const c10::optional<at::Tensor>& row_counts,
                                                          const c10::optional<at::Tensor>& col_counts,
                                                          bool maximize) {
  auto [rows_valid, cols_valid] = detail::check_linear_assignment(cost, row_counts, col_counts);
  const c10::cuda::CUDAGuard guard(cost.device());
  validate(cost, rows_valid, cols_valid);
  const at::Tensor cost_c = cost.contiguous();
  const int64_t batch = cost.size(0), rows = cost.size(1), cols = cost.size(2);
  const int64_t pairs = std::min(rows, cols), big = std::max<int64_t>(std::max(rows, cols), 1);
  at::Tensor rows_out = at::empty({batch, pairs}, cost.options().dtype(at::kLong));
  at::Tensor cols_out = at::empty({batch, pairs}, cost.options().dtype(at::kLong));
  at::Tensor work_d = at::empty({batch, 3 * big}, cost.options().dtype(at::kDouble));
  at::Tensor work_i = at::empty({batch, 5 * big}, cost.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(cost.scalar_type(), "kinema::linear_assignment", [&] {
    const cudaError_t status = cuda::linear_assignment<scalar_t>(
        cost_c.data_ptr<scalar_t>(), rows_valid.data_ptr<int64_t>(), cols_valid.data_ptr<int64_t>(),
        batch, rows, cols, maximize, rows_out.data_ptr<int64_t>(), cols_out.data_ptr<int64_t>(),
        work_d.data_ptr<double>(), work_i.data_ptr<int64_t>(), at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(status == cudaSuccess, "kinema::linear_assignment: CUDA error: ",
                cudaGetErrorString(status));
  });
  return {rows_out, cols_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CUDA, m) { m.impl("linear_assignment", &linear_assignment_cuda); }

}  // namespace kinema::ops
