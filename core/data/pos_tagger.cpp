#include "core/data/pos_tagger.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <unordered_map>
#include <unordered_set>

namespace kinema::data {

namespace {

using Words = std::unordered_set<std::string>;

// Closed classes. Ambiguous members are resolved in context below.
const Words kDeterminers = {"a", "an", "the", "this", "that", "these", "those", "some", "any",
                            "each", "every", "no", "another", "his", "her", "its", "their", "our",
                            "my", "your", "either", "neither", "both", "all", "several", "many",
                            "much", "few", "which", "what", "whose"};
const Words kPronouns = {"i", "you", "he", "she", "it", "we", "they", "me", "him", "us", "them",
                         "myself", "yourself", "himself", "herself", "itself", "ourselves",
                         "themselves", "someone", "somebody", "something", "everyone",
                         "everybody", "everything", "anyone", "anybody", "anything", "nobody",
                         "nothing", "who", "whom", "there", "each other", "mine", "yours",
                         "hers", "theirs", "ours"};
const Words kPluralSubjects = {"i", "you", "we", "they", "people", "police", "cattle"};
const Words kBeForms = {"is", "are", "was", "were", "be", "been", "being", "am", "'re", "'m"};
const Words kModals = {"can", "could", "will", "would", "shall", "should", "may", "might", "must"};
const Words kHaveForms = {"has", "have", "had", "having"};
const Words kDoForms = {"do", "does", "did"};
const Words kPrepositions = {"in", "on", "at", "with", "of", "to", "from", "by", "into", "onto",
                             "over", "under", "through", "across", "around", "behind", "near",
                             "along", "down", "up", "off", "out", "toward", "towards", "between",
                             "beside", "inside", "outside", "above", "below", "during", "after",
                             "before", "about", "against", "upon", "without", "within", "among",
                             "beneath", "underneath", "past", "via", "for", "like", "than",
                             "since", "until", "throughout", "amid", "beyond", "despite"};
// Prepositions that are adverbs when no noun phrase follows ("moves up").
const Words kPrepositionalAdverbs = {"over", "through", "across", "around", "behind", "near",
                                     "along", "down", "up", "off", "out", "in", "on", "by",
                                     "past", "inside", "outside", "above", "below", "underneath"};
const Words kCoordinators = {"and", "or", "but", "nor", "&"};
const Words kSubordinators = {"while", "when", "as", "because", "if", "although", "though",
                              "whereas", "unless", "whilst", "once"};
// Prepositions that introduce a clause before a gerund or a subject pronoun.
const Words kClausePrepositions = {"before", "after", "since", "until"};
const Words kAdverbs = {"very", "too", "also", "just", "then", "now", "here", "how", "why",
                        "where", "again", "still", "almost", "away", "back", "together",
                        "forward", "forwards", "backward", "backwards", "upward", "upwards",
                        "downward", "downwards", "sideways", "clockwise", "counterclockwise",
                        "anticlockwise", "even", "only", "quite", "rather", "really", "so",
                        "not", "never", "always", "often", "later", "soon", "already", "yet"};
// Directions that follow motion verbs ("moves left", "turns right").
const Words kDirections = {"left", "right", "up", "down", "away", "back", "forward", "backward",
                           "around", "out", "off", "over", "along", "across", "together", "home",
                           "upward", "downward", "sideways", "clockwise", "counterclockwise",
                           "inside", "outside", "through", "in", "on", "by", "past"};
const Words kColours = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black",
                        "cyan", "pink", "brown", "gray", "grey", "silver", "golden", "gold",
                        "magenta", "violet", "beige", "navy", "turquoise", "teal"};
const Words kNumbers = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                        "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                        "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
                        "sixty", "seventy", "eighty", "ninety", "hundred", "thousand",
                        "million", "dozen"};
// Words after which "to" marks an infinitive even before a noun-verb ("how to tie").
const Words kInfinitiveCues = {"how", "what", "where", "want", "wants", "wanted", "going",
                               "trying", "tries", "try", "tried", "able", "order", "about",
                               "starts", "start", "begins", "begin", "learning", "learns",
                               "need", "needs", "has", "have", "used", "ready", "time"};

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

