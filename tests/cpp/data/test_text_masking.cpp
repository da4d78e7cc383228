// MLM corruption statistics and reproducibility; PLM split points, the
// prefix-causal mask (against a matrix written out by hand) and targets.
#include <doctest/doctest.h>

#include "core/data/text_masking.h"
#include "core/data/tokenizer_wordpiece.h"
#include "test_paths.h"

using namespace kinema::data;

namespace {
// [B, L] batch of ids in [10, vocab), framed by 1 ... 2, padded with 0, with
// lengths spread over [3, L].
std::pair<at::Tensor, at::Tensor> random_batch(int64_t batch, int64_t length, int64_t vocab) {
  auto gen = make_text_generator(1234);
  at::Tensor ids = at::randint(10, vocab, {batch, length}, gen, at::kLong);
  at::Tensor mask = at::zeros({batch, length}, at::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = 3 + b % (length - 2);
    ids[b][0] = 1;
    ids[b][len - 1] = 2;
    ids[b].slice(0, len).fill_(0);
    mask[b].slice(0, 0, len).fill_(1);
  }
  return {ids, mask};
}
}  // namespace

TEST_CASE("mlm chooses 15% of the eligible tokens and splits them 80/10/10") {
  const int64_t vocab = 1000, mask_id = 3;
  auto [ids, attn] = random_batch(1024, 64, vocab);
  MlmMasker masker(vocab, mask_id, {0, 1, 2});
  const MlmBatch out = masker.mask(ids, attn, 7);

  const at::Tensor special = ids.eq(0).logical_or(ids.eq(1)).logical_or(ids.eq(2));
  const at::Tensor eligible = attn.ne(0).logical_and(special.logical_not());
  const at::Tensor chosen = out.labels.ne(kIgnoreIndex);
  const double n_eligible = eligible.sum().item<double>();
  const double n_chosen = chosen.sum().item<double>();
  REQUIRE(n_eligible > 30000);
  // Never a special or padding position; labels are the original ids there.
  CHECK(chosen.logical_and(eligible.logical_not()).sum().item<int64_t>() == 0);
  CHECK(at::equal(out.labels.masked_select(chosen), ids.masked_select(chosen)));
  // Untouched outside the chosen positions.
  CHECK(at::equal(out.input_ids.masked_select(chosen.logical_not()),
                  ids.masked_select(chosen.logical_not())));
  // Binomial(n, 0.15): sd ~ 0.002 of the share; 0.01 is five sd.
  CHECK(n_chosen / n_eligible == doctest::Approx(0.15).epsilon(0.07));
  const at::Tensor after = out.input_ids.masked_select(chosen);
  const at::Tensor before = ids.masked_select(chosen);
  const double masked = after.eq(mask_id).sum().item<double>() / n_chosen;
  const double unchanged = after.eq(before).sum().item<double>() / n_chosen;
  const double randomised = 1.0 - masked - unchanged;
  CHECK(masked == doctest::Approx(0.8).epsilon(0.03));
  CHECK(unchanged == doctest::Approx(0.1).epsilon(0.2));
  CHECK(randomised == doctest::Approx(0.1).epsilon(0.2));
  // Random replacements are never special ids.
  const at::Tensor replaced = after.ne(mask_id).logical_and(after.ne(before));
  const at::Tensor drawn = after.masked_select(replaced);
  CHECK(drawn.ge(4).all().item<bool>());
  CHECK(drawn.lt(vocab).all().item<bool>());
}

TEST_CASE("mlm is exact under a seed and changes with it") {
  const auto [ids, attn] = random_batch(8, 16, 50);
  MlmMasker masker(50, 3, {0, 1, 2}, MlmOptions{0.5, 0.8, 0.1});
  const auto a = masker.mask(ids, attn, 11);
  const auto b = masker.mask(ids, attn, 11);
  const auto c = masker.mask(ids, attn, 12);
  CHECK(at::equal(a.input_ids, b.input_ids));
  CHECK(at::equal(a.labels, b.labels));
  CHECK_FALSE(at::equal(a.labels, c.labels));
  // A shared generator advances: two calls differ, a fresh one replays them.
  auto gen = make_text_generator(5);
  const auto first = masker.mask(ids, attn, gen);
  const auto second = masker.mask(ids, attn, gen);
  CHECK_FALSE(at::equal(first.labels, second.labels));
  CHECK(at::equal(first.labels, masker.mask(ids, attn, make_text_generator(5)).labels));
}

TEST_CASE("mlm probability 1 with only [MASK] masks every eligible token") {
  const at::Tensor ids = at::tensor({1, 20, 21, 22, 2, 0}, at::kLong).view({1, 6});
  const at::Tensor attn = at::tensor({1, 1, 1, 1, 1, 0}, at::kLong).view({1, 6});
  MlmMasker masker(30, 3, {0, 1, 2}, MlmOptions{1.0, 1.0, 0.0});
  const auto out = masker.mask(ids, attn, 0);
  CHECK(at::equal(out.input_ids, at::tensor({1, 3, 3, 3, 2, 0}, at::kLong).view({1, 6})));
  CHECK(at::equal(out.labels, at::tensor({-100, 20, 21, 22, -100, -100}, at::kLong).view({1, 6})));
}

