// The text part of the recipe item: noun/verb positions and lemma ids, S-ViLM
// phrase prompts, MLM/PLM fields consistent with text_masking.h, the word-level
// vocabulary builder and option errors.
#include <doctest/doctest.h>

#include <c10/util/Exception.h>

#include "core/data/prompts.h"
#include "core/data/text_item.h"
#include "core/data/tokenizer_wordpiece.h"
#include "core/data/vocab_builder.h"

using namespace kinema::data;

namespace {

// ids: [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4 a5 red6 circle7 jumps8 and9 blue10
// square11 moves12 left13 video14 of15 the16 .17 jumped18
std::shared_ptr<const Tokenizer> tiny_tokenizer() {
  return std::make_shared<WordPieceTokenizer>(std::vector<std::string>{
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "jumps", "and", "blue",
      "square", "moves", "left", "video", "of", "the", ".", "jumped"});
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

const char* kCaption = "a red circle jumps and a blue square moves left";

}  // namespace

TEST_CASE("noun and verb positions point at the words' tokens (hand-computed)") {
  auto tok = tiny_tokenizer();
  const std::vector<int64_t> ids = tok->encode(kCaption);
  REQUIRE(ids == std::vector<int64_t>{2, 5, 6, 7, 8, 9, 5, 10, 11, 12, 13, 3});
  CHECK(to_vector(word_positions(*tok, ids, {"circle", "square"}, 3)) == std::vector<int64_t>{3, 8, -1});
  std::vector<size_t> kept;
  CHECK(to_vector(word_positions(*tok, ids, {"jumps", "moves"}, 4, &kept)) ==
        std::vector<int64_t>{4, 9, -1, -1});
  CHECK(kept == std::vector<size_t>{0, 1});
  // Truncated to 6 tokens: "square" is gone and left out, max_words caps the rest.
  const std::vector<int64_t> short_ids = tok->encode(kCaption, true, 6);
  REQUIRE(short_ids == std::vector<int64_t>{2, 5, 6, 7, 8, 3});
  kept.clear();
  CHECK(to_vector(word_positions(*tok, short_ids, {"square", "circle"}, 2, &kept)) ==
        std::vector<int64_t>{3, -1});
  CHECK(kept == std::vector<size_t>{1});
}

TEST_CASE("verb ids: one id per lemma, stable across calls") {
  auto lexicon = WordNetLexicon::shared();
  CHECK(verb_lemma("Jumps", *lexicon) == "jump");
  CHECK(verb_lemma("jumped", *lexicon) == "jump");
  CHECK(verb_lemma("moves", *lexicon) == "move");
  CHECK(verb_lemma("zzqx", *lexicon) == "zzqx");
  CHECK(verb_lemma_id("jump") == verb_lemma_id("jump"));
  CHECK(verb_lemma_id("jump") != verb_lemma_id("move"));
  CHECK(verb_lemma_id("jump") >= 0);
  CHECK(verb_lemma_id("jump") < 2147483647);
}

TEST_CASE("text item: parts from the sample win over the tagger; verbs share lemma ids") {
  TextItemOptions o;
  o.max_len = 16;
  o.parts = true;
  o.max_nouns = 3;
  o.max_verbs = 2;
  TextItemMaker maker(tiny_tokenizer(), o);
  Sample s;
  s.captions = {kCaption};
  Item item;
  maker.add(item, s, kCaption, 0, 1);  // tagger
  CHECK(to_vector(item.tensors.at("noun_positions")) == std::vector<int64_t>{3, 8, -1});
  CHECK(to_vector(item.tensors.at("verb_positions")) == std::vector<int64_t>{4, 9});
  CHECK(to_vector(item.tensors.at("verb_ids")) ==
        std::vector<int64_t>{verb_lemma_id("jump"), verb_lemma_id("move")});
  CHECK(item.tensors.at("ids").size(0) == 16);
  CHECK((item.tensors.at("mask").scalar_type() == at::kBool));
  CHECK(item.tensors.at("mask").sum().item<int64_t>() == 12);

  // Precomputed parts: only "square" as noun, "moves" as verb.
  s.parts = {CaptionParts{{"square"}, {"moves"}, {}}};
  Item item2;
  maker.add(item2, s, kCaption, 0, 1);
  CHECK(to_vector(item2.tensors.at("noun_positions")) == std::vector<int64_t>{8, -1, -1});
  CHECK(to_vector(item2.tensors.at("verb_positions")) == std::vector<int64_t>{9, -1});
  CHECK(to_vector(item2.tensors.at("verb_ids")) == std::vector<int64_t>{verb_lemma_id("move"), -1});

  // "jumps" and "jumped" are the same verb for ASP.
  const std::string two = "a circle jumps and a square jumped";
  Item item3;
  Sample s3;
  s3.captions = {two};
  s3.parts = {CaptionParts{{"circle", "square"}, {"jumps", "jumped"}, {}}};
  maker.add(item3, s3, two, 0, 1);
  const auto v = to_vector(item3.tensors.at("verb_ids"));
  CHECK(v[0] == v[1]);
  CHECK(v[0] == verb_lemma_id("jump"));
}

TEST_CASE("phrase prompts: templates drawn by the seed, tokenized and padded") {
  auto tok = tiny_tokenizer();
  const PhraseTensors p = phrase_prompts(*tok, {"a red circle", "a blue square", "the left"}, 2, 12, 5);
  PromptSampler sampler(5);
  const std::string first = sampler("a red circle"), second = sampler("a blue square");
  REQUIRE(p.prompts == std::vector<std::string>{first, second});
  CHECK(p.ids.sizes() == at::IntArrayRef({2, 12}));
  for (int64_t i = 0; i < 2; ++i) {
    std::vector<int64_t> expected = tok->encode(p.prompts[i], true, 12);
    const int64_t n = static_cast<int64_t>(expected.size());
    expected.resize(12, 0);
    CHECK(to_vector(p.ids[i]) == expected);
    CHECK(p.mask[i].sum().item<int64_t>() == n);
  }
  CHECK(p.valid.all().item<bool>());
  // Fewer phrases than rows: pad rows are invalid and fully masked.
  const PhraseTensors q = phrase_prompts(*tok, {"a red circle"}, 3, 8, 5);
  CHECK(to_vector(q.valid.to(at::kLong)) == std::vector<int64_t>{1, 0, 0});
  CHECK(q.mask.narrow(0, 1, 2).sum().item<int64_t>() == 0);
  CHECK(to_vector(q.ids[2]) == std::vector<int64_t>(8, 0));
  // Every filled prompt is one of the 12 templates of the phrase.
  const auto all = svilm_prompts("a red circle");
  CHECK(std::find(all.begin(), all.end(), q.prompts[0]) != all.end());
}

TEST_CASE("MLM and PLM fields follow text_masking's conventions and the seed") {
  TextItemOptions o;
  o.max_len = 16;
  o.mlm = true;
  o.mlm_options.probability = 0.5;
  o.plm = true;
  TextItemMaker maker(tiny_tokenizer(), o);
  Sample s;
  s.captions = {kCaption};
  int changed_somewhere = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Item item;
    maker.add(item, s, kCaption, 0, seed);
    const auto ids = to_vector(item.tensors.at("ids"));
    const auto mask = to_vector(item.tensors.at("mask"));
    const auto mlm_ids = to_vector(item.tensors.at("mlm_ids"));
    const auto labels = to_vector(item.tensors.at("mlm_labels"));
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool special = ids[i] <= 4;
      if (labels[i] != kIgnoreIndex) {
        CHECK(mask[i] == 1);
        CHECK_FALSE(special);
        CHECK(labels[i] == ids[i]);
        ++changed_somewhere;
      } else {
        CHECK(mlm_ids[i] == ids[i]);
      }
    }
    const int64_t p = item.tensors.at("plm_split").item<int64_t>();
    CHECK(item.tensors.at("plm_split").dim() == 0);
    CHECK(p >= 1);
    CHECK(p <= 11);  // 12 real tokens
    const at::Tensor expected = plm_targets(item.tensors.at("ids").unsqueeze(0),
                                            item.tensors.at("mask").to(at::kLong).unsqueeze(0),
                                            item.tensors.at("plm_split").unsqueeze(0));
    CHECK(to_vector(item.tensors.at("plm_targets")) == to_vector(expected[0]));
    // Same seed, same item.
    Item again;
    maker.add(again, s, kCaption, 0, seed);
    CHECK(to_vector(again.tensors.at("mlm_ids")) == mlm_ids);
    CHECK(again.tensors.at("plm_split").item<int64_t>() == p);
  }
  CHECK(changed_somewhere > 0);
}