bool contains(const Words& set, const std::string& w) { return set.count(w) > 0; }

// What the lexicon and the suffix rules say a word can be.
struct Lexical {
  bool closed = false;          // fixed by the closed-class lists
  bool noun = false, verb = false, adj = false, adv = false;
  bool ing = false, s3 = false, past = false, base = false;  // verb forms
  bool plural = false;          // noun form differs from its lemma
  int noun_prior = -1, adj_prior = -1;
  std::string noun_lemma, verb_lemma;
};

Lexical lookup(const WordNetLexicon& lex, const std::string& w) {
  Lexical x;
  if (w.empty() || !std::isalpha(static_cast<unsigned char>(w[0])) || contains(kNumbers, w) ||
      contains(kDeterminers, w) || contains(kPronouns, w) || contains(kBeForms, w) ||
      contains(kModals, w) || contains(kPrepositions, w) || contains(kCoordinators, w) ||
      contains(kSubordinators, w) || contains(kAdverbs, w) || w == "'s" || w == "n't") {
    x.closed = !(w == "left" || w == "right");
  }
  const auto nouns = lex.lemmas(w, WordNetPos::kNoun);
  const auto verbs = lex.lemmas(w, WordNetPos::kVerb);
  x.noun = !nouns.empty();
  x.verb = !verbs.empty();
  x.adj = lex.has(w, WordNetPos::kAdj) || !lex.lemmas(w, WordNetPos::kAdj).empty();
  x.adv = lex.has(w, WordNetPos::kAdv);
  if (x.noun) {
    x.noun_lemma = nouns.front();
    x.plural = x.noun_lemma != w && !lex.has(w, WordNetPos::kNoun);
    x.noun_prior = lex.tagged_senses(x.noun_lemma, WordNetPos::kNoun);
  }
  if (x.adj) x.adj_prior = std::max(0, lex.tagged_senses(w, WordNetPos::kAdj));
  if (x.verb) {
    x.verb_lemma = verbs.front();
    x.base = std::find(verbs.begin(), verbs.end(), w) != verbs.end();
    const bool inflected = !x.base || verbs.size() > 1;
    x.ing = inflected && ends_with(w, "ing");
    x.s3 = inflected && !x.ing && ends_with(w, "s");
    x.past = !x.base && !x.ing && !x.s3;
  }
  if (!x.noun && !x.verb && !x.adj && !x.adv) {
    // Not in WordNet: guess from the suffix; captions' unknown words are mostly names.
    if (ends_with(w, "ly")) {
      x.adv = true;
    } else if (ends_with(w, "ing") && w.size() > 5) {
      x.verb = x.noun = x.ing = true;
      x.verb_lemma = w.substr(0, w.size() - 3);
    } else if (ends_with(w, "ed") && w.size() > 4) {
      x.verb = x.adj = x.past = true;
      x.verb_lemma = w.substr(0, w.size() - 2);
    } else {
      x.noun = true;
      x.plural = ends_with(w, "s") && !ends_with(w, "ss");
      x.noun_lemma = x.plural ? w.substr(0, w.size() - 1) : w;
    }
  }
  if (contains(kColours, w)) x.adj = true, x.adj_prior = 1000;
  return x;
}

struct Token {
  TaggedWord word;
  Lexical lex;
};

// Open words that can head or modify a noun phrase.
bool nominal(const Token& t) { return !t.lex.closed && (t.lex.noun || t.lex.adj); }

bool starts_noun_phrase(const Token* t) {
  if (!t) return false;
  const std::string& w = t->word.lower;
  return contains(kDeterminers, w) || contains(kNumbers, w) || contains(kPronouns, w) ||
         std::isdigit(static_cast<unsigned char>(w[0])) || nominal(*t);
}

// Likely the finite verb of the clause: an inflected verb form.
bool finite_verb_form(const Token* t) {
  return t && !t->lex.closed && t->lex.verb && (t->lex.s3 || t->lex.past);
}

class ClauseTagger {
 public:
  explicit ClauseTagger(std::vector<Token>& tokens) : t_(tokens) {}

  void run() {
    for (size_t i = 0; i < t_.size(); ++i) {
      const PosTag tag = decide(i);
      t_[i].word.tag = tag;
      update_state(i, tag);
    }
  }

