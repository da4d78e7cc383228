// BERT WordPiece: ids against the fixture's independent reference, plus the
// published example and the framing/padding contract.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/data/tokenizer_wordpiece.h"
#include "test_paths.h"

using kinema::data::WordPieceTokenizer;

namespace {
nlohmann::json expected() {
  std::ifstream in(KINEMA_FIXTURES "/text_tokenizer_expected.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}
const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer tok(KINEMA_FIXTURES "/text_bert_vocab.txt");
  return tok;
}
}  // namespace

TEST_CASE("wordpiece ids match the reference on every fixture sentence") {
  for (const auto& row : expected()["wordpiece"]) {
    const std::string text = row["text"];
    INFO("text: " << text);
    CHECK(bert().tokenize(text) == row["pieces"].get<std::vector<std::string>>());
    CHECK(bert().encode_pieces(text) == row["ids"].get<std::vector<int64_t>>());
  }
}

TEST_CASE("wordpiece special tokens sit where BERT's vocab.txt puts them") {
  const auto& ids = bert().special_ids();
  CHECK(ids.pad == 0);
  CHECK(ids.unk == 100);
  CHECK(ids.cls == 101);
  CHECK(ids.sep == 102);
  CHECK(ids.mask == 103);
  CHECK(bert().id_to_token(101) == "[CLS]");
  CHECK(bert().token_to_id("##able") >= 0);
  CHECK(bert().token_to_id("not-a-token") == -1);
  CHECK_THROWS_WITH_AS(bert().id_to_token(bert().vocab_size()),
                       doctest::Contains("kinema::WordPieceTokenizer::id_to_token"), c10::Error);
}

TEST_CASE("wordpiece greedy longest match: the BERT README example and unknown words") {
  // BERT README: "unaffable" -> un ##aff ##able.
  CHECK(bert().tokenize("unaffable") == std::vector<std::string>{"un", "##aff", "##able"});
  // The vocab has "super", "##cal", "##if" and single letters: longest first
  // takes "super", then "##cal", then "##if", then letters one by one.
  const auto pieces = bert().tokenize("supercalif");
  CHECK(pieces == std::vector<std::string>{"super", "##cal", "##if"});
  // A word whose tail has no piece (here "ü" is absent once accents are kept
  // by a cased tokenizer) becomes a single [UNK].
  WordPieceTokenizer cased(KINEMA_FIXTURES "/text_bert_vocab.txt", /*lower_case=*/false);
  CHECK(cased.tokenize("über") == std::vector<std::string>{"[UNK]"});
  CHECK(cased.tokenize("Man") == std::vector<std::string>{"[UNK]"});
  // More than 100 characters: [UNK] even though every letter is in the vocab.
  CHECK(bert().tokenize(std::string(101, 'a')) == std::vector<std::string>{"[UNK]"});
  CHECK(bert().tokenize(std::string(100, 'a')).size() == 100);
}

TEST_CASE("wordpiece encode frames with [CLS] ... [SEP] and truncates inside the frame") {
  const auto ids = bert().encode("a man is playing a guitar");
  REQUIRE(ids.size() == 8);
  CHECK(ids.front() == 101);
  CHECK(ids.back() == 102);
  const auto cut = bert().encode("a man is playing a guitar", true, 4);
  CHECK(cut == std::vector<int64_t>{101, ids[1], ids[2], 102});
  CHECK_THROWS_WITH_AS(bert().encode("a", true, 1), doctest::Contains("max_length"), c10::Error);
}

TEST_CASE("wordpiece decode inverts encode up to normalisation") {
  const std::string text = "A man isn't playing the guitar, is he?";
  CHECK(bert().decode(bert().encode(text)) == "a man isn't playing the guitar, is he?");
  CHECK(bert().decode(bert().encode("unaffable")) == "unaffable");
  CHECK(bert().decode(bert().encode("unaffable"), /*skip_special=*/false) ==
        "[CLS] unaffable [SEP]");
}

TEST_CASE("wordpiece batch: padding to max_length, to the longest, and truncation") {
  const std::vector<std::string> texts = {"a red circle jumps", "a man", ""};
  const auto r0 = bert().encode(texts[0]);  // 6 ids
  const auto r1 = bert().encode(texts[1]);  // 4 ids
  auto batch = bert().encode_batch(texts, 8);
  REQUIRE(batch.input_ids.size(0) == 3);
  REQUIRE(batch.input_ids.size(1) == 8);
  CHECK((batch.input_ids.scalar_type() == at::kLong));
  CHECK((batch.attention_mask.scalar_type() == at::kLong));
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto mask = batch.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < 8; ++i) {
    CHECK(ids[0][i] == (i < 6 ? r0[i] : 0));
    CHECK(mask[0][i] == (i < 6 ? 1 : 0));
    CHECK(ids[1][i] == (i < 4 ? r1[i] : 0));
    CHECK(mask[1][i] == (i < 4 ? 1 : 0));
  }
  // The empty caption is [CLS] [SEP].
  CHECK(ids[2][0] == 101);
  CHECK(ids[2][1] == 102);
  CHECK(batch.attention_mask[2].sum().item<int64_t>() == 2);

  auto longest = bert().encode_batch(texts, 0, /*pad_to_max=*/false);
  CHECK(longest.input_ids.size(1) == 6);
  auto truncated = bert().encode_batch(texts, 5, /*pad_to_max=*/false);
  CHECK(truncated.input_ids.size(1) == 5);
  CHECK(truncated.input_ids[0][4].item<int64_t>() == 102);  // [SEP] survives truncation
  CHECK(truncated.input_ids[0][3].item<int64_t>() == r0[3]);
  CHECK_THROWS_WITH_AS(bert().encode_batch(texts, 0), doctest::Contains("max_length"), c10::Error);
}

TEST_CASE("wordpiece rejects a missing vocabulary and one without [UNK]") {
  CHECK_THROWS_WITH_AS(WordPieceTokenizer("/nonexistent/vocab.txt"),
                       doctest::Contains("/nonexistent/vocab.txt"), c10::Error);
  CHECK_THROWS_WITH_AS((WordPieceTokenizer(std::vector<std::string>{"[PAD]", "a"})),
                       doctest::Contains("[UNK]"), c10::Error);
}

TEST_CASE("locate_words finds each word's pieces in the framed encoding, in order") {
  const auto ids = bert().encode("a man plays unaffable guitar while a man sings");
  // ids: [CLS] a man plays un ##aff ##able guitar while a man sings [SEP]
  using Span = std::pair<int64_t, int64_t>;
  const auto spans = bert().locate_words(ids, {"man", "unaffable", "man", "dog"});
  REQUIRE(spans.size() == 4);
  CHECK(spans[0] == Span{2, 3});
  CHECK(spans[1] == Span{4, 7});
  CHECK(spans[2] == Span{10, 11});  // the second "man", after the first match
  CHECK(spans[3] == Span{-1, -1});  // not in the caption
}
