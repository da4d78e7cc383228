// kinema::roi_align against a reference written from torchvision's definition
// with plain ATen indexing (differentiable, so it also gives reference
// gradients), a hand-computed case, gradcheck and argument errors.
#include "ops/ops.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

using kinema::ops::testing::check_error;
using kinema::ops::testing::gradcheck;
using kinema::ops::testing::max_abs_diff;

namespace {

// Bilinear value of frame [C,H,W] at (y, x) under torchvision's border rule.
at::Tensor bilinear_reference(const at::Tensor& frame, double y, double x) {
  const int64_t h = frame.size(1), w = frame.size(2);
  if (y < -1.0 || y > h || x < -1.0 || x > w) return at::zeros({frame.size(0)}, frame.options());
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x));
  int64_t y1 = y0 + 1, x1 = x0 + 1;
  if (y0 >= h - 1) y0 = y1 = h - 1, y = static_cast<double>(y0);
  if (x0 >= w - 1) x0 = x1 = w - 1, x = static_cast<double>(x0);
  const double ly = y - y0, lx = x - x0;
  auto at_pixel = [&](int64_t yy, int64_t xx) { return frame.select(1, yy).select(1, xx); };
  return at_pixel(y0, x0) * ((1 - ly) * (1 - lx)) + at_pixel(y0, x1) * ((1 - ly) * lx) +
         at_pixel(y1, x0) * (ly * (1 - lx)) + at_pixel(y1, x1) * (ly * lx);
}

at::Tensor roi_align_reference(const at::Tensor& input, const at::Tensor& boxes, int64_t ph,
                               int64_t pw, double scale, int64_t ratio, bool aligned) {
  std::vector<at::Tensor> per_box;
  const auto b = boxes.to(at::kDouble);
  for (int64_t k = 0; k < boxes.size(0); ++k) {
    const double off = aligned ? 0.5 : 0.0;
    const double x1 = b[k][1].item<double>() * scale - off, y1 = b[k][2].item<double>() * scale - off;
    double rw = b[k][3].item<double>() * scale - off - x1, rh = b[k][4].item<double>() * scale - off - y1;
    if (!aligned) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
    const double bh = rh / ph, bw = rw / pw;
    const int64_t gh = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rh / ph));
    const int64_t gw = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rw / pw));
    const at::Tensor frame = input[b[k][0].item<int64_t>()];
    std::vector<at::Tensor> bins;
    for (int64_t i = 0; i < ph; ++i)
      for (int64_t j = 0; j < pw; ++j) {
        at::Tensor acc = at::zeros({input.size(1)}, input.options());
        for (int64_t sy = 0; sy < gh; ++sy)
          for (int64_t sx = 0; sx < gw; ++sx)
            acc = acc + bilinear_reference(frame, y1 + i * bh + (sy + 0.5) * bh / gh,
                                           x1 + j * bw + (sx + 0.5) * bw / gw);
        bins.push_back(acc / static_cast<double>(std::max<int64_t>(gh * gw, 1)));
      }
    per_box.push_back(at::stack(bins, 1).view({input.size(1), ph, pw}));
  }
  return at::stack(per_box);
}

at::Tensor random_boxes(int64_t k, int64_t batch, double h, double w) {
  at::Tensor xy = at::rand({k, 2}, at::kDouble) * at::tensor({w, h}, at::kDouble) * 1.2 - 1.0;
  at::Tensor size = at::rand({k, 2}, at::kDouble) * at::tensor({w, h}, at::kDouble) * 0.7;
  at::Tensor index = at::randint(0, batch, {k, 1}, at::kLong).to(at::kDouble);
  return at::cat({index, xy, xy + size}, 1);
}

}  // namespace

