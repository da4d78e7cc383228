// The autocast kernels of the custom operators (ops/autocast.cpp), on the
// AutocastCPU key: the CUDA key is registered by the same template, so what
// holds here holds there. Under bf16 autocast each op must compute exactly
// what it computes on the float32 upcast of its inputs.
#include "ops/ops.h"
#include "ops/torch_compat.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

using kinema::ops::testing::max_abs_diff;

namespace {

// bf16 autocast on the CPU for one scope, restored after.
class CpuAutocast {
 public:
  CpuAutocast()
      : was_enabled_(kinema::compat::autocast_enabled(at::kCPU)),
        old_dtype_(kinema::compat::autocast_dtype(at::kCPU)) {
    kinema::compat::set_autocast_enabled(at::kCPU, true);
    kinema::compat::set_autocast_dtype(at::kCPU, at::kBFloat16);
  }
  ~CpuAutocast() {
    at::autocast::clear_cache();
    kinema::compat::set_autocast_enabled(at::kCPU, was_enabled_);
    kinema::compat::set_autocast_dtype(at::kCPU, old_dtype_);
  }
  CpuAutocast(const CpuAutocast&) = delete;
  CpuAutocast& operator=(const CpuAutocast&) = delete;

 private:
  bool was_enabled_;
  at::ScalarType old_dtype_;
};

}  // namespace

TEST_CASE("roi_align under bf16 autocast computes in float32 and returns the input's dtype") {
  torch::manual_seed(0);
  const at::Tensor input = torch::randn({2, 3, 9, 9}).to(torch::kBFloat16);
  const at::Tensor boxes = torch::tensor({0.0, 1.0, 1.5, 6.0, 7.0, 1.0, 0.0, 2.0, 8.0, 5.5}).view({2, 5});
  at::Tensor leaf = input.clone().requires_grad_(true);
  at::Tensor out;
  {
    CpuAutocast autocast;
    out = kinema::ops::roi_align(leaf, boxes.to(torch::kBFloat16), 3, 3, 1.0, 2, true);
  }
  CHECK((out.scalar_type() == torch::kBFloat16));
  at::Tensor leaf32 = input.to(torch::kFloat).requires_grad_(true);
  const at::Tensor ref = kinema::ops::roi_align(leaf32, boxes, 3, 3, 1.0, 2, true);
  CHECK(max_abs_diff(out, ref.to(torch::kBFloat16)) == 0.0);
  // The gradient reaches the bf16 leaf, as the float32 gradient rounded.
  // Weights exact in bf16, so both backward passes start from the same gradient.
  const at::Tensor w = torch::randn_like(ref).to(torch::kBFloat16).to(torch::kFloat);
  (out.to(torch::kFloat) * w).sum().backward();
  (ref * w).sum().backward();
  REQUIRE(leaf.grad().defined());
  CHECK((leaf.grad().scalar_type() == torch::kBFloat16));
  CHECK(max_abs_diff(leaf.grad(), leaf32.grad().to(torch::kBFloat16)) == 0.0);
}

TEST_CASE("similarity ops under bf16 autocast return float32 equal to the float32 computation") {
  torch::manual_seed(1);
  const at::Tensor regions = torch::randn({2, 4, 8}).to(torch::kBFloat16);
  const at::Tensor words = torch::randn({3, 5, 8}).to(torch::kBFloat16);
  const at::Tensor region_mask = torch::rand({2, 4}).gt(0.3);
  const at::Tensor word_mask = torch::rand({3, 5}).gt(0.3);
  std::tuple<at::Tensor, at::Tensor> rwa;
  at::Tensor grounding;
  {
    CpuAutocast autocast;
    rwa = kinema::ops::rwa_similarity(regions, region_mask, words, word_mask, 2.0);
    grounding = kinema::ops::grounding_similarity(regions, words, word_mask, 0.5);
  }
  const auto rwa_ref = kinema::ops::rwa_similarity(regions.to(torch::kFloat), region_mask, words.to(torch::kFloat),
                                                   word_mask, 2.0);
  const at::Tensor grounding_ref =
      kinema::ops::grounding_similarity(regions.to(torch::kFloat), words.to(torch::kFloat), word_mask, 0.5);
  CHECK((std::get<0>(rwa).scalar_type() == torch::kFloat));
  CHECK((std::get<1>(rwa).scalar_type() == torch::kFloat));
  CHECK((grounding.scalar_type() == torch::kFloat));
  CHECK(max_abs_diff(std::get<0>(rwa), std::get<0>(rwa_ref)) == 0.0);
  CHECK(max_abs_diff(std::get<1>(rwa), std::get<1>(rwa_ref)) == 0.0);
  CHECK(max_abs_diff(grounding, grounding_ref) == 0.0);
}

TEST_CASE("linear_assignment under bf16 autocast solves the float32 upcast of the cost") {
  torch::manual_seed(2);
  const at::Tensor cost = torch::rand({3, 6, 4}).to(torch::kBFloat16);
  const at::Tensor row_counts = torch::tensor({6, 3, 0}, torch::kLong);
  std::tuple<at::Tensor, at::Tensor> got;
  {
    CpuAutocast autocast;
    got = kinema::ops::linear_assignment(cost, row_counts, {}, false);
  }
  const auto ref = kinema::ops::linear_assignment(cost.to(torch::kFloat), row_counts, {}, false);
  CHECK(torch::equal(std::get<0>(got), std::get<0>(ref)));
  CHECK(torch::equal(std::get<1>(got), std::get<1>(ref)));
}
