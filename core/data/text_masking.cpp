#include "core/data/text_masking.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include "core/data/tokenizer.h"

namespace kinema::data {

namespace {

void check_batch(const char* op, const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  TORCH_CHECK(input_ids.dim() == 2, "kinema::", op, ": input_ids must be [B, L], got ",
              input_ids.sizes());
  TORCH_CHECK(input_ids.scalar_type() == at::kLong, "kinema::", op,
              ": input_ids must be int64, got ", input_ids.scalar_type());
  TORCH_CHECK(attention_mask.sizes() == input_ids.sizes(), "kinema::", op,
              ": attention_mask ", attention_mask.sizes(), " does not match input_ids ",
              input_ids.sizes());
}

void check_mask(const char* op, const at::Tensor& attention_mask) {
  TORCH_CHECK(attention_mask.dim() == 2, "kinema::", op, ": attention_mask must be [B, L], got ",
              attention_mask.sizes());
  const at::Tensor real = attention_mask.ne(0);
  // Left-aligned: once a row has padding it stays padding.
  if (real.size(1) > 1) {
    const auto holes = real.slice(1, 1).logical_and(real.slice(1, 0, -1).logical_not());
    TORCH_CHECK(!holes.any().item<bool>(), "kinema::", op,
                ": attention_mask rows must be left-aligned (real tokens first, then padding)");
  }
}

}  // namespace

at::Generator make_text_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

MlmMasker::MlmMasker(int64_t vocab_size, int64_t mask_id, std::vector<int64_t> special_ids,
                     MlmOptions options)
    : mask_id_(mask_id), options_(options) {
  TORCH_CHECK(mask_id >= 0 && mask_id < vocab_size, "kinema::MlmMasker: mask_id ", mask_id,
              " outside the vocabulary [0, ", vocab_size, ") -- the tokenizer has no [MASK]?");
  TORCH_CHECK(options.probability >= 0 && options.probability <= 1 &&
                  options.mask_fraction >= 0 && options.random_fraction >= 0 &&
                  options.mask_fraction + options.random_fraction <= 1,
              "kinema::MlmMasker: probabilities out of range (probability ", options.probability,
              ", mask_fraction ", options.mask_fraction, ", random_fraction ",
              options.random_fraction, ")");
  if (std::find(special_ids.begin(), special_ids.end(), mask_id) == special_ids.end())
    special_ids.push_back(mask_id);
  for (int64_t id : special_ids)
    TORCH_CHECK(id >= 0 && id < vocab_size, "kinema::MlmMasker: special id ", id,
                " outside the vocabulary [0, ", vocab_size, ")");
  special_ids_ = at::tensor(special_ids, at::kLong);
  at::Tensor keep = at::ones({vocab_size}, at::kBool);
  keep.index_fill_(0, special_ids_, false);
  candidates_ = at::arange(vocab_size, at::kLong).masked_select(keep);
  TORCH_CHECK(candidates_.numel() > 0, "kinema::MlmMasker: every id is special");
}

MlmMasker::MlmMasker(const Tokenizer& tokenizer, MlmOptions options)
    : MlmMasker(tokenizer.vocab_size(), tokenizer.special_ids().mask, tokenizer.special_id_list(),
                options) {}

MlmBatch MlmMasker::mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         uint64_t seed) const {
  return mask(input_ids, attention_mask, make_text_generator(seed));
}

MlmBatch MlmMasker::mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         at::Generator generator) const {
  check_batch("MlmMasker::mask", input_ids, attention_mask);
  const at::Tensor ids = input_ids.cpu();
  const at::Tensor eligible = attention_mask.cpu().ne(0).logical_and(at::isin(ids, special_ids_).logical_not());
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  // Three independent draws per position: chosen?, which action, which token.
  const at::Tensor choose = at::rand(ids.sizes(), generator, opts);
  const at::Tensor action = at::rand(ids.sizes(), generator, opts);
  const at::Tensor pick = at::randint(candidates_.size(0), ids.sizes(), generator, at::kLong);

  const at::Tensor chosen = eligible.logical_and(choose.lt(options_.probability));
  const at::Tensor to_mask = chosen.logical_and(action.lt(options_.mask_fraction));
  const at::Tensor to_random =
      chosen.logical_and(action.ge(options_.mask_fraction))
          .logical_and(action.lt(options_.mask_fraction + options_.random_fraction));

  at::Tensor corrupted = ids.clone();
  corrupted.masked_fill_(to_mask, mask_id_);
  corrupted = at::where(to_random, candidates_.index_select(0, pick.flatten()).view_as(ids),
                        corrupted);
  at::Tensor labels = at::where(chosen, ids, at::full_like(ids, kIgnoreIndex));
  return {corrupted.to(input_ids.device()), labels.to(input_ids.device())};
}

