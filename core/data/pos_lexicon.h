#pragma once
// The open-class lexicon of the caption tagger: WordNet 3.0's index files
// (which lemmas can be nouns, verbs, adjectives, adverbs, and how often each
// was sense-tagged in SemCor) plus its exception lists and suffix rules to
// find a word's lemma (WordNet's "morphy"). Debian: package wordnet-base,
// files under /usr/share/wordnet (override with $KINEMA_WORDNET_DIR).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kinema::data {

enum class WordNetPos : int { kNoun = 0, kVerb = 1, kAdj = 2, kAdv = 3 };

class WordNetLexicon {
 public:
  // Throws naming the directory and the missing file (and the Debian package).
  explicit WordNetLexicon(const std::string& dir = default_dir());
  // $KINEMA_WORDNET_DIR if set, else /usr/share/wordnet.
  static std::string default_dir();
  // One lexicon per process, loaded on first use (about 0.2 s).
  static std::shared_ptr<const WordNetLexicon> shared();

  // Whether the (lower-case) lemma is in the index for that part of speech.
  bool has(const std::string& lemma, WordNetPos pos) const;
  // How many of its senses were tagged in SemCor (a frequency prior), -1 if absent.
  int tagged_senses(const std::string& lemma, WordNetPos pos) const;
  // Lemmas of a (lower-case) word form in that part of speech, most likely
  // first: exception-list entries, the word itself, then suffix-rule stems
  // (with doubled final consonants undone: "running" -> "run"); only those in
  // the index. Empty when the word cannot be that part of speech.
  std::vector<std::string> lemmas(const std::string& word, WordNetPos pos) const;

 private:
  struct Entry {
    std::array<int16_t, 4> tagged{{-1, -1, -1, -1}};
  };
  std::unordered_map<std::string, Entry> index_;
  std::array<std::unordered_map<std::string, std::vector<std::string>>, 4> exceptions_;
};

}  // namespace kinema::data
