// Where roi_align samples and with which weights: plain C++ (no ATen) so the
// CPU kernel and the standalone CUDA kernels share one definition of
// torchvision's sampling rule.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KINEMA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KINEMA_HOST_DEVICE inline
#endif

namespace kinema::ops::detail {

// One box in feature-map coordinates, with its sampling grid.
template <typename T>
struct RoiGeometry {
  T start_y, start_x, bin_h, bin_w;
  int64_t grid_h, grid_w;  // sampling points per bin along y and x
  T inv_count;             // 1 / number of sampling points per bin

  KINEMA_HOST_DEVICE RoiGeometry(const T* box, T spatial_scale, int64_t pooled_height,
                                 int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
    const T offset = aligned ? T(0.5) : T(0);
    start_x = box[1] * spatial_scale - offset;
    start_y = box[2] * spatial_scale - offset;
    T roi_w = box[3] * spatial_scale - offset - start_x;
    T roi_h = box[4] * spatial_scale - offset - start_y;
    if (!aligned) {  // legacy behaviour: boxes are at least one pixel
      roi_w = roi_w > T(1) ? roi_w : T(1);
      roi_h = roi_h > T(1) ? roi_h : T(1);
    }
    bin_h = roi_h / static_cast<T>(pooled_height);
    bin_w = roi_w / static_cast<T>(pooled_width);
    grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(bin_h));
    grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(bin_w));
    const int64_t count = grid_h * grid_w;
    inv_count = T(1) / static_cast<T>(count > 1 ? count : 1);
  }

  // Coordinate of sampling point i (0 <= i < grid) of bin p along one axis.
  KINEMA_HOST_DEVICE T y_at(int64_t p, int64_t i) const {
    return start_y + p * bin_h + (i + T(0.5)) * bin_h / static_cast<T>(grid_h);
  }
  KINEMA_HOST_DEVICE T x_at(int64_t p, int64_t i) const {
    return start_x + p * bin_w + (i + T(0.5)) * bin_w / static_cast<T>(grid_w);
  }
};

// Linear interpolation along one axis: the two neighbouring indices and their
// weights. Points more than one pixel outside the map get zero weight; points
// past the last row/column clamp to it (torchvision's rule).
template <typename T>
struct AxisSample {
  int64_t low, high;
  T w_low, w_high;
};

template <typename T>
KINEMA_HOST_DEVICE AxisSample<T> axis_sample(T v, int64_t size) {
  AxisSample<T> s{0, 0, T(0), T(0)};
  // Written so that NaN also takes this exit (it compares false).
  if (!(v >= T(-1) && v <= static_cast<T>(size)) || size <= 0) return s;
  if (v <= T(0)) v = T(0);
  s.low = static_cast<int64_t>(v);
  if (s.low >= size - 1) {
    s.low = s.high = size - 1;
    v = static_cast<T>(s.low);
  } else {
    s.high = s.low + 1;
  }
  s.w_high = v - static_cast<T>(s.low);
  s.w_low = T(1) - s.w_high;
  return s;
}

}  // namespace kinema::ops::detail
