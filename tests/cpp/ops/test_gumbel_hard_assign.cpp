// kinema::gumbel_hard_assign: exact one-hot forward, determinism under a
// seed, and the straight-through gradient equal to the gradient of
// softmax((logits + g) / tau) for the same Gumbel noise g.
#include "ops/ops.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

using kinema::ops::testing::check_error;
using kinema::ops::testing::max_abs_diff;

TEST_CASE("gumbel_hard_assign is one-hot, seeded, and straight-through") {
  torch::manual_seed(0);
  const at::Tensor logits = at::randn({3, 7, 5}, at::kDouble).requires_grad_(true);
  for (int64_t dim : {-1, 1}) {
    const double tau = 0.7;
    torch::manual_seed(42);
    const at::Tensor hard = kinema::ops::gumbel_hard_assign(logits, tau, dim);
    torch::manual_seed(42);
    const at::Tensor again = kinema::ops::gumbel_hard_assign(logits, tau, dim);
    CHECK(hard.equal(again));
    CHECK(((hard == 0) | (hard == 1)).all().item<bool>());
    CHECK(hard.sum(dim).eq(1).all().item<bool>());

    // The same noise, drawn the documented way, gives the reference.
    torch::manual_seed(42);
    const at::Tensor noise = -at::empty_like(logits).exponential_().log();
    const at::Tensor soft = ((logits + noise) / tau).softmax(dim);
    const at::Tensor expected = at::zeros_like(soft).scatter_(dim, soft.argmax(dim, true), 1.0);
    CHECK(hard.detach().equal(expected.detach()));
    const at::Tensor w = at::randn_like(hard);
    const auto got = torch::autograd::grad({hard}, {logits}, {w})[0];
    const auto want = torch::autograd::grad({soft}, {logits}, {w})[0];
    CHECK(max_abs_diff(got, want) < 1e-12);
  }
  torch::manual_seed(1);
  const at::Tensor a = kinema::ops::gumbel_hard_assign(logits, 1.0, -1);
  const at::Tensor b = kinema::ops::gumbel_hard_assign(logits, 1.0, -1);
  CHECK_FALSE(a.equal(b));  // fresh noise on every call (21 rows of 5)
}

TEST_CASE("gumbel_hard_assign rejects bad arguments") {
  const at::Tensor x = at::randn({2, 3});
  check_error([&] { kinema::ops::gumbel_hard_assign(x, 0.0, -1); }, {"kinema::gumbel_hard_assign", "'tau'"});
  check_error([&] { kinema::ops::gumbel_hard_assign(x, 1.0, 2); }, {"gumbel_hard_assign", "'dim'"});
  check_error([&] { kinema::ops::gumbel_hard_assign(x.to(at::kLong), 1.0, -1); }, {"gumbel_hard_assign", "'logits'"});
}