 private:
  const Token* at(size_t i) const { return i < t_.size() ? &t_[i] : nullptr; }
  PosTag prev_tag(size_t i) const { return i == 0 ? PosTag::kPunct : t_[i - 1].word.tag; }

  void update_state(size_t i, PosTag tag) {
    const std::string& w = t_[i].word.lower;
    if (tag == PosTag::kPunct || tag == PosTag::kCconj || tag == PosTag::kSconj ||
        w == "who" || w == "which") {
      clause_has_verb_ = false;
    }
    if (tag == PosTag::kAux) clause_has_verb_ = true;
    if (tag == PosTag::kVerb && !t_[i].lex.ing) {
      clause_has_verb_ = true;
      last_verb_ = &t_[i];
    }
    if (tag == PosTag::kNoun) subject_plural_ = t_[i].lex.plural || contains(kPluralSubjects, w);
    if (tag == PosTag::kPron) subject_plural_ = contains(kPluralSubjects, w);
  }

  PosTag decide(size_t i) {
    const Token& t = t_[i];
    const std::string& w = t.word.lower;
    const Token* next = at(i + 1);
    const PosTag prev = prev_tag(i);
    const bool np_follows = starts_noun_phrase(next);

    if (!std::isalnum(static_cast<unsigned char>(w[0])) && w[0] != '\'' &&
        static_cast<unsigned char>(w[0]) < 0x80)
      return w == "&" ? PosTag::kCconj : PosTag::kPunct;
    if (std::isdigit(static_cast<unsigned char>(w[0])) || contains(kNumbers, w))
      return PosTag::kNum;
    if (w == "n't" || w == "not") return PosTag::kPart;
    if (w == "'s") {
      // Possessive before a noun phrase's words, else "is".
      return next && (nominal(*next) && !(next->lex.ing)) ? PosTag::kPart : PosTag::kAux;
    }
    if (contains(kBeForms, w) || contains(kModals, w)) return PosTag::kAux;
    if (contains(kHaveForms, w))
      return next && next->lex.verb && next->lex.past ? PosTag::kAux : PosTag::kVerb;
    if (contains(kDoForms, w))
      return next && (next->word.lower == "not" || next->word.lower == "n't" ||
                      (next->lex.verb && next->lex.base && !next->lex.noun))
                 ? PosTag::kAux
                 : PosTag::kVerb;
    if (w == "to") {
      const bool verb_next = next && !next->lex.closed && next->lex.verb && next->lex.base;
      const bool cue = i > 0 && contains(kInfinitiveCues, t_[i - 1].word.lower);
      return verb_next && (!next->lex.noun || cue) ? PosTag::kPart : PosTag::kAdp;
    }
    if (w == "that")
      return next && nominal(*next) && !finite_verb_form(next) ? PosTag::kDet : PosTag::kPron;
    if (w == "her")
      return next && nominal(*next) && !finite_verb_form(next) ? PosTag::kDet : PosTag::kPron;
    if (contains(kDeterminers, w)) return PosTag::kDet;
    if (contains(kPronouns, w)) return PosTag::kPron;
    if (contains(kCoordinators, w)) return PosTag::kCconj;
    if (contains(kSubordinators, w)) return PosTag::kSconj;
    if (contains(kClausePrepositions, w)) {
      const bool clause = next && ((next->lex.ing && next->lex.verb) ||
                                   (contains(kPronouns, next->word.lower) &&
                                    next->word.lower != "it"));
      return clause ? PosTag::kSconj : PosTag::kAdp;
    }
    if (contains(kDirections, w) && prev == PosTag::kVerb &&
        !(contains(kPrepositions, w) && np_follows))
      return PosTag::kAdv;
    if (contains(kPrepositions, w)) {
      if (contains(kPrepositionalAdverbs, w) && !np_follows) return PosTag::kAdv;
      return PosTag::kAdp;
    }
    if (contains(kAdverbs, w)) return PosTag::kAdv;
    return decide_open(i, prev, next);
  }

