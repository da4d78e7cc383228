#include "core/data/tokenizer_bpe.h"

#include <c10/util/Exception.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "core/data/tokenizer_text.h"
#include "core/data/tokenizer_unicode.h"

namespace kinema::data {

namespace uc = unicode;

namespace {
const char* const kStartOfText = "<|startoftext|>";
const char* const kEndOfText = "<|endoftext|>";
const std::u32string kStartOfText32 = U"<|startoftext|>";
const std::u32string kEndOfText32 = U"<|endoftext|>";
const char* const kEndOfWord = "</w>";
}  // namespace

ClipBpeTokenizer::ClipBpeTokenizer(const std::string& merges_path) {
  std::ifstream in(merges_path, std::ios::binary);
  TORCH_CHECK(in, "kinema::ClipBpeTokenizer: cannot open merges file '", merges_path, "'");
  std::string header;
  std::getline(in, header);
  TORCH_CHECK(!(header.size() >= 2 && static_cast<unsigned char>(header[0]) == 0x1F &&
                static_cast<unsigned char>(header[1]) == 0x8B),
              "kinema::ClipBpeTokenizer: '", merges_path,
              "' is gzip-compressed; decompress it first (gunzip -k)");

  // Printable bytes stand for themselves; the others are shifted to U+0100+
  // in byte order so every byte has a visible, non-space character.
  std::vector<int> order;
  std::vector<char32_t> chars;
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b)
    if (printable(b)) order.push_back(b), chars.push_back(static_cast<char32_t>(b));
  int shifted = 0;
  for (int b = 0; b < 256; ++b)
    if (!printable(b)) order.push_back(b), chars.push_back(static_cast<char32_t>(256 + shifted++));
  for (size_t k = 0; k < order.size(); ++k) {
    std::string utf8;
    uc::append_utf8(utf8, chars[k]);
    byte_to_char_[order[k]] = utf8;
    char_to_byte_[chars[k]] = static_cast<uint8_t>(order[k]);
    vocab_.push_back(utf8);
  }
  for (size_t k = 0; k < 256; ++k) vocab_.push_back(vocab_[k] + kEndOfWord);

  std::string line;
  int64_t line_no = 1;
  while (std::getline(in, line) && static_cast<int64_t>(ranks_.size()) < kMaxMerges) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string left, right, extra;
    fields >> left >> right;
    TORCH_CHECK(!left.empty() && !right.empty() && !(fields >> extra),
                "kinema::ClipBpeTokenizer: ", merges_path, ":", line_no,
                ": expected a merge 'a b', got '", line, "'");
    ranks_.emplace(std::make_pair(left, right), static_cast<int64_t>(ranks_.size()));
    vocab_.push_back(left + right);
  }
  // An empty (or header-only) file would give a byte-level tokenizer that looks like it works.
  TORCH_CHECK(!ranks_.empty(), "kinema::ClipBpeTokenizer: merges file '", merges_path,
              "' holds no merges (expected a '#version' header line and one 'a b' merge per line)");
  vocab_.push_back(kStartOfText);
  vocab_.push_back(kEndOfText);
  for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int64_t>(i));
  special_.cls = ids_.at(kStartOfText);
  special_.sep = ids_.at(kEndOfText);
  special_.pad = special_.sep;
}

int64_t ClipBpeTokenizer::token_to_id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::string ClipBpeTokenizer::id_to_token(int64_t id) const {
  TORCH_CHECK(id >= 0 && id < vocab_size(), "kinema::ClipBpeTokenizer::id_to_token: id ", id,
              " outside the vocabulary [0, ", vocab_size(), ")");
  return vocab_[id];
}

