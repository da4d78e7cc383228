// roi_align CUDA kernels over raw pointers (see kernels.h). Channels-last
// data: consecutive threads handle consecutive channels, so every load and
// store is coalesced. The sampling rule is ops/roi_align_geometry.h, shared
// with the CPU kernel.
#include "ops/cuda/kernels.h"
#include "ops/roi_align_geometry.h"

#include <cuda_runtime.h>

namespace kinema::ops::cuda {
namespace {

using detail::axis_sample;
using detail::AxisSample;
using detail::RoiGeometry;

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 32 ? (b > 0 ? b : 1) : 65535 * 32);
}

// One thread per output element (k, py, px, c).
template <typename T>
__global__ void forward_kernel(const T* __restrict__ input, const T* __restrict__ boxes,
                               T* __restrict__ output, int64_t batch, int64_t channels,
                               int64_t height, int64_t width, int64_t total,
                               int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                               int64_t sampling_ratio, bool aligned) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = index % channels;
    const int64_t px = (index / channels) % pooled_width;
    const int64_t py = (index / channels / pooled_width) % pooled_height;
    const int64_t k = index / channels / pooled_width / pooled_height;
    const T* box = boxes + k * 5;
    const int64_t n = static_cast<int64_t>(box[0]);
    T sum = T(0);
    const RoiGeometry<T> g(box, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                           aligned);
    if (n >= 0 && n < batch) {
      const T* frame = input + n * height * width * channels + c;
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const AxisSample<T> sy = axis_sample(g.y_at(py, iy), height);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const AxisSample<T> sx = axis_sample(g.x_at(px, ix), width);
          sum += sy.w_low * (sx.w_low * frame[(sy.low * width + sx.low) * channels] +
                             sx.w_high * frame[(sy.low * width + sx.high) * channels]) +
                 sy.w_high * (sx.w_low * frame[(sy.high * width + sx.low) * channels] +
                              sx.w_high * frame[(sy.high * width + sx.high) * channels]);
        }
      }
    }
    output[index] = sum * g.inv_count;
  }
}

// Weight with which a sample at coordinate v touches pixel p along one axis.
template <typename T>
__device__ __forceinline__ T touch(const AxisSample<T>& s, int64_t p) {
  return (s.low == p ? s.w_low : T(0)) + (s.high == p ? s.w_high : T(0));
}

// One thread per input element (n, y, x, c): sums, over the boxes of frame n
// in box order, every sample point's bilinear share of this pixel.
template <typename T>
__global__ void backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ boxes,
                                const int64_t* __restrict__ box_order,
                                const int64_t* __restrict__ frame_offsets,
                                T* __restrict__ grad_input, int64_t channels, int64_t height,
                                int64_t width, int64_t total, int64_t pooled_height,
                                int64_t pooled_width, T spatial_scale, int64_t sampling_ratio,
                                bool aligned) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = index % channels;
    const int64_t x = (index / channels) % width;
    const int64_t y = (index / channels / width) % height;
    const int64_t n = index / channels / width / height;
    T sum = T(0);
    for (int64_t o = frame_offsets[n]; o < frame_offsets[n + 1]; ++o) {
      const int64_t k = box_order[o];
      const RoiGeometry<T> g(boxes + k * 5, spatial_scale, pooled_height, pooled_width,
                             sampling_ratio, aligned);
      const T* grad_box = grad_output + k * pooled_height * pooled_width * channels + c;
      for (int64_t row = 0; row < pooled_height * g.grid_h; ++row) {
        const int64_t py = row / g.grid_h;
        const T wy = touch(axis_sample(g.y_at(py, row % g.grid_h), height), y);
        if (wy == T(0)) continue;
        for (int64_t col = 0; col < pooled_width * g.grid_w; ++col) {
          const int64_t px = col / g.grid_w;
          const T wx = touch(axis_sample(g.x_at(px, col % g.grid_w), width), x);
          if (wx == T(0)) continue;
          sum += wy * wx * g.inv_count * grad_box[(py * pooled_width + px) * channels];
        }
      }
    }
    grad_input[index] = sum;
  }
}

}  // namespace

template <typename T>
cudaError_t roi_align_forward(const T* input, const T* boxes, T* output, int64_t batch,
                              int64_t channels, int64_t height, int64_t width, int64_t boxes_count,
                              int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                              int64_t sampling_ratio, bool aligned, cudaStream_t stream) {
  const int64_t total = boxes_count * pooled_height * pooled_width * channels;
  if (total == 0) return cudaSuccess;
  forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      input, boxes, output, batch, channels, height, width, total, pooled_height, pooled_width,
      spatial_scale, sampling_ratio, aligned);
  return cudaGetLastError();
}

template <typename T>
cudaError_t roi_align_backward(const T* grad_output, const T* boxes, const int64_t* box_order,
                               const int64_t* frame_offsets, T* grad_input, int64_t batch,
                               int64_t channels, int64_t height, int64_t width,
                               int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                               int64_t sampling_ratio, bool aligned, cudaStream_t stream) {
  const int64_t total = batch * height * width * channels;
  if (total == 0) return cudaSuccess;
  backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      grad_output, boxes, box_order, frame_offsets, grad_input, channels, height, width, total,
      pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned);
  return cudaGetLastError();
}

#define KINEMA_INSTANTIATE(T)                                                                  \
  template cudaError_t roi_align_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, \
                                            int64_t, int64_t, int64_t, int64_t, T, int64_t,    \
                                            bool, cudaStream_t);                               \
  template cudaError_t roi_align_backward<T>(const T*, const T*, const int64_t*,              \
                                             const int64_t*, T*, int64_t, int64_t, int64_t,    \
                                             int64_t, int64_t, int64_t, T, int64_t, bool,      \
                                             cudaStream_t);
KINEMA_INSTANTIATE(float)
KINEMA_INSTANTIATE(double)
#undef KINEMA_INSTANTIATE

}  // namespace kinema::ops::cuda
