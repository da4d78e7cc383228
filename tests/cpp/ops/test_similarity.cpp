// rwa_similarity and grounding_similarity against naive references that
// build the full [Bv, Bt, N, L] attention and the attended vectors with plain
// ATen ops exactly as docs/objectives.md reads (autograd gives reference gradients).
#include "ops/ops.h"
#include "ops/pooled_cosine.h"
#include "ops/roi_align.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <limits>

using kinema::ops::testing::check_error;
using kinema::ops::testing::gradcheck;
using kinema::ops::testing::max_abs_diff;

namespace {

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-8); }

at::Tensor cosine(const at::Tensor& a, const at::Tensor& b) {
  return (a * b).sum(-1) / (a.norm(2, {-1}) * b.norm(2, {-1})).clamp_min(1e-8);
}

// Softmax over dim restricted to valid entries; all-invalid slices give zeros.
at::Tensor masked_softmax(const at::Tensor& z, const at::Tensor& valid, int64_t dim) {
  const at::Tensor w = z.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity())
                           .softmax(dim);
  return at::where(valid.expand_as(w), w, at::zeros_like(w)).nan_to_num(0.0);
}

// docs/objectives.md, DemoVLP RWA: returns {S [Bv,Bt], S' [Bt,Bv]}.
std::pair<at::Tensor, at::Tensor> rwa_reference(const at::Tensor& r, const at::Tensor& mr,
                                                const at::Tensor& t, const at::Tensor& mt,
                                                double lambda) {
  const int64_t bv = r.size(0), n = r.size(1), bt = t.size(0), l = t.size(1), d = r.size(2);
  const at::Tensor c = at::einsum("ind,jld->ijnl", {unit(r), unit(t)});  // [Bv,Bt,N,L]
  const at::Tensor mrf = mr.to(r.scalar_type()), mtf = mt.to(r.scalar_type());
  // region -> word
  at::Tensor a = masked_softmax(lambda * c, mt.view({1, bt, 1, l}), 3);
  const at::Tensor mean_a = a.sum(3, true) / mtf.sum(1).clamp_min(1).view({1, bt, 1, 1});
  a = a * a.gt(mean_a).to(a.scalar_type()).detach();
  const at::Tensor alpha = at::einsum("ijnl,jld->ijnd", {a, t});
  const at::Tensor cr = cosine(r.unsqueeze(1).expand({bv, bt, n, d}), alpha);
  const at::Tensor s = (cr * mrf.unsqueeze(1)).sum(2) / mrf.sum(1).clamp_min(1).unsqueeze(1);
  // word -> region
  at::Tensor b = masked_softmax(lambda * c, mr.view({bv, 1, n, 1}), 2);
  const at::Tensor mean_b = b.sum(2, true) / mrf.sum(1).clamp_min(1).view({bv, 1, 1, 1});
  b = b * b.gt(mean_b).to(b.scalar_type()).detach();
  const at::Tensor beta = at::einsum("ijnl,ind->ijld", {b, r});
  const at::Tensor cw = cosine(t.unsqueeze(0).expand({bv, bt, l, d}), beta);
  const at::Tensor s_t = (cw * mtf.unsqueeze(0)).sum(2) / mtf.sum(1).clamp_min(1).unsqueeze(0);
  return {s, s_t.t()};
}

// docs/objectives.md, S-ViLM grounding: G [Bv,Bt].
at::Tensor grounding_reference(const at::Tensor& g, const at::Tensor& nouns, const at::Tensor& mk,
                               double tau) {
  const at::Tensor c = at::einsum("imd,jkd->ijmk", {unit(g), unit(nouns)});
  const at::Tensor a = (c / tau).softmax(2);
  const at::Tensor pooled = at::einsum("ijmk,imd->ijkd", {a, g});
  const at::Tensor cs = cosine(nouns.unsqueeze(0).expand({g.size(0), -1, -1, -1}), pooled);
  const at::Tensor mkf = mk.to(g.scalar_type());
  return (cs * mkf.unsqueeze(0)).sum(2) / mkf.sum(1).clamp_min(1).unsqueeze(0);
}

// Random masks with the edge cases forced in: video 0 has a single region,
// caption 0 has no valid word, caption 1 a single word.
std::pair<at::Tensor, at::Tensor> edge_masks(int64_t bv, int64_t n, int64_t bt, int64_t l) {
  at::Tensor mr = at::rand({bv, n}).gt(0.3);
  at::Tensor mt = at::rand({bt, l}).gt(0.3);
  mr[0].fill_(false);
  mr[0][1] = true;
  mt[0].fill_(false);
  mt[1].fill_(false);
  mt[1][0] = true;
  return {mr, mt};
}

}  // namespace

