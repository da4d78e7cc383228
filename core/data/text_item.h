#pragma once
// The text part of a recipe item (recipe_item.h): the caption tokenized, its
// MLM / PLM corruptions, where its nouns and verbs sit in the tokens, and its
// noun phrases put into S-ViLM prompts. Every field has the same shape in every
// item, so the loader stacks them; field names are the recipe contract
// (/tmp/kinema_pipeline.md, data.Loader's `text` option):
//   ids [L] int64, mask [L] bool                      always
//   mlm_ids [L], mlm_labels [L] int64                  mlm
//   plm_split [] int64, plm_targets [L] int64          plm
//   noun_positions [Nn], verb_positions [Nv],
//   verb_ids [Nv] int64 (-1 = none)                    parts
//   phrase_ids [P,Lp] int64, phrase_mask [P,Lp] bool,
//   phrase_valid [P] bool                              phrases
// Randomness (MLM choices, PLM split, prompt templates) comes from the item
// seed only.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/data/loader.h"
#include "core/data/pos_tagger.h"
#include "core/data/text_masking.h"
#include "core/data/tokenizer.h"

namespace kinema::data {

struct TextItemOptions {
  int64_t max_len = 32;  // L: ids are padded / truncated to it
  bool mlm = false;
  MlmOptions mlm_options;
  bool plm = false;
  bool parts = false;
  int64_t max_nouns = 8, max_verbs = 4;
  bool phrases = false;
  int64_t max_phrases = 4, phrase_len = 16;  // P and Lp
};

// Throws naming the option ("text.max_len must be > 0, got 0").
void check_text_options(const TextItemOptions& options);

// Id of a verb lemma that is the same in every batch, run and process: FNV-1a
// of the lemma's bytes reduced to [0, 2^31 - 1) (so it survives a trip through
// a Lua number). Distinct lemmas colliding is possible but negligible for the
// few verbs of a batch.
int64_t verb_lemma_id(const std::string& lemma);

// The dictionary form of a verb ("jumps" -> "jump") by WordNet's morphy, or
// the lower-cased word when WordNet does not know it as a verb.
std::string verb_lemma(const std::string& verb, const WordNetLexicon& lexicon);

// Token position of the first piece of each word in ids (words located left to
// right with Tokenizer::locate_words); words not found (e.g. truncated away)
// are left out, the rest padded with -1 to `max_words`. `kept` receives the
// indices (into words) of the positions returned.
at::Tensor word_positions(const Tokenizer& tokenizer, const std::vector<int64_t>& ids,
                          const std::vector<std::string>& words, int64_t max_words,
                          std::vector<size_t>* kept = nullptr);

// The noun phrases (at most max_phrases) each put into an S-ViLM template drawn
// with PromptSampler(seed), tokenized to phrase_len: ids [P,Lp] (pad rows of
// the pad id), mask [P,Lp] bool, valid [P] bool.
struct PhraseTensors {
  at::Tensor ids, mask, valid;
  std::vector<std::string> prompts;  // the filled prompts of the valid rows
};
PhraseTensors phrase_prompts(const Tokenizer& tokenizer, const std::vector<std::string>& noun_phrases,
                             int64_t max_phrases, int64_t phrase_len, uint64_t seed);

class TextItemMaker {
 public:
  TextItemMaker(std::shared_ptr<const Tokenizer> tokenizer, TextItemOptions options);

  // Adds the fields above for `caption`, the caption_index-th caption of the
  // sample (whose precomputed parts win over the tagger when present).
  void add(Item& item, const Sample& sample, const std::string& caption, int64_t caption_index,
           uint64_t seed) const;

  // The parts used for a caption: the sample's precomputed ones for that
  // caption when any is non-empty, else the tagger's.
  CaptionParts parts_of(const Sample& sample, const std::string& caption, int64_t caption_index) const;

  // ids [L] int64 and mask [L] bool of any text (e.g. OA-Trans tags).
  std::pair<at::Tensor, at::Tensor> encode(const std::string& text) const;

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const TextItemOptions& options() const { return options_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  TextItemOptions options_;
  std::unique_ptr<MlmMasker> masker_;
  std::unique_ptr<PosTagger> tagger_;
  std::shared_ptr<const WordNetLexicon> lexicon_;
};

}  // namespace kinema::data
