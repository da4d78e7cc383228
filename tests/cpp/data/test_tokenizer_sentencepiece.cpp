// SentencePiece: a model trained by Debian's python3-sentencepiece loads and
// gives the same ids; training here with the same options reproduces it.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/data/tokenizer.h"
#include "core/data/tokenizer_sentencepiece.h"
#include "test_paths.h"

using kinema::data::SentencePieceTokenizer;
using kinema::data::SentencePieceTrainOptions;

namespace {
nlohmann::json expected() {
  std::ifstream in(KINEMA_FIXTURES "/text_tokenizer_expected.json");
  REQUIRE(in);
  return nlohmann::json::parse(in)["sentencepiece"];
}
std::vector<std::string> corpus() {
  std::ifstream in(KINEMA_FIXTURES "/text_caption_corpus.txt");
  REQUIRE(in);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}
SentencePieceTrainOptions fixture_options() {  // as make_text_fixture.py trains
  SentencePieceTrainOptions options;
  options.vocab_size = 120;
  options.normalization = "identity";
  return options;
}
}  // namespace

TEST_CASE("sentencepiece loads a .model and matches the Python library's ids") {
  SentencePieceTokenizer tok(KINEMA_FIXTURES "/text_spm.model", /*lower_case=*/true);
  CHECK(tok.special_ids().pad == 0);
  CHECK(tok.special_ids().unk == 1);
  CHECK(tok.special_ids().cls == 2);
  CHECK(tok.special_ids().sep == 3);
  CHECK(tok.special_ids().mask == 4);
  CHECK(tok.id_to_token(4) == "[MASK]");
  for (const auto& row : expected()) {
    const std::string text = row["text"];
    INFO("text: " << text);
    CHECK(tok.tokenize(text) == row["pieces"].get<std::vector<std::string>>());
    CHECK(tok.encode_pieces(text) == row["ids"].get<std::vector<int64_t>>());
  }
  const auto framed = tok.encode("a green star rotates");
  CHECK(framed.front() == 2);
  CHECK(framed.back() == 3);
  CHECK(tok.decode(framed) == "a green star rotates");
}

TEST_CASE("sentencepiece trained here equals the model trained by python3-sentencepiece") {
  const auto trained = SentencePieceTokenizer::train(corpus(), fixture_options());
  SentencePieceTokenizer reference(KINEMA_FIXTURES "/text_spm.model", true);
  CHECK(trained->vocab_size() == reference.vocab_size());
  for (int64_t id = 0; id < reference.vocab_size(); ++id)
    CHECK(trained->id_to_token(id) == reference.id_to_token(id));
  for (const auto& row : expected()) {
    const std::string text = row["text"];
    CHECK(trained->encode_pieces(text) == row["ids"].get<std::vector<int64_t>>());
  }
  // Control symbols are never produced from text: "[MASK]" is spelled out.
  const auto ids = trained->encode_pieces("[MASK]");
  CHECK(std::find(ids.begin(), ids.end(), 4) == ids.end());

  // save() writes a model that load_tokenizer reads back identically.
  const std::string path = "/tmp/kinema_test_trained.model";
  trained->save(path);
  auto loaded = kinema::data::load_tokenizer("sentencepiece", path);
  std::remove(path.c_str());
  CHECK(loaded->kind() == "sentencepiece");
  CHECK(loaded->encode("a red circle jumps") ==
        SentencePieceTokenizer(KINEMA_FIXTURES "/text_spm.model").encode("a red circle jumps"));
}

TEST_CASE("sentencepiece batch encoding pads with [PAD]=0") {
  SentencePieceTokenizer tok(KINEMA_FIXTURES "/text_spm.model", true);
  const auto batch = tok.encode_batch({"a red circle jumps", "a"}, 12);
  const auto first = tok.encode("a red circle jumps");
  REQUIRE(first.size() <= 12);
  for (size_t i = 0; i < first.size(); ++i)
    CHECK(batch.input_ids[0][i].item<int64_t>() == first[i]);
  CHECK(batch.attention_mask[0].sum().item<int64_t>() == static_cast<int64_t>(first.size()));
  CHECK(batch.input_ids[1].slice(0, 3).eq(0).all().item<bool>());
  CHECK(batch.attention_mask[1].sum().item<int64_t>() == 3);
}

TEST_CASE("sentencepiece errors name the file or the option") {
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer("/nonexistent/x.model"),
                       doctest::Contains("/nonexistent/x.model"), c10::Error);
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({}, fixture_options()),
                       doctest::Contains("no captions"), c10::Error);
  auto options = fixture_options();
  options.model_type = "nonsense";
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train(corpus(), options),
                       doctest::Contains("kinema::SentencePieceTokenizer::train"), c10::Error);
  CHECK_THROWS_WITH_AS(kinema::data::load_tokenizer("gpt2", "x"), doctest::Contains("gpt2"),
                       c10::Error);
}