TEST_CASE("rwa_similarity matches the materialising reference, forward and backward") {
  torch::manual_seed(5);
  for (double lambda : {1.0, 20.0}) {
    CAPTURE(lambda);
    const at::Tensor r = at::randn({4, 6, 8}, at::kDouble).requires_grad_(true);
    const at::Tensor t = at::randn({5, 7, 8}, at::kDouble).requires_grad_(true);
    auto [mr, mt] = edge_masks(4, 6, 5, 7);
    auto [s, s_t] = kinema::ops::rwa_similarity(r, mr, t, mt, lambda);
    auto [ws, ws_t] = rwa_reference(r, mr, t, mt, lambda);
    REQUIRE((s.sizes() == at::IntArrayRef({4, 5})));
    REQUIRE((s_t.sizes() == at::IntArrayRef({5, 4})));
    CHECK(max_abs_diff(s, ws) < 1e-12);
    CHECK(max_abs_diff(s_t, ws_t) < 1e-12);
    // Empty caption scores 0 both ways; a single word never passes "> mean".
    CHECK(s.select(1, 0).abs().max().item<double>() == 0.0);
    CHECK(s_t[0].abs().max().item<double>() == 0.0);
    CHECK(s.select(1, 1).abs().max().item<double>() == 0.0);
    const at::Tensor g1 = at::randn_like(s), g2 = at::randn_like(s_t);
    const auto got = torch::autograd::grad({s, s_t}, {r, t}, {g1, g2});
    const auto want = torch::autograd::grad({ws, ws_t}, {r, t}, {g1, g2});
    CHECK(max_abs_diff(got[0], want[0]) < 1e-12);
    CHECK(max_abs_diff(got[1], want[1]) < 1e-12);
  }
}

TEST_CASE("rwa_similarity without masks equals all-true masks; float32 agrees with float64") {
  torch::manual_seed(6);
  const at::Tensor r = at::randn({3, 5, 16}), t = at::randn({4, 6, 16});
  auto [a, a_t] = kinema::ops::rwa_similarity(r, at::Tensor(), t, at::Tensor(), 5.0);
  auto [b, b_t] = kinema::ops::rwa_similarity(r.to(at::kDouble), at::ones({3, 5}, at::kBool),
                                              t.to(at::kDouble), at::ones({4, 6}, at::kBool), 5.0);
  CHECK(max_abs_diff(a, b) < 1e-5);
  CHECK(max_abs_diff(a_t, b_t) < 1e-5);
}

TEST_CASE("rwa_similarity ties: identical words share the weight and both fall at the mean") {
  // Two identical valid words: each weight is exactly 1/2 = the mean, so
  // nothing is kept and the region -> word score is 0.
  const at::Tensor r = at::randn({1, 3, 4}, at::kDouble);
  const at::Tensor word = at::randn({1, 1, 4}, at::kDouble);
  const at::Tensor t = at::cat({word, word}, 1);
  auto [s, s_t] = kinema::ops::rwa_similarity(r, at::Tensor(), t, at::Tensor(), 1.0);
  auto [ws, ws_t] = rwa_reference(r, at::ones({1, 3}, at::kBool), t, at::ones({1, 2}, at::kBool), 1.0);
  CHECK(s.item<double>() == 0.0);
  CHECK(max_abs_diff(s_t, ws_t) < 1e-12);
}

TEST_CASE("rwa_similarity gradcheck in float64") {
  torch::manual_seed(7);
  at::Tensor mr, mt;  // not a structured binding: the lambda below captures them (clang, C++17)
  std::tie(mr, mt) = edge_masks(3, 4, 3, 5);
  const double err = gradcheck(
      [&](std::vector<at::Tensor> in) {
        auto [s, s_t] = kinema::ops::rwa_similarity(in[0], mr, in[1], mt, 3.0);
        return std::vector<at::Tensor>{s, s_t};
      },
      {at::randn({3, 4, 6}, at::kDouble), at::randn({3, 5, 6}, at::kDouble)});
  CHECK(err < 1e-6);
}