TEST_CASE("mlm masker from a tokenizer and its errors") {
  WordPieceTokenizer bert(KINEMA_FIXTURES "/text_bert_vocab.txt");
  MlmMasker masker(bert);
  const auto batch = bert.encode_batch({"a red circle jumps while a blue square moves left"}, 16);
  const auto out = masker.mask(batch.input_ids, batch.attention_mask, 3);
  const at::Tensor chosen = out.labels.ne(kIgnoreIndex);
  // [CLS] (101), [SEP] (102) and [PAD] (0) are never chosen.
  CHECK(chosen.logical_and(batch.input_ids.eq(101).logical_or(batch.input_ids.eq(102))
                               .logical_or(batch.input_ids.eq(0)))
            .sum().item<int64_t>() == 0);
  CHECK_THROWS_WITH_AS(MlmMasker(10, -1, {0}), doctest::Contains("mask_id"), c10::Error);
  CHECK_THROWS_WITH_AS(MlmMasker(10, 3, {0}, MlmOptions{0.15, 0.9, 0.2}),
                       doctest::Contains("kinema::MlmMasker"), c10::Error);
  CHECK_THROWS_WITH_AS(masker.mask(batch.input_ids[0], batch.attention_mask[0], 0),
                       doctest::Contains("input_ids must be [B, L]"), c10::Error);
}

TEST_CASE("plm prefix-causal mask equals the hand-written matrix") {
  // One caption of 5 real tokens ([CLS] a b c [SEP]) and one pad, p = 2.
  const at::Tensor attn = at::tensor({1, 1, 1, 1, 1, 0}, at::kLong).view({1, 6});
  const at::Tensor mask = prefix_causal_mask(attn, at::tensor({2}, at::kLong));
  // Rows: queries 0..5; columns: keys 0..5.
  const at::Tensor expected = at::tensor({1, 1, 0, 0, 0, 0,   // prefix: keys 0, 1
                                          1, 1, 0, 0, 0, 0,   //
                                          1, 1, 1, 0, 0, 0,   // suffix: prefix + itself
                                          1, 1, 1, 1, 0, 0,   //
                                          1, 1, 1, 1, 1, 0,   //
                                          1, 1, 1, 1, 1, 0},  // pad row: all real keys
                                         at::kLong).view({1, 6, 6}).to(at::kBool);
  CHECK(at::equal(mask, expected));
  // p = 1: only [CLS] in the prefix; p = len - 1: only [SEP] in the suffix.
  const at::Tensor first = prefix_causal_mask(attn, at::tensor({1}, at::kLong));
  CHECK(first[0][0].sum().item<int64_t>() == 1);
  CHECK(first[0][1].sum().item<int64_t>() == 2);
  const at::Tensor last = prefix_causal_mask(attn, at::tensor({4}, at::kLong));
  CHECK(at::equal(last[0].slice(0, 0, 4).slice(1, 0, 4), at::ones({4, 4}, at::kBool)));
  CHECK(last[0][4].sum().item<int64_t>() == 5);
}

TEST_CASE("plm targets predict the next token from p - 1 to len - 2") {
  const at::Tensor ids = at::tensor({101, 7, 8, 9, 102, 0}, at::kLong).view({1, 6});
  const at::Tensor attn = at::tensor({1, 1, 1, 1, 1, 0}, at::kLong).view({1, 6});
  const at::Tensor t = plm_targets(ids, attn, at::tensor({2}, at::kLong));
  CHECK(at::equal(t, at::tensor({-100, 8, 9, 102, -100, -100}, at::kLong).view({1, 6})));
}

TEST_CASE("plm split points are uniform over [1, len - 1] and reproducible") {
  const int64_t batch = 6000;
  at::Tensor attn = at::zeros({batch, 8}, at::kLong);
  attn.slice(1, 0, 5).fill_(1);  // len 5: p in {1, 2, 3, 4}
  const auto a = make_plm_batch(at::ones({batch, 8}, at::kLong), attn, 3);
  const auto b = make_plm_batch(at::ones({batch, 8}, at::kLong), attn, 3);
  CHECK(at::equal(a.split_points, b.split_points));
  CHECK(a.split_points.min().item<int64_t>() == 1);
  CHECK(a.split_points.max().item<int64_t>() == 4);
  for (int64_t p = 1; p <= 4; ++p) {
    const double share = a.split_points.eq(p).sum().item<double>() / batch;
    CHECK(share == doctest::Approx(0.25).epsilon(0.12));  // sd ~ 0.0056
  }
  CHECK(a.attention.sizes() == at::IntArrayRef({batch, 8, 8}));
  // Rows of mixed lengths: p < len always; exactly len - p targets per row.
  const auto [ids, mixed] = random_batch(64, 12, 100);
  const auto plm = make_plm_batch(ids, mixed, 9);
  const at::Tensor lengths = mixed.sum(1);
  CHECK(plm.split_points.ge(1).all().item<bool>());
  CHECK(plm.split_points.lt(lengths).all().item<bool>());
  CHECK(at::equal(plm.targets.ne(kIgnoreIndex).sum(1), lengths - plm.split_points));
  // Padding keys are never attended.
  CHECK_FALSE(plm.attention.logical_and(mixed.eq(0).unsqueeze(1)).any().item<bool>());
}

TEST_CASE("plm rejects captions too short to split and right-aligned masks") {
  const at::Tensor one = at::tensor({1, 0, 0}, at::kLong).view({1, 3});
  CHECK_THROWS_WITH_AS(make_plm_batch(at::ones({1, 3}, at::kLong), one, 0),
                       doctest::Contains("at least 2 real tokens"), c10::Error);
  const at::Tensor right = at::tensor({0, 1, 1}, at::kLong).view({1, 3});
  CHECK_THROWS_WITH_AS(make_plm_batch(at::ones({1, 3}, at::kLong), right, 0),
                       doctest::Contains("left-aligned"), c10::Error);
  CHECK_THROWS_WITH_AS(prefix_causal_mask(at::ones({2, 3}, at::kLong), at::ones({3}, at::kLong)),
                       doctest::Contains("split_points"), c10::Error);
}
