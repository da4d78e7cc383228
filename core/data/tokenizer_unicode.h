#pragma once
// The small part of Unicode the tokenizers need, written out by hand so kinema
// does not depend on ICU for English captions. Coverage (checked against
// Python's unicodedata by tests/fixtures/make_text_fixture.py): case folding for
// ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; accent stripping (NFD
// then dropping combining marks) for Latin-1 and Latin Extended-A; character
// classes for the scripts captions use. Code points outside these tables keep
// their case and accents, and count as "other symbol" for the classifiers.
#include <string>
#include <vector>

namespace kinema::data::unicode {

// UTF-8 -> code points; an invalid byte becomes U+FFFD (never throws).
std::u32string decode_utf8(const std::string& text);
std::string encode_utf8(const std::u32string& cps);
void append_utf8(std::string& out, char32_t cp);

// Python's str.lower() inside the covered blocks (U+0130 lowers to "i" + U+0307).
std::u32string to_lower(const std::u32string& text);
// NFD + removal of nonspacing marks (BERT's _run_strip_accents).
std::u32string strip_accents(const std::u32string& text);

// BERT's definitions: whitespace = \t \n \r space or category Zs; control =
// category Cc/Cf except \t \n \r; punctuation = ASCII non-alphanumeric
// printable characters or category P*.
bool is_bert_whitespace(char32_t cp);
bool is_bert_control(char32_t cp);
bool is_bert_punctuation(char32_t cp);
bool is_cjk(char32_t cp);  // BERT's CJK Unified Ideographs ranges

// The classes of CLIP's pre-tokenisation regex (Python `regex` semantics).
bool is_regex_space(char32_t cp);  // \s (Unicode White_Space, as the regex module uses)
bool is_letter(char32_t cp);       // \p{L}
bool is_number(char32_t cp);       // \p{N}
bool is_combining_mark(char32_t cp);  // Mn inside the covered blocks

}  // namespace kinema::data::unicode