TEST_CASE("grounding_similarity matches the reference, forward and backward, and gradchecks") {
  torch::manual_seed(8);
  const at::Tensor g = at::randn({4, 5, 8}, at::kDouble).requires_grad_(true);
  const at::Tensor nouns = at::randn({6, 3, 8}, at::kDouble).requires_grad_(true);
  at::Tensor mk = at::rand({6, 3}).gt(0.4);
  mk[0].fill_(false);  // caption without nouns scores 0
  mk[1].fill_(true);
  for (double tau : {1.0, 0.1}) {
    const at::Tensor got = kinema::ops::grounding_similarity(g, nouns, mk, tau);
    const at::Tensor want = grounding_reference(g, nouns, mk, tau);
    CHECK(max_abs_diff(got, want) < 1e-12);
    CHECK(got.select(1, 0).abs().max().item<double>() == 0.0);
    const at::Tensor w = at::randn_like(got);
    const auto a = torch::autograd::grad({got}, {g, nouns}, {w});
    const auto b = torch::autograd::grad({want}, {g, nouns}, {w});
    CHECK(max_abs_diff(a[0], b[0]) < 1e-12);
    CHECK(max_abs_diff(a[1], b[1]) < 1e-12);
  }
  const double err = gradcheck(
      [&](std::vector<at::Tensor> in) {
        return std::vector<at::Tensor>{
            kinema::ops::grounding_similarity(in[0], in[1], mk.slice(0, 0, 3), 0.5)};
      },
      {at::randn({2, 4, 5}, at::kDouble), at::randn({3, 3, 5}, at::kDouble)});
  CHECK(err < 1e-6);
}

TEST_CASE("pooled cosine gives the same result for any chunking") {
  torch::manual_seed(9);
  const at::Tensor a = at::randn({5, 4, 6}, at::kDouble), b = at::randn({7, 3, 6}, at::kDouble);
  const at::Tensor ma = at::rand({5, 4}).gt(0.2).to(at::kDouble);
  const at::Tensor mb = at::rand({7, 3}).gt(0.2).to(at::kDouble);
  const at::Tensor ga = at::randn({5, 7}, at::kDouble), gb = at::randn({5, 7}, at::kDouble);
  kinema::ops::detail::PooledCosineOptions whole;
  whole.threshold = true;
  whole.scale = 4.0;
  const auto f0 = kinema::ops::detail::pooled_cosine_forward(a, ma, b, mb, whole);
  const auto b0 = kinema::ops::detail::pooled_cosine_backward(ga, gb, a, ma, b, mb, whole);
  for (int64_t chunk : {1, 12, 30, 100}) {
    CAPTURE(chunk);
    auto o = whole;
    o.chunk_elements = chunk;
    const auto f = kinema::ops::detail::pooled_cosine_forward(a, ma, b, mb, o);
    const auto g = kinema::ops::detail::pooled_cosine_backward(ga, gb, a, ma, b, mb, o);
    CHECK(max_abs_diff(f.first, f0.first) < 1e-13);
    CHECK(max_abs_diff(f.second, f0.second) < 1e-13);
    CHECK(max_abs_diff(g.first, b0.first) < 1e-12);
    CHECK(max_abs_diff(g.second, b0.second) < 1e-12);
  }
}

TEST_CASE("similarity ops reject bad arguments naming them") {
  const at::Tensor r = at::randn({2, 3, 4}), t = at::randn({3, 5, 4});
  check_error([&] { kinema::ops::rwa_similarity(r[0], at::Tensor(), t, at::Tensor(), 1.0); },
              {"kinema::rwa_similarity", "'regions'", "3 dimensions"});
  check_error([&] { kinema::ops::rwa_similarity(r, at::Tensor(), at::randn({3, 5, 6}), at::Tensor(), 1.0); },
              {"rwa_similarity", "'words'", "embedding size"});
  check_error([&] { kinema::ops::rwa_similarity(r, at::Tensor(), t.to(at::kDouble), at::Tensor(), 1.0); },
              {"rwa_similarity", "'words'", "dtype"});
  check_error([&] { kinema::ops::rwa_similarity(r, at::ones({2, 3}), t, at::Tensor(), 1.0); },
              {"rwa_similarity", "'region_mask'", "bool"});
  check_error([&] { kinema::ops::rwa_similarity(r, at::Tensor(), t, at::ones({3, 4}, at::kBool), 1.0); },
              {"rwa_similarity", "'word_mask'", "shape"});
  check_error([&] { kinema::ops::rwa_similarity(r, at::Tensor(), t.to(at::kMeta), at::Tensor(), 1.0); },
              {"rwa_similarity", "'words'", "meta"});
  check_error([&] { kinema::ops::grounding_similarity(r, t, at::ones({3}, at::kBool), 1.0); },
              {"kinema::grounding_similarity", "'noun_mask'", "2 dimensions"});
  check_error([&] { kinema::ops::grounding_similarity(r, t, at::Tensor(), 0.0); },
              {"grounding_similarity", "'tau'"});
  check_error([&] { kinema::ops::grounding_similarity(r, t.to(at::kMeta), at::Tensor(), 1.0); },
              {"grounding_similarity", "'nouns'", "meta"});
  // Device mismatch for roi_align (its checks are shared by the backends).
  check_error([&] { kinema::ops::detail::check_roi_align(at::randn({1, 2, 3, 3}), at::zeros({1, 5}, at::kMeta), 1, 1); },
              {"roi_align", "'boxes'", "meta"});
}
