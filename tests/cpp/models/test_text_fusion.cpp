// TextEncoder (BERT and CLIP styles) and FusionEncoder: masks (padding,
// causal, prefix-causal), pooling, parameter names, gradients, heads.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "models/block.h"
#include "models/fusion_encoder.h"
#include "models/heads.h"
#include "models/text_encoder.h"
#include "models_test_util.h"

using namespace kinema::models;
using namespace kinema::models::testing;

static TextEncoderOptions tiny_text(const std::string& style) {
  TextEncoderOptions o = style == "bert" ? TextEncoderOptions::bert() : TextEncoderOptions::clip();
  o.vocab_size = 50;
  o.max_len = 12;
  o.depth = 2;
  o.layer.dim = 16;
  o.layer.num_heads = 2;
  o.layer.dropout = 0;
  o.layer.attn_dropout = 0;
  return o;
}

TEST_CASE("BERT-style encoder: padding does not change the real tokens; [CLS] pooling") {
  torch::manual_seed(0);
  TextEncoder enc(tiny_text("bert"));
  at::Tensor ids = torch::tensor({{1, 5, 7, 9, 2}}, torch::kLong);
  at::Tensor padded = torch::tensor({{1, 5, 7, 9, 2, 0, 0}}, torch::kLong);
  at::Tensor mask = torch::tensor({{1, 1, 1, 1, 1, 0, 0}}, torch::kLong);
  auto a = enc->forward(ids);
  auto b = enc->forward(padded, mask);
  CHECK(max_abs_diff(a.tokens, b.tokens.narrow(1, 0, 5)) < 1e-5);
  CHECK(max_abs_diff(a.pooled, a.tokens.select(1, 0)) == 0.0);
  // Without the mask the padding is attended to and changes the outputs.
  CHECK(max_abs_diff(a.tokens, enc->forward(padded).tokens.narrow(1, 0, 5)) > 1e-4);
  check_error([&] { enc->forward(torch::zeros({1, 13}, torch::kLong)); }, "max_len");
  check_error([&] { enc->forward(torch::zeros({1, 3})); }, "ids");
}

TEST_CASE("CLIP-style encoder: causal, pooled at the end-of-text token") {
  torch::manual_seed(1);
  auto o = tiny_text("clip");
  o.proj_dim = 8;
  TextEncoder enc(o);
  at::Tensor ids = torch::tensor({{3, 10, 11, 49, 0, 0}, {3, 12, 13, 14, 15, 49}}, torch::kLong);
  auto r = enc->forward(ids);
  // EOT = largest id when no mask is given.
  CHECK(r.pool_index.equal(torch::tensor({3, 5}, torch::kLong)));
  CHECK(max_abs_diff(r.pooled[0], r.tokens[0][3]) == 0.0);
  CHECK(r.pooled_proj.sizes() == at::IntArrayRef({2, 8}));
  // Causal: changing token 4 leaves positions 0..3 unchanged.
  at::Tensor changed = ids.clone();
  changed[0][4] = 7;
  auto r2 = enc->forward(changed);
  CHECK(max_abs_diff(r.tokens[0].narrow(0, 0, 4), r2.tokens[0].narrow(0, 0, 4)) < 1e-6);
  CHECK(max_abs_diff(r.tokens[0][4], r2.tokens[0][4]) > 1e-4);
  // With an attention mask the EOT is the last real token.
  at::Tensor mask = torch::tensor({{1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1}}, torch::kBool);
  CHECK(enc->forward(ids, mask).pool_index.equal(torch::tensor({2, 5}, torch::kLong)));
  auto names = enc->named_parameters();
  for (const char* n : {"word_embed.weight", "pos_embed", "blocks.0.attn.qkv.weight", "norm.weight", "proj"})
    CHECK_MESSAGE(names.contains(n), n);
  CHECK_FALSE(names.contains("embed_norm.weight"));
}

TEST_CASE("TextEncoder block: BERT names, gradients, config") {
  auto block = make_block("TextEncoder", config({{"style", "bert"}, {"vocab_size", 40}, {"max_len", 8},
                                                 {"embed_dim", 16}, {"num_heads", 4}, {"depth", 1},
                                                 {"dropout", 0.0}, {"attn_dropout", 0.0}}));
  auto names = block->named_parameters();
  for (const char* n : {"word_embed.weight", "pos_embed", "type_embed.weight", "embed_norm.weight",
                        "blocks.0.attn.q.weight", "blocks.0.attn.k.bias", "blocks.0.attn.v.weight",
                        "blocks.0.attn.proj.weight", "blocks.0.norm1.weight", "blocks.0.mlp.fc1.weight",
                        "blocks.0.norm2.bias"})
    CHECK_MESSAGE(names.contains(n), n);
  at::Tensor ids = torch::randint(0, 40, {2, 8}, torch::kLong);
  auto out = block->forward({ids, torch::ones({2, 8}, torch::kBool), torch::zeros({2, 8}, torch::kLong)});
  (output(out, "tokens").pow(2).sum()).backward();
  // Only type id 0 is used, so row 1 of type_embed gets no gradient but the tensor does.
  check_gradients(*block);
  check_error([] { make_block("TextEncoder", config({{"style", "gpt"}})); }, "'style'");
  check_error([] { make_block("TextEncoder", config({{"pool", "mean"}})); }, "'pool'");
}

