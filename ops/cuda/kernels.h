// Launchers of kinema's CUDA kernels. Plain C++ over raw device pointers (no
// ATen), so the .cu files compile with nvcc alone; the ATen glue in
// ops/cuda/*_cuda.cpp is built only against a CUDA-enabled Torch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kinema::ops::cuda {

// roi_align forward. input is [N, H, W, C] (channels-last), boxes [K, 5];
// output [K, pooled_height, pooled_width, C]. Boxes with a batch index outside
// [0, N) give zeros (the glue rejects them first).
template <typename T>
cudaError_t roi_align_forward(const T* input, const T* boxes, T* output, int64_t batch,
                              int64_t channels, int64_t height, int64_t width, int64_t boxes_count,
                              int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                              int64_t sampling_ratio, bool aligned, cudaStream_t stream);

// roi_align backward without atomics: one thread per input element gathers
// from the boxes of its frame, in box order (deterministic). grad_output is
// [K, pooled_height, pooled_width, C]; grad_input [N, H, W, C] is overwritten.
// box_order lists box indices sorted by frame; frame_offsets [N + 1] delimits
// each frame's run in it.
template <typename T>
cudaError_t roi_align_backward(const T* grad_output, const T* boxes, const int64_t* box_order,
                               const int64_t* frame_offsets, T* grad_input, int64_t batch,
                               int64_t channels, int64_t height, int64_t width,
                               int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                               int64_t sampling_ratio, bool aligned, cudaStream_t stream);

// Batched linear assignment, one warp per sample, no host synchronisation.
// cost [B, R, C] contiguous; counts [B]; rows/cols [B, min(R, C)] outputs.
// workspace_double: B * 3 * max(R, C) doubles; workspace_index: B * 5 * max(R, C) int64.
template <typename T>
cudaError_t linear_assignment(const T* cost, const int64_t* row_counts, const int64_t* col_counts,
                              int64_t batch, int64_t rows, int64_t cols, bool maximize,
                              int64_t* rows_out, int64_t* cols_out, double* workspace_double,
                              int64_t* workspace_index, cudaStream_t stream);

// Fused optimizer steps over many tensors in one launch. Each tensor is cut
// into chunks of kOptimizerChunk elements; first_chunk is the running count of
// chunks before it (the kernel finds a chunk's tensor by binary search), and
// the array of descriptors lives in device memory. Pointers are untyped: the
// launcher's template arguments give the element types (P parameter and
// gradient, S state; S is P or float). Element types: float, double, __half,
// __nv_bfloat16.
constexpr int64_t kOptimizerChunk = 16384;

struct AdamWTensor {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  int64_t numel;
  int64_t first_chunk;
  double neg_step_size;  // -lr / (1 - beta1^t)
  double bias2_sqrt;     // sqrt(1 - beta2^t)
};

struct SgdTensor {
  void* param;
  const void* grad;
  void* momentum_buffer;  // null when momentum is 0
  int64_t numel;
  int64_t first_chunk;
};

template <typename P, typename S>
cudaError_t adamw_multi_tensor(const AdamWTensor* tensors, int64_t count, int64_t total_chunks,
                               double decay, double beta1, double beta2, double eps,
                               cudaStream_t stream);

template <typename P, typename S>
cudaError_t sgd_multi_tensor(const SgdTensor* tensors, int64_t count, int64_t total_chunks,
                             double lr, double momentum, double dampening, double weight_decay,
                             bool nesterov, bool first_step, cudaStream_t stream);

}  // namespace kinema::ops::cuda
