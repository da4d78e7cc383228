// roi_align on CUDA: ATen glue around the kernels in roi_align_kernel.cu.
// Built only against a CUDA-enabled Torch (KINEMA_WITH_CUDA).
#include "ops/cuda/kernels.h"
#include "ops/roi_align.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace kinema::ops {
namespace {

void check_cuda(cudaError_t status, const char* op) {
  TORCH_CHECK(status == cudaSuccess, "kinema::", op, ": CUDA error: ", cudaGetErrorString(status));
}

// Batch indices must be integers in [0, N): one host read, as on the CPU.
void check_batch_indices(const at::Tensor& boxes, int64_t batch) {
  const at::Tensor index = boxes.select(1, 0);
  const bool ok = (index.ge(0) & index.lt(batch) & index.eq(index.floor())).all().item<bool>();
  TORCH_CHECK(ok, "kinema::roi_align: argument 'boxes' has a batch index outside [0, ", batch,
              ") or not an integer");
}

at::Tensor roi_align_cuda(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                          int64_t pooled_width, double spatial_scale, int64_t sampling_ratio,
                          bool aligned) {
  detail::check_roi_align(input, boxes, pooled_height, pooled_width);
  detail::check_roi_boxes("roi_align", boxes, input.size(2), input.size(3), pooled_height,
                          pooled_width, spatial_scale, sampling_ratio, aligned);
  const c10::cuda::CUDAGuard guard(input.device());
  check_batch_indices(boxes, input.size(0));
  const at::Tensor input_cl = input.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor boxes_c = boxes.contiguous();
  const int64_t channels = input.size(1);
  at::Tensor out = at::empty({boxes.size(0), pooled_height, pooled_width, channels},
                             input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "kinema::roi_align", [&] {
    check_cuda(cuda::roi_align_forward<scalar_t>(
                   input_cl.data_ptr<scalar_t>(), boxes_c.data_ptr<scalar_t>(),
                   out.data_ptr<scalar_t>(), input.size(0), channels, input.size(2),
                   input.size(3), boxes.size(0), pooled_height, pooled_width,
                   static_cast<scalar_t>(spatial_scale), sampling_ratio, aligned,
                   at::cuda::getCurrentCUDAStream()),
               "roi_align");
  });
  return out.permute({0, 3, 1, 2}).contiguous();
}

at::Tensor roi_align_backward_cuda(const at::Tensor& grad_output, const at::Tensor& boxes,
                                   int64_t batch_size, int64_t height, int64_t width,
                                   double spatial_scale, int64_t sampling_ratio, bool aligned) {
  detail::check_roi_align_backward(grad_output, boxes, batch_size, height, width);
  detail::check_roi_boxes("_roi_align_backward", boxes, height, width, grad_output.size(2),
                          grad_output.size(3), spatial_scale, sampling_ratio, aligned);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  const int64_t channels = grad_output.size(1);
  const at::Tensor grad_cl = grad_output.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor boxes_c = boxes.contiguous();
  // Boxes grouped by frame (stable, so each frame keeps box order) and the
  // start of each frame's run: all on the device, no host round trip.
  const at::Tensor frame_of_box = boxes_c.select(1, 0).to(at::kLong);
  const at::Tensor order = std::get<1>(frame_of_box.sort(/*stable=*/true, 0, false));
  const at::Tensor sorted_frames = frame_of_box.index_select(0, order);
  const at::Tensor offsets = at::searchsorted(
      sorted_frames, at::arange(batch_size + 1, frame_of_box.options()));
  at::Tensor grad_in = at::empty({batch_size, height, width, channels}, grad_output.options());
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "kinema::_roi_align_backward", [&] {
    check_cuda(cuda::roi_align_backward<scalar_t>(
                   grad_cl.data_ptr<scalar_t>(), boxes_c.data_ptr<scalar_t>(),
                   order.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(),
                   grad_in.data_ptr<scalar_t>(), batch_size, channels, height, width,
                   grad_output.size(2), grad_output.size(3),
                   static_cast<scalar_t>(spatial_scale), sampling_ratio, aligned,
                   at::cuda::getCurrentCUDAStream()),
               "_roi_align_backward");
  });
  return grad_in.permute({0, 3, 1, 2});
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CUDA, m) {
  m.impl("roi_align", &roi_align_cuda);
  m.impl("_roi_align_backward", &roi_align_backward_cuda);
}

}  // namespace kinema::ops
