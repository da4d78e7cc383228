// CLIP byte-level BPE: ids against the fixture reference, a merges file small
// enough to derive by hand, and the framing/padding contract.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/data/tokenizer_bpe.h"
#include "test_paths.h"

using kinema::data::ClipBpeTokenizer;

namespace {
const ClipBpeTokenizer& clip() {
  static const ClipBpeTokenizer tok(KINEMA_FIXTURES "/text_clip_merges.txt");
  return tok;
}
std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = std::string("/tmp/kinema_test_") + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
}  // namespace

TEST_CASE("clip bpe ids match the reference on every fixture sentence") {
  std::ifstream in(KINEMA_FIXTURES "/text_tokenizer_expected.json");
  REQUIRE(in);
  const auto expected = nlohmann::json::parse(in);
  CHECK(clip().vocab_size() == expected["clip_vocab_size"].get<int64_t>());
  for (const auto& row : expected["clip_bpe"]) {
    const std::string text = row["text"];
    INFO("text: " << text);
    CHECK(clip().tokenize(text) == row["pieces"].get<std::vector<std::string>>());
    CHECK(clip().encode_pieces(text) == row["ids"].get<std::vector<int64_t>>());
  }
}

TEST_CASE("clip bpe on a hand-derived merges file") {
  // Merges (rank order): "l o", "lo w</w>", "e r</w>", "lo w". Vocabulary:
  // 256 byte characters (ids 0..255, printable bytes first: '!'=0 ... so
  // 'a' = 'a' - '!' = 64), then those + "</w>" (256..511), then one entry per
  // merge: "lo"=512, "low</w>"=513, "er</w>"=514, "low"=515, then
  // <|startoftext|>=516, <|endoftext|>=517.
  const auto path = write_temp("merges.txt", "#version: 0.2\nl o\nlo w</w>\ne r</w>\nlo w\n");
  ClipBpeTokenizer tok(path);
  std::remove(path.c_str());
  CHECK(tok.vocab_size() == 518);
  CHECK(tok.special_ids().cls == 516);
  CHECK(tok.special_ids().sep == 517);
  CHECK(tok.special_ids().pad == 517);
  CHECK(tok.special_ids().mask == -1);
  CHECK(tok.token_to_id("a") == 'a' - '!');
  CHECK(tok.token_to_id("a</w>") == 256 + ('a' - '!'));
  // "low": l o w</w> -> (l o, rank 0) lo w</w> -> (lo w</w>, rank 1) low</w>.
  CHECK(tok.tokenize("low") == std::vector<std::string>{"low</w>"});
  // "lower": l o w e r</w> -> lo w e r</w> -> (e r</w> rank 2) lo w er</w>
  //          -> (lo w rank 3) low er</w>.
  CHECK(tok.tokenize("LOWER") == std::vector<std::string>{"low", "er</w>"});
  CHECK(tok.encode_pieces("lower") == std::vector<int64_t>{515, 514});
  // "lolo": l o l o</w>: "l o" merges the first pair only ("o</w>" differs).
  CHECK(tok.tokenize("lolo") == std::vector<std::string>{"lo", "l", "o</w>"});
  // Spaces split words before BPE, so they never reach the merges.
  CHECK(tok.encode("low lower") == std::vector<int64_t>{516, 513, 515, 514, 517});
}

TEST_CASE("clip pre-tokenisation follows CLIP's pattern") {
  using V = std::vector<std::string>;
  CHECK(clip().pre_tokenize("We're   HERE!!'s") == V{"we", "'re", "here", "!!'", "s"});
  CHECK(clip().pre_tokenize("abc123") == V{"abc", "1", "2", "3"});
  CHECK(clip().pre_tokenize("a<|endoftext|>b") == V{"a", "<|endoftext|>", "b"});
  CHECK(clip().pre_tokenize("&amp;amp; x") == V{"&", "x"});  // unescaped twice
  CHECK(clip().pre_tokenize("  \t ") == V{});
  CHECK(clip().encode_pieces("<|startoftext|>") ==
        std::vector<int64_t>{clip().special_ids().cls});
}

TEST_CASE("clip decode inverts encode up to cleaning") {
  const std::string text = "A red circle jumps, while a blue square moves left.";
  CHECK(clip().decode(clip().encode(text)) == "a red circle jumps , while a blue square moves left .");
  CHECK(clip().decode(clip().encode("café ÀB 二匹")) == "café àb 二匹");
  CHECK(clip().decode(clip().encode("x"), /*skip_special=*/false) ==
        "<|startoftext|>x <|endoftext|>");
}

TEST_CASE("clip batch pads with <|endoftext|> and keeps it last on truncation") {
  const auto batch = clip().encode_batch({"a red circle", "a red circle jumps while"}, 5);
  const int64_t eot = clip().special_ids().sep;
  CHECK(batch.input_ids[0][4].item<int64_t>() == eot);
  CHECK(batch.attention_mask[0].sum().item<int64_t>() == 5);
  CHECK(batch.input_ids[1][4].item<int64_t>() == eot);
  CHECK(batch.attention_mask[1].sum().item<int64_t>() == 5);
  const auto wide = clip().encode_batch({"a"}, 6);
  const int64_t sot = clip().special_ids().cls, a = clip().token_to_id("a</w>");
  CHECK(at::equal(wide.input_ids, at::tensor({sot, a, eot, eot, eot, eot}).view({1, 6})));
  CHECK(at::equal(wide.attention_mask, at::tensor({1, 1, 1, 0, 0, 0}, at::kLong).view({1, 6})));
}

TEST_CASE("clip bpe reports bad merges files by path and line") {
  CHECK_THROWS_WITH_AS(ClipBpeTokenizer("/nonexistent/bpe.txt"),
                       doctest::Contains("/nonexistent/bpe.txt"), c10::Error);
  const auto path = write_temp("bad_merges.txt", "#version: 0.2\nl o\nthree parts here\n");
  CHECK_THROWS_WITH_AS(ClipBpeTokenizer{path}, doctest::Contains("bad_merges.txt:3"), c10::Error);
  std::remove(path.c_str());
  const auto gz = write_temp("gz_merges.txt", std::string("\x1f\x8b\x08\x00", 4));
  CHECK_THROWS_WITH_AS(ClipBpeTokenizer{gz}, doctest::Contains("gzip"), c10::Error);
  std::remove(gz.c_str());
}
