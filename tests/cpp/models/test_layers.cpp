// Attention against torch::nn::MultiheadAttention, masks, activation choice,
// gradient checkpointing, and the position-embedding surgery functions against
// references computed by Python torch (tests/fixtures/make_models_pos_embed.py).
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "models/grouping.h"
#include "models/layers.h"
#include "models/pos_embed.h"
#include "ops/torch_compat.h"
#include "models_test_util.h"
#include "../ops/ops_test_util.h"
#include "test_paths.h"

using namespace kinema::models;
using kinema::models::testing::check_error;
using kinema::models::testing::max_abs_diff;

TEST_CASE("SelfAttention equals torch::nn::MultiheadAttention, with and without key padding") {
  torch::manual_seed(0);
  AttentionOptions o;
  o.dim = 16;
  o.num_heads = 4;
  SelfAttention attn(o);
  auto mha = torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(16, 4));
  {
    torch::NoGradGuard g;
    auto p = attn->named_parameters();
    mha->in_proj_weight.copy_(p["qkv.weight"]);
    mha->in_proj_bias.copy_(p["qkv.bias"]);
    mha->out_proj->weight.copy_(p["proj.weight"]);
    mha->out_proj->bias.copy_(p["proj.bias"]);
  }
  at::Tensor x = torch::randn({3, 5, 16});
  at::Tensor xs = x.transpose(0, 1);  // MHA is sequence-first
  at::Tensor ref = std::get<0>(mha->forward(xs, xs, xs)).transpose(0, 1);
  CHECK(max_abs_diff(attn->forward(x), ref) < 1e-5);

  at::Tensor valid = torch::ones({3, 5}, torch::kBool);
  valid.index_put_({0, torch::indexing::Slice(3, 5)}, false);
  valid.index_put_({2, 4}, false);
  at::Tensor ref_masked =
      std::get<0>(mha->forward(xs, xs, xs, /*key_padding_mask=*/valid.logical_not())).transpose(0, 1);
  at::Tensor got = attn->forward(x, additive_attention_mask(valid, x.scalar_type()));
  CHECK(max_abs_diff(got, ref_masked) < 1e-5);
}

TEST_CASE("separate q/k/v projections compute the same attention as the fused one") {
  torch::manual_seed(1);
  AttentionOptions fused;
  fused.dim = 12;
  fused.num_heads = 3;
  AttentionOptions sep = fused;
  sep.fused_qkv = false;
  SelfAttention a(fused), b(sep);
  {
    torch::NoGradGuard g;
    auto pa = a->named_parameters();
    auto pb = b->named_parameters();
    auto w = pa["qkv.weight"].chunk(3, 0);
    auto bias = pa["qkv.bias"].chunk(3, 0);
    const char* names[] = {"q", "k", "v"};
    for (int i = 0; i < 3; ++i) {
      pb[std::string(names[i]) + ".weight"].copy_(w[i]);
      pb[std::string(names[i]) + ".bias"].copy_(bias[i]);
    }
    pb["proj.weight"].copy_(pa["proj.weight"]);
    pb["proj.bias"].copy_(pa["proj.bias"]);
  }
  at::Tensor x = torch::randn({2, 7, 12});
  CHECK(max_abs_diff(a->forward(x), b->forward(x)) < 1e-5);
  CHECK(b->named_parameters().contains("q.weight"));
  CHECK_FALSE(b->named_parameters().contains("qkv.weight"));
}