TEST_CASE("roi_align matches the reference forward and backward") {
  torch::manual_seed(1);
  for (bool aligned : {false, true})
    for (int64_t ratio : {-1, 1, 3})
      for (double scale : {1.0, 0.5}) {
        CAPTURE(aligned); CAPTURE(ratio); CAPTURE(scale);
        const at::Tensor x = at::randn({3, 5, 8, 10}, at::kDouble).requires_grad_(true);
        const at::Tensor boxes = random_boxes(7, 3, 8 / scale, 10 / scale);
        const at::Tensor got = kinema::ops::roi_align(x, boxes, 3, 2, scale, ratio, aligned);
        const at::Tensor want = roi_align_reference(x, boxes, 3, 2, scale, ratio, aligned);
        CHECK(max_abs_diff(got, want) < 1e-12);
        const at::Tensor g = at::randn_like(got);
        const auto gx = torch::autograd::grad({got}, {x}, {g})[0];
        const auto wx = torch::autograd::grad({want}, {x}, {g})[0];
        CHECK(max_abs_diff(gx, wx) < 1e-12);
      }
}

TEST_CASE("roi_align float32, channels-last and strided inputs agree with contiguous float64") {
  torch::manual_seed(2);
  const at::Tensor tokens = at::randn({4, 6, 6, 16});  // [N, H, W, C] like ViT patches
  const at::Tensor nchw_view = tokens.permute({0, 3, 1, 2});
  const at::Tensor boxes = random_boxes(9, 4, 6, 6).to(at::kFloat);
  const at::Tensor a = kinema::ops::roi_align(nchw_view, boxes, 2, 2, 1.0, -1, true);
  const at::Tensor b = kinema::ops::roi_align(nchw_view.contiguous().to(at::kDouble),
                                              boxes.to(at::kDouble), 2, 2, 1.0, -1, true);
  CHECK((a.scalar_type() == at::kFloat));
  CHECK(max_abs_diff(a, b) < 1e-5);
}

TEST_CASE("roi_align of a linear ramp averages the bin centres") {
  // value = column index at pixel centres; aligned boxes are in continuous
  // coordinates, so bins [0.5, 2.5] and [2.5, 4.5] average to 1.5 and 3.5.
  const at::Tensor ramp = at::arange(8, at::kDouble).view({1, 1, 1, 8}).expand({1, 1, 6, 8}).contiguous();
  const at::Tensor box = at::tensor({0.0, 1.0, 1.0, 5.0, 5.0}, at::kDouble).view({1, 5});
  const at::Tensor out = kinema::ops::roi_align(ramp, box, 1, 2, 1.0, 2, true);
  CHECK(out[0][0][0][0].item<double>() == doctest::Approx(1.5).epsilon(1e-12));
  CHECK(out[0][0][0][1].item<double>() == doctest::Approx(3.5).epsilon(1e-12));
}

TEST_CASE("roi_align gradcheck in float64") {
  torch::manual_seed(3);
  const at::Tensor boxes = random_boxes(4, 2, 5, 6);
  for (bool aligned : {false, true}) {
    const double err = gradcheck(
        [&](std::vector<at::Tensor> in) {
          return std::vector<at::Tensor>{kinema::ops::roi_align(in[0], boxes, 2, 3, 1.0, 2, aligned)};
        },
        {at::randn({2, 3, 5, 6}, at::kDouble)});
    CHECK(err < 1e-6);
  }
}

TEST_CASE("roi_align with no boxes gives an empty result and a zero gradient") {
  const at::Tensor x = at::randn({2, 3, 4, 4}).requires_grad_(true);
  const at::Tensor out = kinema::ops::roi_align(x, at::zeros({0, 5}), 2, 2);
  CHECK((out.sizes() == at::IntArrayRef({0, 3, 2, 2})));
  out.sum().backward();
  CHECK(x.grad().abs().sum().item<double>() == 0.0);
}

