#pragma once
// A part-of-speech tagger for captions: WordNet's open-class lexicon
// (pos_lexicon.h) + closed-class word lists + context rules. It finds what the
// fine-grained losses need -- nouns (OTA targets), verbs (ASP actions, with
// lemmas for "distinct verbs") and noun phrases (S-ViLM grounding prompts) --
// in short descriptive English sentences, not arbitrary text. Annotations
// that carry precomputed parts win over it (the loader decides).
// Tags: NOUN VERB AUX ADJ ADV DET ADP PRON CCONJ SCONJ NUM PART PUNCT X.
// Forms of "be", auxiliary "have"/"do" and modals are AUX, never VERB.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/data/pos_lexicon.h"
#include "core/data/sample.h"

namespace kinema::data {

enum class PosTag { kNoun, kVerb, kAux, kAdj, kAdv, kDet, kAdp, kPron, kCconj, kSconj, kNum, kPart, kPunct, kOther };

const char* pos_tag_name(PosTag tag);  // "NOUN", "VERB", ...

struct TaggedWord {
  std::string text;   // as written in the caption
  std::string lower;  // lower-case form used for lookup
  std::string lemma;  // dictionary form for nouns and verbs ("jumps" -> "jump"), else lower
  PosTag tag = PosTag::kOther;
  size_t begin = 0, end = 0;  // byte offsets of the word in the caption
};

class PosTagger {
 public:
  explicit PosTagger(std::shared_ptr<const WordNetLexicon> lexicon = WordNetLexicon::shared());

  // Words of the caption (punctuation split off, "'s" and "n't" separated).
  static std::vector<TaggedWord> split_words(const std::string& caption);
  std::vector<TaggedWord> tag(const std::string& caption) const;

  // Nouns and verbs as written (every occurrence, in order) and noun phrases
  // (maximal (determiner|number)? adjective* noun+ chunks, as written).
  CaptionParts parts(const std::string& caption) const;

 private:
  std::shared_ptr<const WordNetLexicon> lexicon_;
};

// [first, last) word ranges of the noun phrases among tagged words.
std::vector<std::pair<size_t, size_t>> noun_phrase_spans(const std::vector<TaggedWord>& words);

// Lemmas of the verbs, first occurrence order, each once (ASP's distinct verbs).
std::vector<std::string> distinct_verb_lemmas(const std::vector<TaggedWord>& words);

}  // namespace kinema::data