// The encoders' attention (SelfAttention, the grouping cross-attention) calls
// compat::attention, which on LibTorch 2.x runs at::scaled_dot_product_attention
// (the fused CPU kernel here) and on 1.13 the explicit softmax. The two paths
// must agree, values and gradients, masks included (a fully masked row
// averages every key instead of giving NaN).
TEST_CASE("fused and explicit attention agree: values, gradients, masks, bf16") {
  MESSAGE("fused attention (at::scaled_dot_product_attention) available: ",
          kinema::compat::has_fused_attention);
  torch::manual_seed(5);
  const int64_t n = 3, h = 2, s_q = 7, s_k = 9, hd = 8;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const at::Tensor q0 = torch::randn({n, h, s_q, hd}, torch::kDouble);
  const at::Tensor k0 = torch::randn({n, h, s_k, hd}, torch::kDouble);
  const at::Tensor v0 = torch::randn({n, h, s_k, hd}, torch::kDouble);
  at::Tensor valid = torch::ones({n, s_k}, torch::kBool);
  valid.index_put_({0, torch::indexing::Slice(5, s_k)}, false);
  valid.index_put_({2}, false);  // every key masked
  const at::Tensor mask = additive_attention_mask(valid, torch::kDouble);
  auto run = [&](bool fused, const at::Tensor& m) {
    at::Tensor q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true),
               v = v0.clone().requires_grad_(true);
    at::Tensor y = kinema::compat::attention(q, k, v, m, 0.0, scale, fused);
    (y * y.detach().cos()).sum().backward();
    return std::vector<at::Tensor>{y.detach(), q.grad(), k.grad(), v.grad()};
  };
  for (const at::Tensor& m : {mask, at::Tensor()}) {
    const auto fused = run(true, m), explicit_path = run(false, m);
    for (size_t i = 0; i < fused.size(); ++i) CHECK(max_abs_diff(fused[i], explicit_path[i]) < 1e-10);
    CHECK(torch::isfinite(fused[0]).all().item<bool>());
  }
  // The fully masked sample attends uniformly: every query gets mean(v), which
  // depends on neither q nor k, so they get no gradient there and each key's v
  // gets the sum over queries of dy / S_k (dy = cos(y) here). The fused
  // kernel's backward once weighted each key 1 instead of 1 / S_k, and the
  // explicit softmax gave q and k a gradient.
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    const auto out = run(fused, mask);
    const at::Tensor masked = out[0][2];
    CHECK(max_abs_diff(masked, v0[2].mean(1, true).expand_as(masked)) < 1e-12);
    CHECK(out[1][2].abs().max().item<double>() == 0.0);
    CHECK(out[2][2].abs().max().item<double>() == 0.0);
    const at::Tensor dv = (masked.cos().sum(1, true) / static_cast<double>(s_k)).expand({h, s_k, hd});
    CHECK(max_abs_diff(out[3][2], dv) < 1e-12);
    // Central differences on a small case, one sample fully masked.
    const at::Tensor small_valid = torch::tensor({true, false, true, false, false, false, false, false}).view({2, 4});
    const at::Tensor small_mask = additive_attention_mask(small_valid, torch::kDouble);
    const double worst = kinema::ops::testing::gradcheck(
        [&](std::vector<at::Tensor> x) {
          return std::vector<at::Tensor>{kinema::compat::attention(x[0], x[1], x[2], small_mask, 0.0, 0.7, fused)};
        },
        {torch::randn({2, 2, 3, 4}), torch::randn({2, 2, 4, 4}), torch::randn({2, 2, 4, 4})});
    CHECK(worst < 1e-6);
  }
  // bf16 (the autocast dtype): both paths within bf16 rounding of float64.
  const at::Tensor ref = run(false, mask)[0];
  const auto bf = [](const at::Tensor& t) { return t.to(torch::kBFloat16); };
  const at::Tensor mask_bf = additive_attention_mask(valid, torch::kBFloat16);
  for (bool fused : {true, false}) {
    const at::Tensor y = kinema::compat::attention(bf(q0), bf(k0), bf(v0), mask_bf, 0.0, scale, fused);
    CHECK((y.scalar_type() == torch::kBFloat16));
    CHECK(max_abs_diff(y, ref) < 0.05);
  }
}

