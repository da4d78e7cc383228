// The caption tagger: WordNet lemmas, word splitting, the synthetic captions'
// parts, and accuracy on the hand-tagged set tests/fixtures/text_pos_gold.tsv.
#include <doctest/doctest.h>

#include <c10/util/Exception.h>

#include <fstream>
#include <sstream>

#include "core/data/pos_tagger.h"
#include "test_paths.h"

using namespace kinema::data;

namespace {
const PosTagger& tagger() {
  static const PosTagger instance;
  return instance;
}
using Strings = std::vector<std::string>;
}  // namespace

TEST_CASE("wordnet lemmas: exceptions, suffix rules, doubled consonants") {
  const auto& lex = *WordNetLexicon::shared();
  CHECK(lex.lemmas("jumps", WordNetPos::kVerb) == Strings{"jump"});
  CHECK(lex.lemmas("running", WordNetPos::kVerb).front() == "run");
  CHECK(lex.lemmas("stopped", WordNetPos::kVerb).front() == "stop");
  CHECK(lex.lemmas("skateboarding", WordNetPos::kVerb) == Strings{"skateboard"});
  CHECK(lex.lemmas("children", WordNetPos::kNoun) == Strings{"child"});
  CHECK(lex.lemmas("leaves", WordNetPos::kNoun).front() == "leaf");
  CHECK(lex.lemmas("boxes", WordNetPos::kNoun) == Strings{"box"});
  CHECK(lex.lemmas("the", WordNetPos::kNoun).empty());
  CHECK(lex.has("dog", WordNetPos::kNoun));
  CHECK(lex.has("dog", WordNetPos::kVerb));
  CHECK_FALSE(lex.has("dog", WordNetPos::kAdj));
  CHECK(lex.tagged_senses("man", WordNetPos::kNoun) > lex.tagged_senses("man", WordNetPos::kVerb));
  CHECK_THROWS_WITH_AS(WordNetLexicon("/nonexistent/wordnet"),
                       doctest::Contains("/nonexistent/wordnet/index.noun"), c10::Error);
  CHECK_THROWS_WITH_AS(WordNetLexicon("/nonexistent/wordnet"), doctest::Contains("wordnet-base"),
                       c10::Error);
}

TEST_CASE("caption words keep their byte offsets and split clitics and punctuation") {
  const std::string caption = "The chef's knife isn't sharp, 3.5 cm T-shirt.";
  const auto words = PosTagger::split_words(caption);
  Strings texts;
  for (const auto& w : words) {
    texts.push_back(w.text);
    CHECK(caption.substr(w.begin, w.end - w.begin) == w.text);
  }
  CHECK(texts == Strings{"The", "chef", "'s", "knife", "is", "n't", "sharp", ",", "3.5", "cm",
                         "T-shirt", "."});
  CHECK(words[0].lower == "the");
}

TEST_CASE("synthetic captions give the generator's nouns, verbs and noun phrases") {
  const auto parts = tagger().parts("a red circle jumps while a blue square moves left");
  CHECK(parts.nouns == Strings{"circle", "square"});
  CHECK(parts.verbs == Strings{"jumps", "moves"});
  CHECK(parts.noun_phrases == Strings{"a red circle", "a blue square"});
  const auto three = tagger().parts("a white hexagon moves up, a cyan pentagon spins and a orange cross jumps");
  CHECK(three.nouns == Strings{"hexagon", "pentagon", "cross"});
  CHECK(three.verbs == Strings{"moves", "spins", "jumps"});
  CHECK(three.noun_phrases == Strings{"a white hexagon", "a cyan pentagon", "a orange cross"});
}

