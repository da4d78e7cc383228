// roi_align: argument checks and the bilinear sampling rule, shared by the CPU
// and CUDA backends so both read boxes exactly like torchvision does.
#pragma once

#include "ops/checks.h"

#include <ATen/core/Tensor.h>

namespace kinema::ops::detail {

// At most this many sampling points per box (points x bins).
constexpr int64_t kMaxRoiSamplePoints = int64_t(1) << 22;
constexpr int64_t kMaxRoiPooledSize = 1024;

inline void check_roi_align(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                            int64_t pooled_width) {
  constexpr const char* op = "roi_align";
  check_tensor(op, "input", input, 4);
  check_tensor(op, "boxes", boxes, 2);
  TORCH_CHECK(boxes.size(1) == 5, "kinema::roi_align: argument 'boxes' must have shape [K, 5] ",
              "(batch index, x1, y1, x2, y2), got ", boxes.sizes());
  check_floating(op, "input", input);
  check_same_dtype(op, "boxes", boxes, "input", input);
  check_same_device(op, "boxes", boxes, "input", input);
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0 && pooled_height <= kMaxRoiPooledSize &&
                  pooled_width <= kMaxRoiPooledSize,
              "kinema::roi_align: arguments 'pooled_height' and 'pooled_width' must be in [1, ",
              kMaxRoiPooledSize, "], got ", pooled_height, " and ", pooled_width);
  TORCH_CHECK(input.size(2) > 0 && input.size(3) > 0,
              "kinema::roi_align: argument 'input' has an empty feature map (shape ", input.sizes(), ")");
}

// Checks every box against the feature map before any kernel runs: finite
// coordinates (NaN would index out of bounds), and a bounded number of
// sampling points per box (a huge box or sampling_ratio would otherwise ask
// for gigabytes). Boxes are read on the host (one small copy).
void check_roi_boxes(const char* op, const at::Tensor& boxes, int64_t height, int64_t width,
                     int64_t pooled_height, int64_t pooled_width, double spatial_scale,
                     int64_t sampling_ratio, bool aligned);

inline void check_roi_align_backward(const at::Tensor& grad, const at::Tensor& boxes,
                                     int64_t batch_size, int64_t height, int64_t width) {
  constexpr const char* op = "_roi_align_backward";
  check_tensor(op, "grad_output", grad, 4);
  check_tensor(op, "boxes", boxes, 2);
  check_size(op, "grad_output", grad, 0, boxes.size(0), "the number of boxes");
  check_floating(op, "grad_output", grad);
  check_same_dtype(op, "boxes", boxes, "grad_output", grad);
  check_same_device(op, "boxes", boxes, "grad_output", grad);
  TORCH_CHECK(batch_size >= 0 && height > 0 && width > 0,
              "kinema::_roi_align_backward: arguments 'batch_size', 'height', 'width' must be ",
              "positive, got ", batch_size, ", ", height, ", ", width);
}

}  // namespace kinema::ops::detail