  // An open-class word in context.
  PosTag decide_open(size_t i, PosTag prev, const Token* next) const {
    const Lexical& x = t_[i].lex;
    const std::string& w = t_[i].word.lower;
    const bool next_nominal = next && nominal(*next);
    // Adjective before the noun it modifies -- unless this word is a noun and
    // the next one reads as the clause's verb ("a blue square moves").
    const bool modifier = x.adj && next_nominal && !(x.noun && finite_verb_form(next)) &&
                          (!x.noun || x.adj_prior >= x.noun_prior || contains(kColours, w));
    auto noun_phrase_word = [&]() {
      if (modifier) return PosTag::kAdj;
      if (x.noun) return PosTag::kNoun;
      if (x.adj) return PosTag::kAdj;
      if (x.verb && (x.ing || x.past)) return PosTag::kAdj;  // participle ("broken")
      if (x.adv) return PosTag::kAdv;
      return PosTag::kVerb;
    };
    const bool of_follows = next && next->word.lower == "of";

    switch (prev) {
      case PosTag::kDet:
      case PosTag::kNum:
      case PosTag::kAdj:
        return noun_phrase_word();
      case PosTag::kPart:
        if (i > 0 && t_[i - 1].word.lower == "to" && x.verb) return PosTag::kVerb;
        return noun_phrase_word();  // possessive 's
      case PosTag::kAdp:
      case PosTag::kSconj:
        if (x.verb && x.ing) return PosTag::kVerb;  // "while playing", "before running"
        return noun_phrase_word();
      case PosTag::kAux: {
        const std::string& aux = t_[i - 1].word.lower;
        if (contains(kBeForms, aux) || aux == "'s") {
          if (x.verb && (x.ing || x.past)) return PosTag::kVerb;
          return noun_phrase_word();
        }
        return x.verb ? PosTag::kVerb : noun_phrase_word();
      }
      case PosTag::kNoun:
      case PosTag::kPron:
        if (x.verb) {
          if (of_follows && x.noun) return PosTag::kNoun;
          if (x.ing) return PosTag::kVerb;  // "a man playing guitar"
          if (!clause_has_verb_) {
            if (x.s3 && !subject_plural_) return PosTag::kVerb;
            if (x.past && !x.noun) return PosTag::kVerb;
            // Base form after a plural subject, unless the next word is the
            // verb and this one a noun ("dogs run" vs "news anchor reports").
            if (x.base && (subject_plural_ || prev == PosTag::kPron) &&
                !(x.noun && finite_verb_form(next)))
              return PosTag::kVerb;
            if (x.past && x.noun && !next_nominal) return PosTag::kVerb;
          }
        }
        return noun_phrase_word();
      case PosTag::kVerb:
        if (x.noun || x.adj) return noun_phrase_word();
        if (x.adv) return PosTag::kAdv;
        return PosTag::kVerb;
      case PosTag::kCconj:
        // Verb coordination: "shoots the ball and scores".
        if (x.verb && last_verb_ && ((x.s3 && last_verb_->lex.s3) ||
                                     (x.past && last_verb_->lex.past) ||
                                     (x.ing && last_verb_->lex.ing)))
          return PosTag::kVerb;
        return noun_phrase_word();
      case PosTag::kAdv:
        if (x.verb && !x.noun) return PosTag::kVerb;
        if (x.verb && x.ing) return PosTag::kVerb;
        return noun_phrase_word();
      default:  // start of the caption or after punctuation
        return noun_phrase_word();
    }
  }

  std::vector<Token>& t_;
  bool clause_has_verb_ = false;
  bool subject_plural_ = false;
  const Token* last_verb_ = nullptr;
};

bool word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

std::string to_lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const char* pos_tag_name(PosTag tag) {
  static const char* const kNames[] = {"NOUN", "VERB", "AUX",   "ADJ",  "ADV",  "DET",   "ADP",
                                       "PRON", "CCONJ", "SCONJ", "NUM", "PART", "PUNCT", "X"};
  return kNames[static_cast<int>(tag)];
}

PosTagger::PosTagger(std::shared_ptr<const WordNetLexicon> lexicon) : lexicon_(std::move(lexicon)) {
  TORCH_CHECK(lexicon_, "kinema::PosTagger: lexicon is null");
}