std::vector<std::string> ClipBpeTokenizer::pre_tokenize(const std::string& text) const {
  // Clean: HTML entities (twice, as CLIP does), whitespace runs -> one space,
  // trimmed, lower case.
  std::u32string raw = uc::decode_utf8(html_unescape(html_unescape(text)));
  std::u32string s;
  for (char32_t cp : raw) {
    if (uc::is_regex_space(cp)) {
      if (!s.empty() && s.back() != U' ') s.push_back(U' ');
    } else {
      s.push_back(cp);
    }
  }
  while (!s.empty() && s.back() == U' ') s.pop_back();
  s = uc::to_lower(s);

  std::vector<std::string> words;
  const size_t n = s.size();
  auto is_other = [](char32_t c) {
    return !uc::is_regex_space(c) && !uc::is_letter(c) && !uc::is_number(c);
  };
  for (size_t i = 0; i < n;) {
    const char32_t c = s[i];
    size_t end = i;
    if (s.compare(i, kStartOfText32.size(), kStartOfText32) == 0) {
      end = i + kStartOfText32.size();
    } else if (s.compare(i, kEndOfText32.size(), kEndOfText32) == 0) {
      end = i + kEndOfText32.size();
    } else if (c == U'\'' && i + 1 < n &&
               (s[i + 1] == U's' || s[i + 1] == U't' || s[i + 1] == U'm' || s[i + 1] == U'd')) {
      end = i + 2;
    } else if (c == U'\'' && i + 2 < n &&
               ((s[i + 1] == U'r' && s[i + 2] == U'e') || (s[i + 1] == U'v' && s[i + 2] == U'e') ||
                (s[i + 1] == U'l' && s[i + 2] == U'l'))) {
      end = i + 3;
    } else if (uc::is_letter(c)) {
      while (end < n && uc::is_letter(s[end])) ++end;
    } else if (uc::is_number(c)) {
      end = i + 1;
    } else if (is_other(c)) {
      while (end < n && is_other(s[end])) ++end;
    } else {  // a space separates words and is dropped
      ++i;
      continue;
    }
    words.push_back(uc::encode_utf8(s.substr(i, end - i)));
    i = end;
  }
  return words;
}

std::vector<std::string> ClipBpeTokenizer::bpe(const std::string& word) const {
  if (word == kStartOfText || word == kEndOfText) return {word};
  std::vector<std::string> parts;
  for (unsigned char byte : word) parts.push_back(byte_to_char_[byte]);
  if (parts.empty()) return parts;
  parts.back() += kEndOfWord;
  while (parts.size() > 1) {
    // The adjacent pair with the lowest merge rank.
    int64_t best_rank = std::numeric_limits<int64_t>::max();
    size_t best = 0;
    for (size_t k = 0; k + 1 < parts.size(); ++k) {
      auto it = ranks_.find({parts[k], parts[k + 1]});
      if (it != ranks_.end() && it->second < best_rank) best_rank = it->second, best = k;
    }
    if (best_rank == std::numeric_limits<int64_t>::max()) break;
    // Merge every occurrence of that pair, left to right, without overlap.
    const std::string left = parts[best], right = parts[best + 1];
    std::vector<std::string> merged;
    merged.reserve(parts.size());
    for (size_t k = 0; k < parts.size();) {
      if (k + 1 < parts.size() && parts[k] == left && parts[k + 1] == right) {
        merged.push_back(left + right);
        k += 2;
      } else {
        merged.push_back(parts[k++]);
      }
    }
    parts.swap(merged);
  }
  return parts;
}

std::vector<std::string> ClipBpeTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  for (const std::string& word : pre_tokenize(text)) {
    for (std::string& piece : bpe(word)) pieces.push_back(std::move(piece));
  }
  return pieces;
}

std::vector<int64_t> ClipBpeTokenizer::encode_pieces(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) {
    const int64_t id = token_to_id(piece);
    TORCH_CHECK(id >= 0, "kinema::ClipBpeTokenizer: piece '", piece,
                "' is not in the vocabulary (inconsistent merges file)");
    ids.push_back(id);
  }
  return ids;
}

std::string ClipBpeTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (skip_special && is_special(id)) continue;
    std::string token = id_to_token(id);
    if (id == special_.cls || id == special_.sep) {
      bytes += token;
      continue;
    }
    bool end_of_word = false;
    if (token.size() >= 4 && token.compare(token.size() - 4, 4, kEndOfWord) == 0) {
      token.resize(token.size() - 4);
      end_of_word = true;
    }
    for (char32_t cp : uc::decode_utf8(token)) bytes.push_back(static_cast<char>(char_to_byte_.at(cp)));
    if (end_of_word) bytes.push_back(' ');
  }
  while (!bytes.empty() && bytes.back() == ' ') bytes.pop_back();
  // Byte-level pieces may split a character; re-encoding replaces broken
  // sequences with U+FFFD instead of returning invalid UTF-8.
  return uc::encode_utf8(uc::decode_utf8(bytes));
}

}  // namespace kinema::data
