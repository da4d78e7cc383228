#pragma once
// String helpers shared by the tokenizers.
#include <string>
#include <vector>

namespace kinema::data {

// Splits on runs of U+0020 (callers map other whitespace to a space first).
std::vector<std::u32string> split_on_spaces(const std::u32string& text);

// Undoes the spaces decode() puts before punctuation and English
// contractions (" ." -> ".", " n't" -> "n't", ...), as BERT's decoders do.
std::string clean_up_tokenization_spaces(const std::string& text);

// HTML entities: &amp; &lt; &gt; &quot; &apos; &#39; &nbsp; and numeric
// &#NN; / &#xHH; references (what caption scrapes contain); others stay.
std::string html_unescape(const std::string& text);

}  // namespace kinema::data