std::vector<TaggedWord> PosTagger::split_words(const std::string& caption) {
  std::vector<TaggedWord> words;
  auto push = [&](size_t begin, size_t end) {
    TaggedWord w;
    w.text = caption.substr(begin, end - begin);
    w.lower = to_lower_ascii(w.text);
    w.begin = begin;
    w.end = end;
    words.push_back(std::move(w));
  };
  const size_t n = caption.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(caption[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (word_byte(c)) {
      // A word: letters/digits, joined by inner hyphens or apostrophes;
      // "n't" and "'s"/"'re"/... are split off as words of their own.
      size_t j = i;
      while (j < n && (word_byte(static_cast<unsigned char>(caption[j])) ||
                       ((caption[j] == '-' || caption[j] == '.') && j + 1 < n &&
                        word_byte(static_cast<unsigned char>(caption[j + 1])) &&
                        (caption[j] == '-' || std::isdigit(static_cast<unsigned char>(caption[j + 1]))))))
        ++j;
      size_t end = j;
      if (j < n && caption[j] == '\'' && j + 1 < n && caption[j + 1] == 't' && end - i > 1 &&
          std::tolower(static_cast<unsigned char>(caption[j - 1])) == 'n') {
        push(i, j - 1);  // "isn't" -> "is" "n't"
        push(j - 1, j + 2);
        i = j + 2;
        continue;
      }
      push(i, end);
      i = end;
    } else if (c == '\'' && i + 1 < n && std::isalpha(static_cast<unsigned char>(caption[i + 1])) &&
               i > 0 && word_byte(static_cast<unsigned char>(caption[i - 1]))) {
      size_t j = i + 1;
      while (j < n && std::isalpha(static_cast<unsigned char>(caption[j]))) ++j;
      push(i, j);  // "'s", "'re", "'ll"
      i = j;
    } else {
      push(i, i + 1);
      ++i;
    }
  }
  return words;
}

std::vector<TaggedWord> PosTagger::tag(const std::string& caption) const {
  std::vector<Token> tokens;
  for (TaggedWord& w : split_words(caption)) {
    Token t;
    t.lex = lookup(*lexicon_, w.lower);
    t.word = std::move(w);
    tokens.push_back(std::move(t));
  }
  ClauseTagger(tokens).run();
  std::vector<TaggedWord> out;
  out.reserve(tokens.size());
  for (Token& t : tokens) {
    if (t.word.tag == PosTag::kNoun && !t.lex.noun_lemma.empty()) t.word.lemma = t.lex.noun_lemma;
    else if (t.word.tag == PosTag::kVerb && !t.lex.verb_lemma.empty()) t.word.lemma = t.lex.verb_lemma;
    else t.word.lemma = t.word.lower;
    out.push_back(std::move(t.word));
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> noun_phrase_spans(const std::vector<TaggedWord>& words) {
  std::vector<std::pair<size_t, size_t>> spans;
  const size_t n = words.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    if (j < n && words[j].tag == PosTag::kDet) ++j;
    if (j < n && words[j].tag == PosTag::kNum) ++j;
    while (j < n && words[j].tag == PosTag::kAdj) ++j;
    size_t k = j;
    while (k < n && words[k].tag == PosTag::kNoun) ++k;
    if (k > j) {
      spans.emplace_back(i, k);
      i = k;
    } else {
      ++i;
    }
  }
  return spans;
}

std::vector<std::string> distinct_verb_lemmas(const std::vector<TaggedWord>& words) {
  std::vector<std::string> lemmas;
  for (const auto& w : words)
    if (w.tag == PosTag::kVerb && std::find(lemmas.begin(), lemmas.end(), w.lemma) == lemmas.end())
      lemmas.push_back(w.lemma);
  return lemmas;
}

CaptionParts PosTagger::parts(const std::string& caption) const {
  const auto words = tag(caption);
  CaptionParts parts;
  for (const auto& w : words) {
    if (w.tag == PosTag::kNoun) parts.nouns.push_back(w.text);
    if (w.tag == PosTag::kVerb) parts.verbs.push_back(w.text);
  }
  for (const auto& [first, last] : noun_phrase_spans(words))
    parts.noun_phrases.push_back(caption.substr(words[first].begin,
                                                words[last - 1].end - words[first].begin));
  return parts;
}

}  // namespace kinema::data
