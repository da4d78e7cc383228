#include "core/data/pos_lexicon.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

namespace kinema::data {

namespace {

const char* const kPosNames[4] = {"noun", "verb", "adj", "adv"};

std::ifstream open_wordnet_file(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  std::ifstream in(path);
  TORCH_CHECK(in, "kinema::WordNetLexicon: cannot open ", path,
              " -- install Debian's wordnet-base (apt-get install wordnet-base) or point "
              "$KINEMA_WORDNET_DIR at a WordNet 3.0 dict directory");
  return in;
}

bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

}  // namespace

std::string WordNetLexicon::default_dir() {
  const char* env = std::getenv("KINEMA_WORDNET_DIR");
  return env && *env ? env : "/usr/share/wordnet";
}

std::shared_ptr<const WordNetLexicon> WordNetLexicon::shared() {
  static std::mutex mutex;
  static std::shared_ptr<const WordNetLexicon> lexicon;
  std::lock_guard<std::mutex> lock(mutex);
  if (!lexicon) lexicon = std::make_shared<const WordNetLexicon>();
  return lexicon;
}

WordNetLexicon::WordNetLexicon(const std::string& dir) {
  for (int p = 0; p < 4; ++p) {
    const std::string name = std::string("index.") + kPosNames[p];
    std::ifstream in = open_wordnet_file(dir, name);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line[0] == ' ') continue;  // licence header lines start with spaces
      // lemma pos synset_cnt p_cnt ptr_symbol{p_cnt} sense_cnt tagsense_cnt offsets...
      std::istringstream fields(line);
      std::string lemma, pos;
      int synsets = 0, pointers = 0, senses = 0, tagged = 0;
      fields >> lemma >> pos >> synsets >> pointers;
      std::string skip;
      for (int k = 0; k < pointers; ++k) fields >> skip;
      fields >> senses >> tagged;
      TORCH_CHECK(!fields.fail(), "kinema::WordNetLexicon: ", dir, "/", name, ":", line_no,
                  ": malformed index line");
      index_[lemma].tagged[p] = static_cast<int16_t>(std::min(tagged, 32767));
    }
  }
  for (int p = 0; p < 3; ++p) {  // adv.exc holds only comparatives; not needed
    std::ifstream in = open_wordnet_file(dir, std::string(kPosNames[p]) + ".exc");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string form, base;
      fields >> form;
      while (fields >> base) exceptions_[p][form].push_back(base);
    }
  }
}

bool WordNetLexicon::has(const std::string& lemma, WordNetPos pos) const {
  return tagged_senses(lemma, pos) >= 0;
}

int WordNetLexicon::tagged_senses(const std::string& lemma, WordNetPos pos) const {
  auto it = index_.find(lemma);
  return it == index_.end() ? -1 : it->second.tagged[static_cast<int>(pos)];
}

std::vector<std::string> WordNetLexicon::lemmas(const std::string& word, WordNetPos pos) const {
  static const std::vector<std::pair<std::string, std::string>> kRules[4] = {
      {{"s", ""}, {"ses", "s"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
       {"men", "man"}, {"ies", "y"}},
      {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"},
       {"ing", ""}},
      {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      {}};
  const int p = static_cast<int>(pos);
  std::vector<std::string> out;
  auto add = [&](const std::string& lemma) {
    if (std::find(out.begin(), out.end(), lemma) == out.end()) out.push_back(lemma);
  };
  if (p < 3) {
    auto exc = exceptions_[p].find(word);
    if (exc != exceptions_[p].end())
      for (const auto& base : exc->second) add(base);
  }
  if (has(word, pos)) add(word);
  for (const auto& [suffix, ending] : kRules[p]) {
    if (word.size() <= suffix.size() + 1 ||
        word.compare(word.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string stem = word.substr(0, word.size() - suffix.size());
    if (has(stem + ending, pos)) add(stem + ending);
    // "stopped" -> "stopp" -> "stop": undouble a final consonant.
    const size_t n = stem.size();
    if (ending.empty() && n >= 3 && stem[n - 1] == stem[n - 2] && !is_vowel(stem[n - 1]) &&
        has(stem.substr(0, n - 1), pos))
      add(stem.substr(0, n - 1));
  }
  return out;
}

}  // namespace kinema::data
