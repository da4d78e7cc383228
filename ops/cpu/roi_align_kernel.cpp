// roi_align on CPU. Both passes read/write the feature map channels-last so
// the innermost loop runs over contiguous channels (and vectorises); a ViT
// patch grid viewed as [N, C, H, W] is already channels-last, so it is not
// copied. Each box is pooled into a small [bins, C] buffer and transposed
// into the contiguous [K, C, bins] output (and back for the gradient), so no
// second output-sized tensor is ever allocated.
// Forward: parallel over boxes. Backward: parallel over frames, each frame's
// boxes accumulated in box order, so the gradient is deterministic.
#include "ops/roi_align.h"
#include "ops/roi_align_geometry.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace kinema::ops {
namespace {

using detail::axis_sample;
using detail::AxisSample;
using detail::RoiGeometry;

// One sampling point: offsets (in units of C) of its four neighbours in the
// frame and their bilinear weights.
template <typename T>
struct SamplePoint {
  int64_t offset[4];
  T weight[4];
};

// The sampling points of every bin of one box, bin-major.
template <typename T>
void sample_points(const RoiGeometry<T>& g, int64_t pooled_height, int64_t pooled_width,
                   int64_t height, int64_t width, int64_t channels,
                   std::vector<SamplePoint<T>>& points) {
  const int64_t per_bin = g.grid_h > 0 && g.grid_w > 0 ? g.grid_h * g.grid_w : 0;
  points.resize(pooled_height * pooled_width * per_bin);
  auto* p = points.data();
  for (int64_t ph = 0; ph < pooled_height; ++ph) {
    for (int64_t pw = 0; pw < pooled_width; ++pw) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const AxisSample<T> sy = axis_sample(g.y_at(ph, iy), height);
        for (int64_t ix = 0; ix < g.grid_w; ++ix, ++p) {
          const AxisSample<T> sx = axis_sample(g.x_at(pw, ix), width);
          p->offset[0] = (sy.low * width + sx.low) * channels;
          p->offset[1] = (sy.low * width + sx.high) * channels;
          p->offset[2] = (sy.high * width + sx.low) * channels;
          p->offset[3] = (sy.high * width + sx.high) * channels;
          p->weight[0] = sy.w_low * sx.w_low;
          p->weight[1] = sy.w_low * sx.w_high;
          p->weight[2] = sy.w_high * sx.w_low;
          p->weight[3] = sy.w_high * sx.w_high;
        }
      }
    }
  }
}

int64_t checked_batch_index(double value, int64_t box, int64_t batch_size) {
  // Range-checked as a double: casting NaN or a huge value to int64 is undefined.
  TORCH_CHECK(value >= 0 && value < static_cast<double>(batch_size) && std::floor(value) == value,
              "kinema::roi_align: argument 'boxes' row ", box, " has batch index ", value,
              ", expected an integer in [0, ", batch_size, ")");
  return static_cast<int64_t>(value);
}

template <typename T>
void forward_impl(const at::Tensor& input_cl, const at::Tensor& boxes, at::Tensor& output,
                  int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                  int64_t sampling_ratio, bool aligned) {
  const int64_t batch = input_cl.size(0), channels = input_cl.size(1);
  const int64_t height = input_cl.size(2), width = input_cl.size(3);
  const T* in = input_cl.data_ptr<T>();
  const T* box_data = boxes.data_ptr<T>();
  T* out = output.data_ptr<T>();
  const int64_t bins = pooled_height * pooled_width;
  for (int64_t k = 0; k < boxes.size(0); ++k) checked_batch_index(box_data[k * 5], k, batch);

  at::parallel_for(0, boxes.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<SamplePoint<T>> points;
    std::vector<T> box_out(bins * channels);  // one box, [bins, C]
    for (int64_t k = begin; k < end; ++k) {
      const T* box = box_data + k * 5;
      const RoiGeometry<T> g(box, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                             aligned);
      sample_points(g, pooled_height, pooled_width, height, width, channels, points);
      const int64_t per_bin = static_cast<int64_t>(points.size()) / bins;
      const T* frame = in + static_cast<int64_t>(box[0]) * height * width * channels;
      for (int64_t bin = 0; bin < bins; ++bin) {
        T* __restrict__ acc = box_out.data() + bin * channels;
        for (int64_t c = 0; c < channels; ++c) acc[c] = T(0);
        for (int64_t s = 0; s < per_bin; ++s) {
          const SamplePoint<T>& p = points[bin * per_bin + s];
          const T* __restrict__ a = frame + p.offset[0];
          const T* __restrict__ b = frame + p.offset[1];
          const T* __restrict__ c2 = frame + p.offset[2];
          const T* __restrict__ d = frame + p.offset[3];
          const T w0 = p.weight[0], w1 = p.weight[1], w2 = p.weight[2], w3 = p.weight[3];
          for (int64_t c = 0; c < channels; ++c)
            acc[c] += w0 * a[c] + w1 * b[c] + w2 * c2[c] + w3 * d[c];
        }
      }
      // Into the [C, bins] layout of the contiguous output.
      T* dst = out + k * channels * bins;
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t bin = 0; bin < bins; ++bin)
          dst[c * bins + bin] = box_out[bin * channels + c] * g.inv_count;
    }
  });
}

