// The hand-written Unicode tables against Python's unicodedata / regex
// (tests/fixtures/text_unicode_expected.json, written by make_text_fixture.py).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/data/tokenizer_unicode.h"
#include "test_paths.h"

namespace uc = kinema::data::unicode;

namespace {
bool covered_case(char32_t cp) {  // blocks whose case mapping the tables claim
  return cp < 0x180 || (cp >= 0x386 && cp <= 0x3AF) || (cp >= 0x400 && cp <= 0x45F);
}
}  // namespace

TEST_CASE("unicode tables agree with Python's unicodedata on the covered blocks") {
  std::ifstream in(KINEMA_FIXTURES "/text_unicode_expected.json");
  REQUIRE(in);
  const auto rows = nlohmann::json::parse(in);
  REQUIRE(rows.size() > 1000);
  int checked = 0;
  for (const auto& row : rows) {
    const auto cp = row[0].get<char32_t>();
    const std::string flags = row[1];
    const std::string lower = row[2];
    const std::string stripped = row[3];
    INFO("code point " << static_cast<uint32_t>(cp));
    CHECK(uc::is_bert_whitespace(cp) == (flags.find('w') != std::string::npos));
    CHECK(uc::is_bert_control(cp) == (flags.find('c') != std::string::npos));
    CHECK(uc::is_bert_punctuation(cp) == (flags.find('p') != std::string::npos));
    CHECK(uc::is_letter(cp) == (flags.find('L') != std::string::npos));
    CHECK(uc::is_number(cp) == (flags.find('N') != std::string::npos));
    CHECK(uc::is_regex_space(cp) == (flags.find('s') != std::string::npos));
    if (covered_case(cp)) CHECK(uc::encode_utf8(uc::to_lower(std::u32string(1, cp))) == lower);
    if (cp < 0x180) CHECK(uc::encode_utf8(uc::strip_accents(std::u32string(1, cp))) == stripped);
    ++checked;
  }
  CHECK(checked == static_cast<int>(rows.size()));
}

TEST_CASE("utf-8 decoding replaces invalid bytes and round-trips valid text") {
  const std::string text = "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE4\xBA\x8C";
  CHECK(uc::encode_utf8(uc::decode_utf8(text)) == text);
  CHECK(uc::decode_utf8("a\xFF" "b") == std::u32string{U'a', 0xFFFD, U'b'});
  CHECK(uc::decode_utf8("\xC3") == std::u32string{0xFFFD});           // cut short
  CHECK(uc::decode_utf8("\xC0\xAF") == std::u32string{0xFFFD, 0xFFFD});  // overlong '/'
}
