// roi_align autograd: the forward and backward kernels are separate operators
// (kinema::roi_align, kinema::_roi_align_backward) so each backend registers
// both, and this file ties them together once for every backend.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace kinema::ops {
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
