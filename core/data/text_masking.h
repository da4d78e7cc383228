#pragma once
// Text-side inputs of the two token-prediction objectives (docs/objectives.md, MLM and PLM):
//  * MLM: 15% of the non-special real tokens chosen; of those 80% become
//    [MASK], 10% a random non-special token, 10% stay; labels hold the
//    original id at chosen positions and -100 elsewhere.
//  * PLM (prefix LM): per caption a split point p uniform in [1, len-1], len =
//    number of real tokens (attention_mask 1, framing tokens included). Query
//    i may attend key j (mask[b, i, j] true) iff j is a real token and
//    (j < p, or i >= p and j <= i): the prefix attends bidirectionally within
//    itself, suffix tokens attend to the prefix and causally to the suffix,
//    padding is never attended (padding rows see every real token, so no row
//    is empty). targets[b, i] = input_ids[b, i + 1] when p <= i + 1 < len, else
//    -100: the output at i predicts the next token, from p - 1 to len - 2.
// Batches are [B, L] int64 with left-aligned real tokens, as
// Tokenizer::encode_batch makes them. Randomness comes from a seed or an
// at::Generator, so a run is reproducible.
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace kinema::data {

class Tokenizer;

constexpr int64_t kIgnoreIndex = -100;

struct MlmOptions {
  double probability = 0.15;     // share of eligible tokens chosen
  double mask_fraction = 0.8;    // of the chosen: replaced by [MASK]
  double random_fraction = 0.1;  // of the chosen: replaced by a random token (rest unchanged)
};

struct MlmBatch {
  at::Tensor input_ids;  // [B, L] int64, the corrupted text
  at::Tensor labels;     // [B, L] int64, original id where chosen, -100 elsewhere
};

class MlmMasker {
 public:
  // special_ids: ids never chosen and never drawn as random replacements
  // (framing, mask, pad). Random replacements are uniform over the others.
  MlmMasker(int64_t vocab_size, int64_t mask_id, std::vector<int64_t> special_ids,
            MlmOptions options = {});
  explicit MlmMasker(const Tokenizer& tokenizer, MlmOptions options = {});

  MlmBatch mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                at::Generator generator) const;
  MlmBatch mask(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                uint64_t seed) const;

 private:
  int64_t mask_id_;
  at::Tensor special_ids_;  // [S] int64
  at::Tensor candidates_;   // [V - S] int64, random replacements
  MlmOptions options_;
};

struct PlmBatch {
  at::Tensor split_points;  // [B] int64, p per caption
  at::Tensor attention;     // [B, L, L] bool, true where query i may attend key j
  at::Tensor targets;       // [B, L] int64, next-token targets on the suffix, -100 elsewhere
};

// p uniform in [1, len - 1] per row; every row needs at least 2 real tokens.
at::Tensor sample_plm_split_points(const at::Tensor& attention_mask, at::Generator generator);
// The prefix-causal mask of the convention above.
at::Tensor prefix_causal_mask(const at::Tensor& attention_mask, const at::Tensor& split_points);
at::Tensor plm_targets(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                       const at::Tensor& split_points);
PlmBatch make_plm_batch(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                        uint64_t seed);
PlmBatch make_plm_batch(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                        at::Generator generator);

// A CPU generator seeded for reproducible masking.
at::Generator make_text_generator(uint64_t seed);

}  // namespace kinema::data
