// Fused AdamW / SGD CUDA kernels over raw pointers (see kernels.h). One launch
// covers every tensor of a dtype group: block b handles chunks b, b + grid,
// ... of the concatenated list, finds each chunk's tensor by binary search over
// the descriptors' first_chunk, and its threads stride over the chunk's
// elements (consecutive threads, consecutive elements: coalesced). Each
// element is read and written once. Arithmetic follows the CPU kernel
// (ops/cpu/optimizers_kernel.cpp): PyTorch's update term by term, in float
// for float/half/bfloat16 parameters and in double for double.
#include "ops/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

namespace kinema::ops::cuda {
namespace {

constexpr int kThreads = 512;

template <typename T>
using opmath_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename O>
__device__ __forceinline__ O load(const float* p) { return static_cast<O>(*p); }
template <typename O>
__device__ __forceinline__ O load(const double* p) { return static_cast<O>(*p); }
template <typename O>
__device__ __forceinline__ O load(const __half* p) { return static_cast<O>(__half2float(*p)); }
template <typename O>
__device__ __forceinline__ O load(const __nv_bfloat16* p) {
  return static_cast<O>(__bfloat162float(*p));
}

template <typename O>
__device__ __forceinline__ void store(float* p, O v) { *p = static_cast<float>(v); }
template <typename O>
__device__ __forceinline__ void store(double* p, O v) { *p = static_cast<double>(v); }
template <typename O>
__device__ __forceinline__ void store(__half* p, O v) { *p = __float2half_rn(static_cast<float>(v)); }
template <typename O>
__device__ __forceinline__ void store(__nv_bfloat16* p, O v) {
  *p = __float2bfloat16_rn(static_cast<float>(v));
}

// Index of the tensor that owns `chunk`: the last one with first_chunk <=
// chunk (every later tensor starts after it; an empty tensor owns no chunk and
// shares first_chunk with the next, so it is never the last such one).
template <typename D>
__device__ int64_t tensor_of_chunk(const D* tensors, int64_t count, int64_t chunk) {
  int64_t low = 0, high = count - 1;
  while (low < high) {
    const int64_t mid = (low + high + 1) / 2;
    if (tensors[mid].first_chunk <= chunk) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

inline int blocks_for(int64_t chunks) {
  return static_cast<int>(chunks < 65535 * 8 ? (chunks > 0 ? chunks : 1) : 65535 * 8);
}

template <typename P, typename S>
__global__ void adamw_kernel(const AdamWTensor* __restrict__ tensors, int64_t count,
                             int64_t total_chunks, double decay_d, double beta1_d, double beta2_d,
                             double eps_d) {
  using O = opmath_t<P>;
  const O decay = static_cast<O>(decay_d), beta1 = static_cast<O>(beta1_d),
          one_minus_beta1 = static_cast<O>(1 - beta1_d), beta2 = static_cast<O>(beta2_d),
          one_minus_beta2 = static_cast<O>(1 - beta2_d), eps = static_cast<O>(eps_d);
  for (int64_t chunk = blockIdx.x; chunk < total_chunks; chunk += gridDim.x) {
    const AdamWTensor& t = tensors[tensor_of_chunk(tensors, count, chunk)];
    const int64_t begin = (chunk - t.first_chunk) * kOptimizerChunk;
    const int64_t end = begin + kOptimizerChunk < t.numel ? begin + kOptimizerChunk : t.numel;
    P* param = static_cast<P*>(t.param);
    const P* grad = static_cast<const P*>(t.grad);
    S* exp_avg = static_cast<S*>(t.exp_avg);
    S* exp_avg_sq = static_cast<S*>(t.exp_avg_sq);
    const O neg_step_size = static_cast<O>(t.neg_step_size);
    const O bias2_sqrt = static_cast<O>(t.bias2_sqrt);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const O g = load<O>(grad + i);
      const O p = load<O>(param + i) * decay;
      const O m = load<O>(exp_avg + i) * beta1 + one_minus_beta1 * g;
      const O v = load<O>(exp_avg_sq + i) * beta2 + one_minus_beta2 * g * g;
      const O denom = sqrt(v) / bias2_sqrt + eps;
      store(param + i, p + neg_step_size * (m / denom));
      store(exp_avg + i, m);
      store(exp_avg_sq + i, v);
    }
  }
}

template <typename P, typename S>
__global__ void sgd_kernel(const SgdTensor* __restrict__ tensors, int64_t count,
                           int64_t total_chunks, double lr_d, double momentum_d,
                           double dampening_d, double weight_decay_d, bool nesterov,
                           bool first_step) {
  using O = opmath_t<P>;
  const O neg_lr = static_cast<O>(-lr_d), momentum = static_cast<O>(momentum_d),
          one_minus_dampening = static_cast<O>(1 - dampening_d),
          weight_decay = static_cast<O>(weight_decay_d);
  for (int64_t chunk = blockIdx.x; chunk < total_chunks; chunk += gridDim.x) {
    const SgdTensor& t = tensors[tensor_of_chunk(tensors, count, chunk)];
    const int64_t begin = (chunk - t.first_chunk) * kOptimizerChunk;
    const int64_t end = begin + kOptimizerChunk < t.numel ? begin + kOptimizerChunk : t.numel;
    P* param = static_cast<P*>(t.param);
    const P* grad = static_cast<const P*>(t.grad);
    S* buffer = static_cast<S*>(t.momentum_buffer);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const O p = load<O>(param + i);
      const O d = load<O>(grad + i) + weight_decay * p;
      O direction = d;
      if (buffer) {
        const O b = first_step ? d : load<O>(buffer + i) * momentum + one_minus_dampening * d;
        store(buffer + i, b);
        direction = nesterov ? d + momentum * b : b;
      }
      store(param + i, p + neg_lr * direction);
    }
  }
}

}  // namespace

template <typename P, typename S>
cudaError_t adamw_multi_tensor(const AdamWTensor* tensors, int64_t count, int64_t total_chunks,
                               double decay, double beta1, double beta2, double eps,
                               cudaStream_t stream) {
  if (total_chunks == 0) return cudaSuccess;
  adamw_kernel<P, S><<<blocks_for(total_chunks), kThreads, 0, stream>>>(
      tensors, count, total_chunks, decay, beta1, beta2, eps);
  return cudaGetLastError();
}

template <typename P, typename S>
cudaError_t sgd_multi_tensor(const SgdTensor* tensors, int64_t count, int64_t total_chunks,
                             double lr, double momentum, double dampening, double weight_decay,
                             bool nesterov, bool first_step, cudaStream_t stream) {
  if (total_chunks == 0) return cudaSuccess;
  sgd_kernel<P, S><<<blocks_for(total_chunks), kThreads, 0, stream>>>(
      tensors, count, total_chunks, lr, momentum, dampening, weight_decay, nesterov, first_step);
  return cudaGetLastError();
}

#define KINEMA_OPTIMIZER_INSTANTIATE(P, S)                                                       \
  template cudaError_t adamw_multi_tensor<P, S>(const AdamWTensor*, int64_t, int64_t, double,   \
                                                double, double, double, cudaStream_t);          \
  template cudaError_t sgd_multi_tensor<P, S>(const SgdTensor*, int64_t, int64_t, double,       \
                                              double, double, double, bool, bool, cudaStream_t);

KINEMA_OPTIMIZER_INSTANTIATE(float, float)
KINEMA_OPTIMIZER_INSTANTIATE(double, double)
KINEMA_OPTIMIZER_INSTANTIATE(__half, __half)
KINEMA_OPTIMIZER_INSTANTIATE(__half, float)
KINEMA_OPTIMIZER_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
KINEMA_OPTIMIZER_INSTANTIATE(__nv_bfloat16, float)

#undef KINEMA_OPTIMIZER_INSTANTIATE

}  // namespace kinema::ops::cuda