TEST_CASE("roi_align rejects bad arguments naming them") {
  const at::Tensor x = at::randn({2, 3, 4, 4});
  const at::Tensor boxes = at::tensor({0.0f, 0.f, 0.f, 2.f, 2.f}).view({1, 5});
  check_error([&] { kinema::ops::roi_align(x[0], boxes, 2, 2); }, {"kinema::roi_align", "'input'", "4 dimensions"});
  check_error([&] { kinema::ops::roi_align(x, boxes.view({5}), 2, 2); }, {"roi_align", "'boxes'"});
  check_error([&] { kinema::ops::roi_align(x, at::zeros({1, 4}), 2, 2); }, {"roi_align", "'boxes'", "[K, 5]"});
  check_error([&] { kinema::ops::roi_align(x, boxes.to(at::kDouble), 2, 2); }, {"roi_align", "'boxes'", "dtype"});
  check_error([&] { kinema::ops::roi_align(x.to(at::kInt), boxes.to(at::kInt), 2, 2); }, {"roi_align", "'input'", "float32"});
  check_error([&] { kinema::ops::roi_align(x, boxes, 0, 2); }, {"roi_align", "'pooled_height'"});
  const at::Tensor far = at::tensor({2.0f, 0.f, 0.f, 2.f, 2.f}).view({1, 5});
  check_error([&] { kinema::ops::roi_align(x, far, 2, 2); }, {"roi_align", "'boxes' row 0", "batch index 2"});
}

TEST_CASE("roi_align refuses non-finite boxes and batch indices before touching memory") {
  // Also run instrumented (tests/fuzz: ASan + UBSan): a NaN coordinate used to
  // read out of bounds forward and write out of bounds backward, and a NaN or
  // huge batch index was cast to int64 (undefined) before being range-checked.
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  const at::Tensor x = at::randn({2, 3, 4, 4}, at::kDouble);
  const auto box = [](double index, double coordinate) {
    return at::tensor({index, 0.0, coordinate, 2.0, 2.0}, at::kDouble).view({1, 5});
  };
  static auto backward = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("kinema::_roi_align_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                               int64_t, double, int64_t, bool)>();
  const at::Tensor grad = at::ones({1, 3, 2, 2}, at::kDouble);
  for (double index : {nan, inf, -inf, 1e30, -1e30, 2.0, -1.0, 0.5}) {
    CAPTURE(index);
    check_error([&] { kinema::ops::roi_align(x, box(index, 0.0), 2, 2); }, {"'boxes' row 0", "batch index"});
    check_error([&] { backward.call(grad, box(index, 0.0), 2, 4, 4, 1.0, -1, false); },
                {"'boxes' row 0", "batch index"});
  }
  for (double coordinate : {nan, inf, -inf}) {
    CAPTURE(coordinate);
    check_error([&] { kinema::ops::roi_align(x, box(0.0, coordinate), 2, 2); }, {"non-finite coordinate"});
    check_error([&] { backward.call(grad, box(0.0, coordinate), 2, 4, 4, 1.0, -1, false); },
                {"_roi_align_backward", "non-finite coordinate"});
  }
  check_error([&] { kinema::ops::roi_align(at::randn({1, 2, 0, 0}), box(0.0, 0.0).to(at::kFloat), 2, 2); },
              {"'input' has an empty feature map"});
}

TEST_CASE("roi_align on the largest accepted box matches the reference forward and backward") {
  // Sampling points far outside the map weigh nothing and must not be read.
  torch::manual_seed(4);
  const at::Tensor x = at::randn({1, 2, 4, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor edge = at::tensor({0.0, -20.0, -20.0, 36.0, 36.0}, at::kDouble).view({1, 5});
  const at::Tensor got = kinema::ops::roi_align(x, edge, 2, 2);
  const at::Tensor want = roi_align_reference(x, edge, 2, 2, 1.0, -1, false);
  CHECK(max_abs_diff(got, want) < 1e-12);
  const at::Tensor g = at::randn_like(got);
  CHECK(max_abs_diff(torch::autograd::grad({got}, {x}, {g})[0], torch::autograd::grad({want}, {x}, {g})[0]) <
        1e-12);
}
