#pragma once
// CLIP's byte-level BPE. Vocabulary, from the merges file
// (bpe_simple_vocab_16e6.txt format, uncompressed): the 256 byte characters,
// the same with "</w>", one entry per merge (in file order, at most 48894),
// then <|startoftext|> and <|endoftext|>. Text is HTML-unescaped, whitespace
// collapsed and lower-cased, split by CLIP's pre-tokenisation pattern
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
// (scanned by hand), and each word is merged lowest rank first.
// ftfy.fix_text (mojibake repair) is not reproduced.
// Padding uses <|endoftext|> (as Hugging Face's CLIPTokenizer does; OpenAI's
// tokenize() pads with id 0, which is the token "!"); there is no [MASK].
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/data/tokenizer.h"

namespace kinema::data {

class ClipBpeTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kMaxMerges = 49152 - 256 - 2;

  explicit ClipBpeTokenizer(const std::string& merges_path);

  // Words of the pre-tokenisation pattern, after cleaning (UTF-8).
  std::vector<std::string> pre_tokenize(const std::string& text) const;

  std::vector<std::string> tokenize(const std::string& text) const override;
  std::vector<int64_t> encode_pieces(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return "clip_bpe"; }

 private:
  // BPE pieces of one pre-tokenised word (vocabulary strings).
  std::vector<std::string> bpe(const std::string& word) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
  std::map<std::pair<std::string, std::string>, int64_t> ranks_;
  std::string byte_to_char_[256];               // byte -> its vocabulary character (UTF-8)
  std::unordered_map<char32_t, uint8_t> char_to_byte_;
};

}  // namespace kinema::data