TEST_CASE("fusion_attention_mask: padding and prefix-causal layout, by hand") {
  // Two context tokens, three text tokens, the last text token is padding.
  at::Tensor ctx = torch::ones({1, 2}, torch::kBool);
  at::Tensor text = torch::tensor({{1, 1, 0}}, torch::kBool);
  at::Tensor full = fusion_attention_mask(ctx, text);
  at::Tensor want_full = torch::tensor({1, 1, 1, 1, 0}, torch::kBool).repeat({5, 1}).unsqueeze(0);
  CHECK(full.equal(want_full));
  // PLM with split p = 1: text position 0 is the prefix; positions 1, 2 are the suffix.
  at::Tensor plm = fusion_attention_mask(ctx, torch::ones({1, 3}, torch::kBool), torch::tensor({1}, torch::kLong));
  at::Tensor want = torch::tensor({{1, 1, 1, 0, 0},
                                   {1, 1, 1, 0, 0},
                                   {1, 1, 1, 0, 0},
                                   {1, 1, 1, 1, 0},
                                   {1, 1, 1, 1, 1}},
                                  torch::kBool)
                        .unsqueeze(0);
  CHECK(plm.equal(want));
  check_error([&] { fusion_attention_mask(ctx, text, torch::tensor({1.0})); }, "prefix_len");
}

TEST_CASE("FusionEncoder: segments, v_CLS, PLM independence of the prefix from the suffix") {
  torch::manual_seed(2);
  FusionEncoderOptions o;
  o.depth = 2;
  o.layer.dim = 16;
  o.layer.num_heads = 2;
  o.video_dim = 8;
  FusionEncoder fusion(o);
  at::Tensor video = torch::randn({2, 3, 8}), text = torch::randn({2, 5, 16});
  at::Tensor traj = torch::randn({2, 4, 16}), act = torch::randn({2, 2, 16});
  auto r = fusion->forward(video, text, {}, traj, act);
  CHECK(r.tokens.sizes() == at::IntArrayRef({2, 3 + 1 + 4 + 2 + 5, 16}));
  CHECK(r.video.sizes() == at::IntArrayRef({2, 4, 16}));
  CHECK(max_abs_diff(r.video_cls, r.tokens.select(1, 3)) == 0.0);
  CHECK(r.trajectories.sizes() == at::IntArrayRef({2, 4, 16}));
  CHECK(r.actions.sizes() == at::IntArrayRef({2, 2, 16}));
  CHECK(max_abs_diff(r.text, r.tokens.narrow(1, 10, 5)) == 0.0);
  at::Tensor split = torch::tensor({2, 3}, torch::kLong);
  auto p1 = fusion->forward(video, text, {}, traj, act, split);
  at::Tensor text2 = text.clone();
  text2.select(1, 4).add_(torch::randn({2, 16}));  // change the last (suffix) token (not by a constant: LayerNorm removes those)
  auto p2 = fusion->forward(video, text2, {}, traj, act, split);
  CHECK(max_abs_diff(p1.tokens.narrow(1, 0, 14), p2.tokens.narrow(1, 0, 14)) < 1e-6);
  CHECK(max_abs_diff(p1.text.select(1, 4), p2.text.select(1, 4)) > 1e-4);
  // A padded caption token changes nothing else.
  at::Tensor mask = torch::tensor({{1, 1, 1, 1, 0}, {1, 1, 1, 1, 0}}, torch::kBool);
  auto m1 = fusion->forward(video, text, mask), m2 = fusion->forward(video, text2, mask);
  CHECK(max_abs_diff(m1.tokens.narrow(1, 0, 8), m2.tokens.narrow(1, 0, 8)) < 1e-6);
  check_error([&] { fusion->forward(torch::randn({2, 3, 16}), text); }, "video_dim");
}

TEST_CASE("heads: temperature, tied MLM decoder, VTM, projection") {
  Temperature tau;
  CHECK(std::abs(tau->forward().item<double>() - 0.07) < 1e-6);
  {
    torch::NoGradGuard g;
    tau->parameters()[0].fill_(10.0);  // tau = e^-10, below the clamp
  }
  CHECK(std::abs(tau->forward().item<double>() - 0.01) < 1e-9);
  auto frozen = make_block("Temperature", config({{"learnable", false}}));
  CHECK_FALSE(frozen->parameters()[0].requires_grad());

  torch::manual_seed(3);
  MLMHead head(16, 30);
  at::Tensor embeddings = torch::randn({30, 16}, torch::requires_grad());
  at::Tensor logits = head->forward(torch::randn({2, 4, 16}), embeddings);
  CHECK(logits.sizes() == at::IntArrayRef({2, 4, 30}));
  logits.sum().backward();
  CHECK(embeddings.grad().abs().sum().item<double>() > 0);  // the decoder is the embedding matrix
  check_error([&] { head->forward(torch::randn({2, 4, 16}), torch::randn({31, 16})); }, "word_embeddings");

  auto vtm = make_block("VTMHead", config({{"embed_dim", 16}}));
  CHECK(vtm->forward({torch::randn({3, 16})}).toTensor().sizes() == at::IntArrayRef({3, 2}));
  auto proj = make_block("Projection", config({{"in_dim", 16}, {"out_dim", 4}, {"normalize", true}}));
  at::Tensor y = proj->forward({torch::randn({3, 16})}).toTensor();
  CHECK(max_abs_diff(y.norm(2, -1), torch::ones({3})) < 1e-5);
  check_error([] { make_block("Projection", config({{"in_dim", 16}})); }, "out_dim");
}
