// Cross-checks against the peers: torchvision's roi_align and scipy's
// linear_sum_assignment, through expected values committed in
// tests/fixtures/ops_reference.json (made by tests/fixtures/make_ops_fixtures.py).
#include "ops/ops.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>
#include "test_paths.h"

using kinema::ops::testing::max_abs_diff;

namespace {

const nlohmann::json& fixture() {
  static const nlohmann::json data = [] {
    std::ifstream in(std::string(KINEMA_FIXTURES) + "/ops_reference.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return data;
}

at::Tensor tensor_of(const nlohmann::json& values, at::IntArrayRef shape) {
  const auto v = values.get<std::vector<double>>();
  return at::tensor(v, at::kDouble).view(shape).clone();
}

}  // namespace

TEST_CASE("roi_align equals torchvision's on the fixture, forward and backward") {
  const auto& f = fixture()["roi_align"];
  const auto shape = f["input_shape"].get<std::vector<int64_t>>();
  const at::Tensor boxes = tensor_of(f["boxes"], {-1, 5});
  int checked = 0;
  for (const auto& c : f["cases"]) {
    const auto pooled = c["pooled"].get<std::vector<int64_t>>();
    const at::Tensor x = tensor_of(f["input"], shape).requires_grad_(true);
    const at::Tensor out = kinema::ops::roi_align(
        x, boxes, pooled[0], pooled[1], c["spatial_scale"].get<double>(),
        c["sampling_ratio"].get<int64_t>(), c["aligned"].get<bool>());
    const at::Tensor want = tensor_of(c["output"], out.sizes());
    CHECK(max_abs_diff(out, want) < 1e-12);
    const at::Tensor g = tensor_of(c["grad_output"], out.sizes());
    const at::Tensor gx = torch::autograd::grad({out}, {x}, {g})[0];
    CHECK(max_abs_diff(gx, tensor_of(c["grad_input"], x.sizes())) < 1e-12);
    ++checked;
  }
  CHECK(checked == 8);
}

TEST_CASE("linear_assignment totals equal scipy's on the fixture") {
  int checked = 0;
  for (const auto& c : fixture()["linear_assignment"]) {
    const int64_t rows = c["rows"].get<int64_t>(), cols = c["cols"].get<int64_t>();
    const bool maximize = c["maximize"].get<bool>();
    const at::Tensor cost = tensor_of(c["cost"], {1, rows, cols});
    CAPTURE(rows); CAPTURE(cols); CAPTURE(maximize);
    for (auto dtype : {at::kDouble, at::kFloat}) {
      auto [r, col] = kinema::ops::linear_assignment(cost.to(dtype), at::Tensor(), at::Tensor(),
                                                     maximize);
      const at::Tensor total = cost[0].index({r[0], col[0]}).sum();
      const double want = c["total"].get<double>();
      if (dtype == at::kDouble) {
        CHECK(total.item<double>() == doctest::Approx(want).epsilon(1e-12));
        // Random real costs have a unique optimum: the pairs must be scipy's.
        if (c["kind"] == "real") {
          CHECK(r[0].equal(at::tensor(c["row_ind"].get<std::vector<int64_t>>(), at::kLong)));
          CHECK(col[0].equal(at::tensor(c["col_ind"].get<std::vector<int64_t>>(), at::kLong)));
        }
      } else {
        CHECK(total.item<double>() == doctest::Approx(want).epsilon(1e-5));
      }
    }
    ++checked;
  }
  CHECK(checked == 32);
}