at::Tensor sample_plm_split_points(const at::Tensor& attention_mask, at::Generator generator) {
  check_mask("sample_plm_split_points", attention_mask);
  const at::Tensor lengths = attention_mask.cpu().ne(0).sum(1);
  TORCH_CHECK(lengths.numel() == 0 || lengths.min().item<int64_t>() >= 2,
              "kinema::sample_plm_split_points: every caption needs at least 2 real tokens, "
              "shortest has ", lengths.numel() ? lengths.min().item<int64_t>() : 0);
  // p = 1 + floor(u * (len - 1)) with u in [0, 1): uniform over [1, len - 1].
  const at::Tensor u = at::rand({lengths.size(0)}, generator, at::TensorOptions().dtype(at::kDouble));
  at::Tensor p = (u * (lengths - 1).to(at::kDouble)).floor().to(at::kLong) + 1;
  return at::minimum(p, lengths - 1).to(attention_mask.device());
}

at::Tensor prefix_causal_mask(const at::Tensor& attention_mask, const at::Tensor& split_points) {
  check_mask("prefix_causal_mask", attention_mask);
  const int64_t batch = attention_mask.size(0), length = attention_mask.size(1);
  TORCH_CHECK(split_points.dim() == 1 && split_points.size(0) == batch,
              "kinema::prefix_causal_mask: split_points must be [B] = [", batch, "], got ",
              split_points.sizes());
  const auto device = attention_mask.device();
  const at::Tensor real = attention_mask.ne(0).view({batch, 1, length});
  const at::Tensor pos = at::arange(length, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor i = pos.view({1, length, 1});
  const at::Tensor j = pos.view({1, 1, length});
  const at::Tensor p = split_points.to(at::kLong).to(device).view({batch, 1, 1});
  const at::Tensor key_in_prefix = j.lt(p);
  const at::Tensor causal_suffix = i.ge(p).logical_and(j.le(i));
  return real.logical_and(key_in_prefix.logical_or(causal_suffix));
}

at::Tensor plm_targets(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                       const at::Tensor& split_points) {
  check_batch("plm_targets", input_ids, attention_mask);
  const int64_t batch = input_ids.size(0), length = input_ids.size(1);
  const auto device = input_ids.device();
  const at::Tensor lengths = attention_mask.ne(0).sum(1, /*keepdim=*/true);
  const at::Tensor next = at::arange(length, at::TensorOptions().dtype(at::kLong).device(device))
                              .add(1).view({1, length});
  const at::Tensor p = split_points.to(at::kLong).to(device).view({batch, 1});
  const at::Tensor predicted = next.ge(p).logical_and(next.lt(lengths));
  const at::Tensor shifted =
      at::cat({input_ids.slice(1, 1), at::full({batch, 1}, kIgnoreIndex, input_ids.options())}, 1);
  return at::where(predicted, shifted, at::full_like(input_ids, kIgnoreIndex));
}

PlmBatch make_plm_batch(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                        uint64_t seed) {
  return make_plm_batch(input_ids, attention_mask, make_text_generator(seed));
}

PlmBatch make_plm_batch(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                        at::Generator generator) {
  check_batch("make_plm_batch", input_ids, attention_mask);
  at::Tensor p = sample_plm_split_points(attention_mask, std::move(generator));
  return {p, prefix_causal_mask(attention_mask, p), plm_targets(input_ids, attention_mask, p)};
}

}  // namespace kinema::data