template <typename T>
void backward_impl(const at::Tensor& grad, const at::Tensor& boxes, at::Tensor& grad_input_cl,
                   int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                   int64_t sampling_ratio, bool aligned) {
  const int64_t batch = grad_input_cl.size(0), channels = grad_input_cl.size(1);
  const int64_t height = grad_input_cl.size(2), width = grad_input_cl.size(3);
  const T* box_data = boxes.data_ptr<T>();
  const T* grad_data = grad.data_ptr<T>();  // contiguous [K, C, bins]
  T* grad_in = grad_input_cl.data_ptr<T>();
  const int64_t bins = pooled_height * pooled_width;

  std::vector<std::vector<int64_t>> boxes_of_frame(batch);
  for (int64_t k = 0; k < boxes.size(0); ++k)
    boxes_of_frame[checked_batch_index(box_data[k * 5], k, batch)].push_back(k);

  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<SamplePoint<T>> points;
    std::vector<T> box_grad(bins * channels);  // one box's gradient, [bins, C]
    for (int64_t n = begin; n < end; ++n) {
      T* frame = grad_in + n * height * width * channels;
      for (int64_t k : boxes_of_frame[n]) {
        const RoiGeometry<T> g(box_data + k * 5, spatial_scale, pooled_height, pooled_width,
                               sampling_ratio, aligned);
        sample_points(g, pooled_height, pooled_width, height, width, channels, points);
        const int64_t per_bin = static_cast<int64_t>(points.size()) / bins;
        if (per_bin == 0) continue;
        const T* src = grad_data + k * channels * bins;
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t bin = 0; bin < bins; ++bin)
            box_grad[bin * channels + c] = src[c * bins + bin] * g.inv_count;
        for (int64_t bin = 0; bin < bins; ++bin) {
          const T* __restrict__ gs = box_grad.data() + bin * channels;
          for (int64_t s = 0; s < per_bin; ++s) {
            const SamplePoint<T>& p = points[bin * per_bin + s];
            for (int corner = 0; corner < 4; ++corner) {
              const T w = p.weight[corner];
              if (w == T(0)) continue;
              T* __restrict__ dst = frame + p.offset[corner];
              for (int64_t c = 0; c < channels; ++c) dst[c] += w * gs[c];
            }
          }
        }
      }
    }
  });
}

// A [N, H, W, C]-strided tensor seen as [N, C, H, W].
at::Tensor empty_channels_last(int64_t n, int64_t c, int64_t h, int64_t w,
                               const at::TensorOptions& options) {
  return at::empty({n, h, w, c}, options).permute({0, 3, 1, 2});
}

at::Tensor roi_align_cpu(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                         int64_t pooled_width, double spatial_scale, int64_t sampling_ratio,
                         bool aligned) {
  detail::check_roi_align(input, boxes, pooled_height, pooled_width);
  detail::check_roi_boxes("roi_align", boxes, input.size(2), input.size(3), pooled_height,
                          pooled_width, spatial_scale, sampling_ratio, aligned);
  const at::Tensor input_cl = input.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor boxes_c = boxes.contiguous();
  at::Tensor output =
      at::empty({boxes.size(0), input.size(1), pooled_height, pooled_width}, input.options());
  if (boxes.size(0) == 0 || input.size(1) == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "kinema::roi_align", [&] {
    forward_impl<scalar_t>(input_cl, boxes_c, output, pooled_height, pooled_width,
                           static_cast<scalar_t>(spatial_scale), sampling_ratio, aligned);
  });
  return output;
}

at::Tensor roi_align_backward_cpu(const at::Tensor& grad_output, const at::Tensor& boxes,
                                  int64_t batch_size, int64_t height, int64_t width,
                                  double spatial_scale, int64_t sampling_ratio, bool aligned) {
  detail::check_roi_align_backward(grad_output, boxes, batch_size, height, width);
  detail::check_roi_boxes("_roi_align_backward", boxes, height, width, grad_output.size(2),
                          grad_output.size(3), spatial_scale, sampling_ratio, aligned);
  const int64_t channels = grad_output.size(1);
  const at::Tensor grad = grad_output.contiguous();
  const at::Tensor boxes_c = boxes.contiguous();
  at::Tensor grad_input = empty_channels_last(batch_size, channels, height, width,
                                              grad_output.options());
  grad_input.zero_();
  if (boxes.size(0) == 0 || channels == 0) return grad_input;
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "kinema::_roi_align_backward", [&] {
    backward_impl<scalar_t>(grad, boxes_c, grad_input, grad_output.size(2),
                            grad_output.size(3), static_cast<scalar_t>(spatial_scale),
                            sampling_ratio, aligned);
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CPU, m) {
  m.impl("roi_align", &roi_align_cpu);
  m.impl("_roi_align_backward", &roi_align_backward_cpu);
}

}  // namespace kinema::ops