TEST_CASE("text options are checked by name") {
  TextItemOptions o;
  o.max_len = 0;
  CHECK_THROWS_WITH_AS(TextItemMaker(tiny_tokenizer(), o), doctest::Contains("option 'text.max_len'"),
                       c10::Error);
  o.max_len = 8;
  o.max_nouns = 0;
  CHECK_THROWS_WITH_AS(TextItemMaker(tiny_tokenizer(), o), doctest::Contains("option 'text.max_nouns'"),
                       c10::Error);
  o.max_nouns = 2;
  o.mlm = true;
  o.mlm_options.probability = 1.5;
  CHECK_THROWS_WITH_AS(TextItemMaker(tiny_tokenizer(), o),
                       doctest::Contains("option 'text.mlm.probability'"), c10::Error);
  CHECK_THROWS_WITH_AS(TextItemMaker(nullptr, TextItemOptions{}), doctest::Contains("text.tokenizer"),
                       c10::Error);
}

TEST_CASE("word vocabulary: specials, then words by frequency, ties in byte order") {
  const auto vocab = build_word_vocab({"A red circle jumps.", "a blue circle"});
  CHECK(vocab == std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "circle", ".",
                                          "blue", "jumps", "red"});
  CHECK(build_word_vocab({"a a b"}, 2) ==
        std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"});
  // The tokenizer reading it encodes every word as one known piece.
  WordPieceTokenizer tok(vocab);
  CHECK(tok.encode("a blue circle jumps.") == std::vector<int64_t>{2, 5, 8, 6, 9, 7, 3});
  CHECK_THROWS_WITH_AS(build_word_vocab({"a"}, 0), doctest::Contains("min_count"), c10::Error);
}
