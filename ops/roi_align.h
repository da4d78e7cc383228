// roi_align: argument checks and the bilinear sampling rule, shared by the CPU
// and CUDA backends so both read boxes exactly like torchvision does.
#pragma once

#include "ops/checks.h"

#include <ATen/core/Tensor.h>

namespace kinema::ops::detail {

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
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "kinema::roi_align: arguments ",
              "'pooled_height' and 'pooled_width' must be positive, got ", pooled_height, " and ",
              pooled_width);
}

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
