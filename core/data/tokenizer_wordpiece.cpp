#include "core/data/tokenizer_wordpiece.h"

#include <c10/util/Exception.h>

#include <fstream>

#include "core/data/tokenizer_text.h"
#include "core/data/tokenizer_unicode.h"

namespace kinema::data {

namespace uc = unicode;

WordPieceTokenizer::WordPieceTokenizer(const std::string& vocab_path, bool lower_case)
    : lower_case_(lower_case) {
  std::ifstream in(vocab_path, std::ios::binary);
  TORCH_CHECK(in, "kinema::WordPieceTokenizer: cannot open vocabulary file '", vocab_path, "'");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab_.push_back(line);
  }
  index_vocab(vocab_path);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, bool lower_case)
    : vocab_(std::move(vocab)), lower_case_(lower_case) {
  index_vocab("<in-memory vocabulary>");
}

void WordPieceTokenizer::index_vocab(const std::string& source) {
  TORCH_CHECK(!vocab_.empty(), "kinema::WordPieceTokenizer: vocabulary '", source, "' is empty");
  for (size_t i = 0; i < vocab_.size(); ++i) ids_[vocab_[i]] = static_cast<int64_t>(i);
  special_.unk = token_to_id("[UNK]");
  TORCH_CHECK(special_.unk >= 0, "kinema::WordPieceTokenizer: vocabulary '", source,
              "' has no [UNK] token");
  special_.cls = token_to_id("[CLS]");
  special_.sep = token_to_id("[SEP]");
  special_.mask = token_to_id("[MASK]");
  special_.pad = token_to_id("[PAD]");
}

int64_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::string WordPieceTokenizer::id_to_token(int64_t id) const {
  TORCH_CHECK(id >= 0 && id < vocab_size(), "kinema::WordPieceTokenizer::id_to_token: id ", id,
              " outside the vocabulary [0, ", vocab_size(), ")");
  return vocab_[id];
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(const std::string& text) const {
  // Clean: drop NUL, U+FFFD and control characters; all whitespace becomes a
  // space; CJK ideographs become words of their own.
  std::u32string cleaned;
  for (char32_t cp : uc::decode_utf8(text)) {
    if (cp == 0 || cp == 0xFFFD || uc::is_bert_control(cp)) continue;
    if (uc::is_bert_whitespace(cp)) {
      cleaned.push_back(' ');
    } else if (uc::is_cjk(cp)) {
      cleaned.push_back(' ');
      cleaned.push_back(cp);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(cp);
    }
  }
  std::vector<std::string> words;
  for (std::u32string& word : split_on_spaces(cleaned)) {
    if (lower_case_) word = uc::strip_accents(uc::to_lower(word));
    // Every punctuation character is a word of its own.
    std::u32string current;
    for (char32_t cp : word) {
      if (uc::is_bert_punctuation(cp)) {
        if (!current.empty()) words.push_back(uc::encode_utf8(current));
        current.clear();
        words.push_back(uc::encode_utf8(std::u32string(1, cp)));
      } else {
        current.push_back(cp);
      }
    }
    if (!current.empty()) words.push_back(uc::encode_utf8(current));
  }
  return words;
}

void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<std::string>& out) const {
  const std::u32string chars = uc::decode_utf8(word);
  if (chars.size() > kMaxCharsPerWord) {
    out.push_back(vocab_[special_.unk]);
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < chars.size()) {
    // Longest vocabulary entry starting at `start`.
    size_t end = chars.size();
    std::string found;
    for (; end > start; --end) {
      std::string candidate = uc::encode_utf8(chars.substr(start, end - start));
      if (start > 0) candidate = "##" + candidate;
      if (ids_.count(candidate)) {
        found = std::move(candidate);
        break;
      }
    }
    if (end == start) {  // no piece fits: the whole word is unknown
      out.push_back(vocab_[special_.unk]);
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  for (const std::string& word : basic_tokenize(text)) wordpiece(word, pieces);
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::encode_pieces(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) ids.push_back(ids_.at(piece));
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string joined;
  for (int64_t id : ids) {
    if (skip_special && is_special(id)) continue;
    const std::string token = id_to_token(id);
    if (token.rfind("##", 0) == 0 && !joined.empty()) {
      joined += token.substr(2);
    } else {
      if (!joined.empty()) joined.push_back(' ');
      joined += token;
    }
  }
  return clean_up_tokenization_spaces(joined);
}

}  // namespace kinema::data
