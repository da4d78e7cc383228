#include "core/data/text_item.h"

#include <algorithm>
#include <cctype>

#include <c10/util/Exception.h>

#include "core/data/prompts.h"
#include "core/data/video_sampling.h"

namespace kinema::data {

namespace {

// Seed streams of one item, so adding a field never changes another's draws.
constexpr uint64_t kMlmStream = 0x6d6c6d, kPlmStream = 0x706c6d, kPromptStream = 0x707274;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool empty_parts(const CaptionParts& p) {
  return p.nouns.empty() && p.verbs.empty() && p.noun_phrases.empty();
}

}  // namespace

void check_text_options(const TextItemOptions& o) {
  TORCH_CHECK(o.max_len >= 2, "data.Loader: option 'text.max_len' must be >= 2 (room for the framing "
              "tokens), got ", o.max_len);
  TORCH_CHECK(o.max_nouns > 0, "data.Loader: option 'text.max_nouns' must be > 0, got ", o.max_nouns);
  TORCH_CHECK(o.max_verbs > 0, "data.Loader: option 'text.max_verbs' must be > 0, got ", o.max_verbs);
  TORCH_CHECK(o.max_phrases > 0, "data.Loader: option 'text.phrases.max' must be > 0, got ", o.max_phrases);
  TORCH_CHECK(o.phrase_len >= 2, "data.Loader: option 'text.phrases.max_len' must be >= 2, got ",
              o.phrase_len);
  const MlmOptions& m = o.mlm_options;
  TORCH_CHECK(m.probability >= 0 && m.probability <= 1,
              "data.Loader: option 'text.mlm.probability' must be in [0, 1], got ", m.probability);
  TORCH_CHECK(m.mask_fraction >= 0 && m.random_fraction >= 0 && m.mask_fraction + m.random_fraction <= 1,
              "data.Loader: options 'text.mlm.mask_fraction' + 'text.mlm.random_fraction' must be "
              "non-negative and sum to <= 1, got ", m.mask_fraction, " + ", m.random_fraction);
}

int64_t verb_lemma_id(const std::string& lemma) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : lemma) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h % 2147483647ULL);
}

std::string verb_lemma(const std::string& verb, const WordNetLexicon& lexicon) {
  const std::string word = lower(verb);
  const std::vector<std::string> lemmas = lexicon.lemmas(word, WordNetPos::kVerb);
  return lemmas.empty() ? word : lemmas.front();
}

at::Tensor word_positions(const Tokenizer& tokenizer, const std::vector<int64_t>& ids,
                          const std::vector<std::string>& words, int64_t max_words,
                          std::vector<size_t>* kept) {
  at::Tensor out = at::full({max_words}, -1, at::kLong);
  auto acc = out.accessor<int64_t, 1>();
  const auto spans = tokenizer.locate_words(ids, words);
  int64_t n = 0;
  for (size_t w = 0; w < spans.size() && n < max_words; ++w) {
    if (spans[w].first < 0) continue;
    acc[n++] = spans[w].first;
    if (kept) kept->push_back(w);
  }
  return out;
}

PhraseTensors phrase_prompts(const Tokenizer& tokenizer, const std::vector<std::string>& noun_phrases,
                             int64_t max_phrases, int64_t phrase_len, uint64_t seed) {
  TORCH_CHECK(max_phrases > 0 && phrase_len >= 2, "kinema::data::phrase_prompts: need max_phrases > 0 "
              "and phrase_len >= 2, got ", max_phrases, " and ", phrase_len);
  PhraseTensors out;
  out.ids = at::full({max_phrases, phrase_len}, std::max<int64_t>(tokenizer.special_ids().pad, 0), at::kLong);
  out.mask = at::zeros({max_phrases, phrase_len}, at::kBool);
  out.valid = at::zeros({max_phrases}, at::kBool);
  PromptSampler sampler(seed);
  const int64_t n = std::min<int64_t>(max_phrases, static_cast<int64_t>(noun_phrases.size()));
  for (int64_t i = 0; i < n; ++i) out.prompts.push_back(sampler(noun_phrases[i]));
  if (n > 0) {
    const BatchEncoding enc = tokenizer.encode_batch(out.prompts, phrase_len);
    out.ids.narrow(0, 0, n).copy_(enc.input_ids);
    out.mask.narrow(0, 0, n).copy_(enc.attention_mask.to(at::kBool));
    out.valid.narrow(0, 0, n).fill_(true);
  }
  return out;
}