// Names of the autograd nodes that produced `t` (its whole backward graph).
std::set<std::string> autograd_node_names(const at::Tensor& t) {
  std::set<std::string> names;
  std::vector<torch::autograd::Node*> stack{t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    names.insert(node->name());
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return names;
}

bool any_name_contains(const std::set<std::string>& names, const std::string& part) {
  for (const auto& n : names)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

// Which kernel the encoders' attention really ran, read from the backward
// graph: the fused SDPA node (ScaledDotProduct...Backward) on LibTorch 2.x,
// the explicit softmax (SoftmaxBackward) on 1.13 or when asked for.
TEST_CASE("the encoders' attention takes the fused path exactly when LibTorch has it") {
  torch::manual_seed(6);
  const bool fused = kinema::compat::has_fused_attention;
  const at::Tensor q = torch::randn({2, 2, 5, 4}, torch::requires_grad()), k = torch::randn({2, 2, 6, 4}),
                   v = torch::randn({2, 2, 6, 4});
  const auto direct_fused = autograd_node_names(kinema::compat::attention(q, k, v, {}, 0.0, 0.5, true));
  CHECK(any_name_contains(direct_fused, "ScaledDotProduct") == fused);
  CHECK(any_name_contains(direct_fused, "SoftmaxBackward") == !fused);
  const auto direct_explicit = autograd_node_names(kinema::compat::attention(q, k, v, {}, 0.0, 0.5, false));
  CHECK_FALSE(any_name_contains(direct_explicit, "ScaledDotProduct"));
  CHECK(any_name_contains(direct_explicit, "SoftmaxBackward"));

  AttentionOptions o;
  o.dim = 8;
  o.num_heads = 2;
  SelfAttention self_attn(o);
  at::Tensor valid = torch::ones({2, 6}, torch::kBool);
  valid.index_put_({1, 5}, false);
  const auto self_names = autograd_node_names(self_attn->forward(torch::randn({2, 6, 8}),
                                                                 additive_attention_mask(valid, torch::kFloat)));
  CHECK(any_name_contains(self_names, "ScaledDotProduct") == fused);
  CHECK(any_name_contains(self_names, "SoftmaxBackward") == !fused);

  CrossAttention cross_attn(8, 2);
  const auto cross_names = autograd_node_names(cross_attn->forward(torch::randn({2, 3, 8}), torch::randn({2, 6, 8}),
                                                                   additive_attention_mask(valid, torch::kFloat)));
  CHECK(any_name_contains(cross_names, "ScaledDotProduct") == fused);
  CHECK(any_name_contains(cross_names, "SoftmaxBackward") == !fused);
}

TEST_CASE("activations: quick_gelu and exact gelu") {
  at::Tensor x = torch::linspace(-3, 3, 13, torch::kDouble);
  CHECK(max_abs_diff(activate(x, "quick_gelu"), x / (1 + (-1.702 * x).exp())) < 1e-12);
  CHECK(max_abs_diff(activate(x, "gelu"), 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0)))) < 1e-12);
  check_error([&] { LayerOptions o; o.act = "swish"; TransformerLayer l(o); }, "'act'");
}

