// roi_align autograd: the forward and backward kernels are separate operators
// (kinema::roi_align, kinema::_roi_align_backward) so each backend registers
// both, and this file ties them together once for every backend.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/roi_align.h"
#include "ops/roi_align_geometry.h"

#include <cmath>

namespace kinema::ops {

namespace detail {

void check_roi_boxes(const char* op, const at::Tensor& boxes, int64_t height, int64_t width,
                     int64_t pooled_height, int64_t pooled_width, double spatial_scale,
                     int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(std::isfinite(spatial_scale) && spatial_scale > 0, "kinema::", op,
              ": argument 'spatial_scale' must be positive and finite, got ", spatial_scale);
  TORCH_CHECK(sampling_ratio <= 64, "kinema::", op,
              ": argument 'sampling_ratio' must be at most 64 (or <= 0 for adaptive), got ",
              sampling_ratio);
  if (boxes.size(0) == 0) return;
  const at::Tensor host = boxes.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* b = host.data_ptr<double>();
  // Sampling points outside the map weigh nothing; a box reaching far beyond
  // it is a bug upstream, and its adaptive grid would be enormous.
  const double reach = 4.0 * static_cast<double>(std::max(height, width)) + 64.0;
  for (int64_t k = 0; k < boxes.size(0); ++k) {
    const double* box = b + 5 * k;
    for (int j = 1; j < 5; ++j) {
      TORCH_CHECK(std::isfinite(box[j]), "kinema::", op, ": argument 'boxes' row ", k,
                  " has a non-finite coordinate (", box[1], ", ", box[2], ", ", box[3], ", ",
                  box[4], ")");
      TORCH_CHECK(std::abs(box[j] * spatial_scale) <= reach, "kinema::", op, ": argument 'boxes' row ",
                  k, " reaches coordinate ", box[j] * spatial_scale, " on a ", height, "x", width,
                  " feature map (at most ", reach, " from the origin is accepted)");
    }
    const RoiGeometry<double> g(box, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                                aligned);
    const int64_t points = pooled_height * pooled_width * std::max<int64_t>(g.grid_h, 0) *
                           std::max<int64_t>(g.grid_w, 0);
    TORCH_CHECK(points <= kMaxRoiSamplePoints, "kinema::", op, ": box ", k, " needs ", points,
                " sampling points (", g.grid_h, "x", g.grid_w, " per bin); at most ",
                kMaxRoiSamplePoints, " are allowed: use a smaller sampling_ratio or box");
  }
}

}  // namespace detail

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_forward(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                        int64_t pooled_width, double spatial_scale, int64_t sampling_ratio,
                        bool aligned) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("kinema::roi_align", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                         double, int64_t, bool)>();
  return op.call(input, boxes, pooled_height, pooled_width, spatial_scale, sampling_ratio,
                 aligned);
}

at::Tensor call_backward(const at::Tensor& grad, const at::Tensor& boxes, int64_t batch_size,
                         int64_t height, int64_t width, double spatial_scale,
                         int64_t sampling_ratio, bool aligned) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("kinema::_roi_align_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                         int64_t, double, int64_t, bool)>();
  return op.call(grad, boxes, batch_size, height, width, spatial_scale, sampling_ratio, aligned);
}

class RoiAlignFunction : public torch::autograd::Function<RoiAlignFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& boxes,
                            int64_t pooled_height, int64_t pooled_width, double spatial_scale,
                            int64_t sampling_ratio, bool aligned) {
    ctx->save_for_backward({boxes});
    ctx->saved_data["input_sizes"] = input.sizes();
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["sampling_ratio"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(input, boxes, pooled_height, pooled_width, spatial_scale, sampling_ratio,
                        aligned);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor boxes = ctx->get_saved_variables()[0];
    const auto sizes = ctx->saved_data["input_sizes"].toIntVector();
    at::Tensor grad_input = call_backward(
        grad_outputs[0], boxes, sizes[0], sizes[2], sizes[3],
        ctx->saved_data["spatial_scale"].toDouble(), ctx->saved_data["sampling_ratio"].toInt(),
        ctx->saved_data["aligned"].toBool());
    // Boxes get no gradient (as in torchvision); the integer arguments none.
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor roi_align_autograd(const at::Tensor& input, const at::Tensor& boxes,
                              int64_t pooled_height, int64_t pooled_width, double spatial_scale,
                              int64_t sampling_ratio, bool aligned) {
  return RoiAlignFunction::apply(input, boxes, pooled_height, pooled_width, spatial_scale,
                                 sampling_ratio, aligned);
}

// The backward kernel is not differentiable itself; calling it with
// gradient-requiring inputs must still reach the backend kernel.
at::Tensor roi_align_backward_autograd(const at::Tensor& grad, const at::Tensor& boxes,
                                       int64_t batch_size, int64_t height, int64_t width,
                                       double spatial_scale, int64_t sampling_ratio,
                                       bool aligned) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_backward(grad, boxes, batch_size, height, width, spatial_scale, sampling_ratio,
                       aligned);
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, Autograd, m) {
  m.impl("roi_align", &roi_align_autograd);
  m.impl("_roi_align_backward", &roi_align_backward_autograd);
}

}  // namespace kinema::ops