TextItemMaker::TextItemMaker(std::shared_ptr<const Tokenizer> tokenizer, TextItemOptions options)
    : tokenizer_(std::move(tokenizer)), options_(options) {
  TORCH_CHECK(tokenizer_, "data.Loader: option 'text.tokenizer' is required");
  check_text_options(options_);
  if (options_.mlm) {
    TORCH_CHECK(tokenizer_->special_ids().mask >= 0, "data.Loader: option 'text.mlm' needs a tokenizer "
                "with a [MASK] token; the ", tokenizer_->kind(), " vocabulary has none");
    masker_ = std::make_unique<MlmMasker>(*tokenizer_, options_.mlm_options);
  }
  if (options_.parts || options_.phrases) {
    lexicon_ = WordNetLexicon::shared();
    tagger_ = std::make_unique<PosTagger>(lexicon_);
  }
}

std::pair<at::Tensor, at::Tensor> TextItemMaker::encode(const std::string& text) const {
  const BatchEncoding enc = tokenizer_->encode_batch({text}, options_.max_len);
  return {enc.input_ids[0], enc.attention_mask[0].to(at::kBool)};
}

CaptionParts TextItemMaker::parts_of(const Sample& sample, const std::string& caption,
                                     int64_t caption_index) const {
  if (caption_index >= 0 && caption_index < static_cast<int64_t>(sample.parts.size()) &&
      !empty_parts(sample.parts[caption_index]))
    return sample.parts[caption_index];
  TORCH_CHECK(tagger_, "kinema::data::TextItemMaker: parts asked without options parts/phrases");
  return tagger_->parts(caption);
}

void TextItemMaker::add(Item& item, const Sample& sample, const std::string& caption,
                        int64_t caption_index, uint64_t seed) const {
  const BatchEncoding enc = tokenizer_->encode_batch({caption}, options_.max_len);
  item.tensors["ids"] = enc.input_ids[0];
  item.tensors["mask"] = enc.attention_mask[0].to(at::kBool);
  if (masker_) {
    const MlmBatch m = masker_->mask(enc.input_ids, enc.attention_mask, mix_seed(seed, kMlmStream));
    item.tensors["mlm_ids"] = m.input_ids[0];
    item.tensors["mlm_labels"] = m.labels[0];
  }
  if (options_.plm) {
    const PlmBatch p = make_plm_batch(enc.input_ids, enc.attention_mask, mix_seed(seed, kPlmStream));
    item.tensors["plm_split"] = p.split_points[0];
    item.tensors["plm_targets"] = p.targets[0];
  }
  if (!options_.parts && !options_.phrases) return;
  const CaptionParts parts = parts_of(sample, caption, caption_index);
  if (options_.parts) {
    const at::Tensor ids_t = enc.input_ids[0].contiguous();
    const std::vector<int64_t> ids(ids_t.data_ptr<int64_t>(), ids_t.data_ptr<int64_t>() + ids_t.numel());
    item.tensors["noun_positions"] = word_positions(*tokenizer_, ids, parts.nouns, options_.max_nouns);
    std::vector<size_t> kept;
    item.tensors["verb_positions"] = word_positions(*tokenizer_, ids, parts.verbs, options_.max_verbs, &kept);
    at::Tensor verb_ids = at::full({options_.max_verbs}, -1, at::kLong);
    for (size_t i = 0; i < kept.size(); ++i)
      verb_ids[static_cast<int64_t>(i)] = verb_lemma_id(verb_lemma(parts.verbs[kept[i]], *lexicon_));
    item.tensors["verb_ids"] = verb_ids;
  }
  if (options_.phrases) {
    PhraseTensors ph = phrase_prompts(*tokenizer_, parts.noun_phrases, options_.max_phrases,
                                      options_.phrase_len, mix_seed(seed, kPromptStream));
    item.tensors["phrase_ids"] = ph.ids;
    item.tensors["phrase_mask"] = ph.mask;
    item.tensors["phrase_valid"] = ph.valid;
  }
}

}  // namespace kinema::data
