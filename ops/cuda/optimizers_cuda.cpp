// Fused AdamW / SGD on CUDA: ATen glue around the multi-tensor kernels in
// optimizers_kernel.cu. Tensors are grouped by (parameter, state) dtype; each
// group is one kernel launch whose tensor descriptors are copied to the device
// asynchronously from pinned memory. Built only against a CUDA-enabled Torch
// (KINEMA_WITH_CUDA).
#include "ops/cuda/kernels.h"
#include "ops/optimizers.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <map>
#include <type_traits>
#include <utility>
#include <vector>

namespace kinema::ops {
namespace {

using detail::Operand;

void check_cuda(cudaError_t status, const char* op) {
  TORCH_CHECK(status == cudaSuccess, "kinema::", op, ": CUDA error: ", cudaGetErrorString(status));
}

template <typename T>
struct Tag {
  using type = T;
};

// Calls fn(Tag<P>, Tag<S>) with the CUDA element types of a (parameter, state)
// dtype pair (state is the parameter's dtype or float32, checked before).
template <typename F>
void with_element_types(at::ScalarType param, at::ScalarType state, const F& fn) {
  auto with_state = [&](auto param_tag) {
    using P = typename decltype(param_tag)::type;
    // Only the 16-bit parameter types may keep float32 state: the kernels are
    // instantiated for exactly those pairs (optimizers_kernel.cu).
    if constexpr (std::is_same_v<P, __half> || std::is_same_v<P, __nv_bfloat16>) {
      if (state != param) return fn(Tag<P>{}, Tag<float>{});
    }
    fn(Tag<P>{}, Tag<P>{});
  };
  switch (param) {
    case at::kFloat: return with_state(Tag<float>{});
    case at::kDouble: return with_state(Tag<double>{});
    case at::kHalf: return with_state(Tag<__half>{});
    case at::kBFloat16: return with_state(Tag<__nv_bfloat16>{});
    default: TORCH_CHECK(false, "kinema: fused optimizer step on CUDA does not support ", param);
  }
}

// The descriptors in device memory, copied from pinned host memory on the
// current stream (the caching host allocator keeps the host buffer until the
// copy has run).
template <typename D>
at::Tensor descriptors_on_device(const std::vector<D>& host, const at::Device& device) {
  const int64_t bytes = static_cast<int64_t>(host.size() * sizeof(D));
  at::Tensor pinned = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  std::memcpy(pinned.data_ptr(), host.data(), static_cast<size_t>(bytes));
  at::Tensor on_device = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
  on_device.copy_(pinned, /*non_blocking=*/true);
  return on_device;
}

int64_t chunks_of(int64_t numel) {
  return (numel + cuda::kOptimizerChunk - 1) / cuda::kOptimizerChunk;
}

// Parameter indices grouped by (parameter dtype, state dtype).
using DtypeGroups = std::map<std::pair<at::ScalarType, at::ScalarType>, std::vector<size_t>>;

void adamw_cuda(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                at::TensorList exp_avg_sqs, at::TensorList steps, double lr, double beta1,
                double beta2, double weight_decay, double eps) {
  const std::vector<double> step_counts =
      detail::check_adamw_args(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const size_t count = params.size();
  std::vector<Operand> p(count), g(count), m(count), v(count);
  DtypeGroups groups;
  for (size_t i = 0; i < count; ++i) {
    p[i] = detail::param_operand(params[i]);
    g[i] = detail::operand_like(grads[i], p[i].work);
    m[i] = detail::operand_like(exp_avgs[i], p[i].work);
    v[i] = detail::operand_like(exp_avg_sqs[i], p[i].work);
    groups[{params[i].scalar_type(), exp_avgs[i].scalar_type()}].push_back(i);
  }
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  for (const auto& [dtypes, members] : groups) {
    std::vector<cuda::AdamWTensor> host;
    int64_t total_chunks = 0;
    for (size_t i : members) {
      const double t = step_counts[i];
      host.push_back({p[i].work.data_ptr(), g[i].work.data_ptr(), m[i].work.data_ptr(),
                      v[i].work.data_ptr(), params[i].numel(), total_chunks,
                      -(lr / (1 - std::pow(beta1, t))), std::sqrt(1 - std::pow(beta2, t))});
      total_chunks += chunks_of(params[i].numel());
    }
    const at::Tensor device_tensors = descriptors_on_device(host, params[0].device());
    with_element_types(dtypes.first, dtypes.second, [&](auto param_tag, auto state_tag) {
      using P = typename decltype(param_tag)::type;
      using S = typename decltype(state_tag)::type;
      check_cuda(cuda::adamw_multi_tensor<P, S>(
                     static_cast<const cuda::AdamWTensor*>(device_tensors.data_ptr()),
                     static_cast<int64_t>(host.size()), total_chunks, 1 - lr * weight_decay,
                     beta1, beta2, eps, stream),
                 "adamw_");
    });
  }
  for (size_t i = 0; i < count; ++i) {
    p[i].finish();
    m[i].finish();
    v[i].finish();
  }
  detail::bump_versions(params);
  detail::bump_versions(exp_avgs);
  detail::bump_versions(exp_avg_sqs);
}

void sgd_cuda(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
              double lr, double momentum, double dampening, double weight_decay, bool nesterov,
              bool first_step) {
  const bool with_momentum =
      detail::check_sgd_args(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const size_t count = params.size();
  std::vector<Operand> p(count), g(count), b(count);
  DtypeGroups groups;
  for (size_t i = 0; i < count; ++i) {
    p[i] = detail::param_operand(params[i]);
    g[i] = detail::operand_like(grads[i], p[i].work);
    if (with_momentum) b[i] = detail::operand_like(momentum_buffers[i], p[i].work);
    const at::ScalarType state = with_momentum ? momentum_buffers[i].scalar_type() : params[i].scalar_type();
    groups[{params[i].scalar_type(), state}].push_back(i);
  }
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  for (const auto& [dtypes, members] : groups) {
    std::vector<cuda::SgdTensor> host;
    int64_t total_chunks = 0;
    for (size_t i : members) {
      host.push_back({p[i].work.data_ptr(), g[i].work.data_ptr(),
                      with_momentum ? b[i].work.data_ptr() : nullptr, params[i].numel(),
                      total_chunks});
      total_chunks += chunks_of(params[i].numel());
    }
    const at::Tensor device_tensors = descriptors_on_device(host, params[0].device());
    with_element_types(dtypes.first, dtypes.second, [&](auto param_tag, auto state_tag) {
      using P = typename decltype(param_tag)::type;
      using S = typename decltype(state_tag)::type;
      check_cuda(cuda::sgd_multi_tensor<P, S>(
                     static_cast<const cuda::SgdTensor*>(device_tensors.data_ptr()),
                     static_cast<int64_t>(host.size()), total_chunks, lr, momentum, dampening,
                     weight_decay, nesterov, first_step, stream),
                 "sgd_");
    });
  }
  for (size_t i = 0; i < count; ++i) {
    p[i].finish();
    if (with_momentum) b[i].finish();
  }
  detail::bump_versions(params);
  if (with_momentum) detail::bump_versions(momentum_buffers);
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CUDA, m) {
  m.impl("adamw_", &adamw_cuda);
  m.impl("sgd_", &sgd_cuda);
}

}  // namespace kinema::ops