TEST_CASE("gradient checkpointing reproduces the gradients, dropout included") {
  LayerOptions o;
  o.dim = 16;
  o.num_heads = 2;
  o.dropout = 0.2;
  o.attn_dropout = 0.1;
  torch::manual_seed(3);
  TransformerLayer layer(o);
  layer->train();
  at::Tensor x0 = torch::randn({2, 6, 16}, torch::kDouble);
  layer->to(torch::kDouble);
  auto run = [&](bool ckpt) {
    layer->zero_grad();
    at::Tensor x = x0.clone().requires_grad_(true);
    torch::manual_seed(11);
    auto fn = [&](const at::Tensor& in) { return layer->forward(in); };
    at::Tensor h = x * 1.5;  // a non-leaf input, as inside an encoder
    at::Tensor y = ckpt ? checkpoint(fn, h) : fn(h);
    y = ckpt ? checkpoint(fn, y) : fn(y);  // two segments in a row
    (y * y).sum().backward();
    std::vector<at::Tensor> grads{x.grad().clone()};
    for (auto& p : layer->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(y.detach(), grads);
  };
  auto plain = run(false);
  auto ckpt = run(true);
  CHECK(max_abs_diff(plain.first, ckpt.first) == 0.0);
  REQUIRE(plain.second.size() == ckpt.second.size());
  for (size_t i = 0; i < plain.second.size(); ++i) CHECK(max_abs_diff(plain.second[i], ckpt.second[i]) < 1e-12);
  // Without grad mode the checkpoint is a plain call.
  torch::NoGradGuard g;
  at::Tensor y = checkpoint([&](const at::Tensor& in) { return in * 2; }, x0);
  CHECK_FALSE(y.requires_grad());
}

static c10::Dict<c10::IValue, c10::IValue> load_fixture(const std::string& name) {
  std::ifstream in(std::string(KINEMA_FIXTURES) + "/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toGenericDict();
}

TEST_CASE("position-embedding resampling matches Python torch (timm's recipe)") {
  auto ref = load_fixture("models_pos_embed.pt");
  at::Tensor pos = ref.at("pos").toTensor();
  CHECK(max_abs_diff(resize_spatial_pos_embed(pos, 6, 6, 1, "bicubic"), ref.at("bicubic_6x6").toTensor()) < 1e-10);
  CHECK(max_abs_diff(resize_spatial_pos_embed(pos, 3, 5, 1, "bilinear"), ref.at("bilinear_3x5").toTensor()) < 1e-10);
  // CLIP layout [L, D] keeps its rank; same size is the identity.
  at::Tensor flat = resize_spatial_pos_embed(pos[0], 6, 6);
  CHECK(flat.dim() == 2);
  CHECK(max_abs_diff(flat, ref.at("bicubic_6x6").toTensor()[0]) < 1e-10);
  CHECK(resize_spatial_pos_embed(pos, 4, 4).equal(pos));
  at::Tensor time = ref.at("time").toTensor();
  CHECK(max_abs_diff(resize_temporal_pos_embed(time, 6, "linear"), ref.at("time_linear_6").toTensor()) < 1e-10);
  at::Tensor padded = resize_temporal_pos_embed(time, 6, "pad");
  CHECK(padded.narrow(1, 0, 4).equal(time));
  CHECK(padded.narrow(1, 4, 2).abs().sum().item<double>() == 0.0);
  CHECK(resize_temporal_pos_embed(time, 2, "pad").equal(time.narrow(1, 0, 2)));
  check_error([&] { resize_spatial_pos_embed(pos.narrow(1, 0, 15), 4, 4); }, "square");
  check_error([&] { resize_spatial_pos_embed(pos, 4, 4, 1, "area"); }, "'mode'");
  check_error([&] { resize_temporal_pos_embed(time, 0); }, "'new_t'");
}

TEST_CASE("inflated patch kernels give the 2-D response on a static clip") {
  torch::manual_seed(4);
  at::Tensor w = torch::randn({6, 3, 4, 4}, torch::kDouble);
  at::Tensor image = torch::randn({1, 3, 8, 8}, torch::kDouble);
  at::Tensor clip = image.unsqueeze(2).repeat({1, 1, 2, 1, 1});  // [1, 3, 2, 8, 8]
  at::Tensor ref = torch::conv2d(image, w, {}, 4);
  at::Tensor avg = torch::conv3d(clip, inflate_patch_weight(w, 2, "average"), {}, {2, 4, 4});
  at::Tensor center = torch::conv3d(clip, inflate_patch_weight(w, 2, "center"), {}, {2, 4, 4});
  CHECK(max_abs_diff(avg.squeeze(2), ref) < 1e-12);
  CHECK(max_abs_diff(center.squeeze(2), ref) < 1e-12);
  check_error([&] { inflate_patch_weight(w, 2, "zeros"); }, "'mode'");
}