TEST_CASE("lemmas and distinct verbs for ASP") {
  const auto words = tagger().tag("A dog runs and jumps while two children are running");
  Strings lemmas;
  for (const auto& w : words)
    if (w.tag == PosTag::kVerb || w.tag == PosTag::kNoun) lemmas.push_back(w.lemma);
  CHECK(lemmas == Strings{"dog", "run", "jump", "child", "run"});
  CHECK(distinct_verb_lemmas(words) == Strings{"run", "jump"});
  const auto parts = tagger().parts("Two dogs run across a grassy field.");
  CHECK(parts.noun_phrases == Strings{"Two dogs", "a grassy field"});
  CHECK(tagger().parts("").nouns.empty());
}

namespace {
struct Accuracy {
  int captions = 0, tokens = 0, correct = 0, nv_correct = 0, misaligned = 0;
  int gold_nv = 0, found_nv = 0, matched_nv = 0;  // noun/verb precision and recall
  std::string errors;
  double tag() const { return static_cast<double>(correct) / tokens; }
  double noun_verb() const { return static_cast<double>(nv_correct) / tokens; }
  double precision() const { return static_cast<double>(matched_nv) / found_nv; }
  double recall() const { return static_cast<double>(matched_nv) / gold_nv; }
};

// Tags every caption of a gold file; tokens count as wrong when the word
// split differs from the gold one.
Accuracy evaluate(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  Accuracy a;
  auto nv_class = [](const std::string& tag) {
    return tag == "NOUN" ? 'N' : tag == "VERB" ? 'V' : 'O';
  };
  std::ostringstream errors;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    const std::string caption = line.substr(0, tab);
    std::istringstream gold_stream(line.substr(tab + 1));
    std::vector<std::pair<std::string, std::string>> gold;
    for (std::string item; gold_stream >> item;) {
      const size_t slash = item.rfind('/');
      REQUIRE(slash != std::string::npos);
      gold.emplace_back(item.substr(0, slash), item.substr(slash + 1));
    }
    ++a.captions;
    const auto words = tagger().tag(caption);
    if (words.size() != gold.size()) {
      ++a.misaligned;
      a.tokens += static_cast<int>(gold.size());
      errors << "  misaligned: " << caption << "\n";
      continue;
    }
    for (size_t k = 0; k < gold.size(); ++k) {
      const std::string got = pos_tag_name(words[k].tag);
      CHECK(words[k].lower == gold[k].first);
      ++a.tokens;
      a.correct += got == gold[k].second;
      const char g = nv_class(gold[k].second), p = nv_class(got);
      a.nv_correct += g == p;
      a.gold_nv += g != 'O';
      a.found_nv += p != 'O';
      a.matched_nv += g != 'O' && g == p;
      if (got != gold[k].second)
        errors << "  " << gold[k].first << " " << got << " (gold " << gold[k].second << ") in: "
               << caption << "\n";
    }
  }
  a.errors = errors.str();
  return a;
}

std::string summary(const char* name, const Accuracy& a) {
  std::ostringstream out;
  out << "POS tagger on " << name << ": " << a.captions << " captions, " << a.tokens
      << " tokens: tag accuracy " << a.tag() << ", noun/verb/other accuracy " << a.noun_verb()
      << ", noun+verb precision " << a.precision() << " recall " << a.recall() << "\n"
      << a.errors;
  return out.str();
}
}  // namespace

TEST_CASE("tagging accuracy on the hand-tagged captions") {
  const Accuracy tuned = evaluate(KINEMA_FIXTURES "/text_pos_gold.tsv");
  MESSAGE(summary("text_pos_gold.tsv (rules tuned on it)", tuned));
  CHECK(tuned.captions >= 60);
  CHECK(tuned.misaligned == 0);
  CHECK(tuned.noun_verb() >= 0.97);
  CHECK(tuned.tag() >= 0.95);

  // The honest figure: captions the rules never saw.
  const Accuracy heldout = evaluate(KINEMA_FIXTURES "/text_pos_gold_heldout.tsv");
  MESSAGE(summary("text_pos_gold_heldout.tsv (held out)", heldout));
  CHECK(heldout.captions >= 40);
  CHECK(heldout.misaligned == 0);
  CHECK(heldout.noun_verb() >= 0.90);
}
