#pragma once
// BERT's tokenizer: basic tokenisation (clean, CJK split, lower case + accent
// stripping when uncased, punctuation split) then WordPiece greedy
// longest-match-first with "##" continuation pieces. Vocabulary: vocab.txt,
// one token per line, id = line number.
#include <string>
#include <unordered_map>
#include <vector>

#include "core/data/tokenizer.h"

namespace kinema::data {

class WordPieceTokenizer : public Tokenizer {
 public:
  // Words longer than this many characters become [UNK] (BERT's limit).
  static constexpr size_t kMaxCharsPerWord = 100;

  explicit WordPieceTokenizer(const std::string& vocab_path, bool lower_case = true);
  WordPieceTokenizer(std::vector<std::string> vocab, bool lower_case = true);

  // Words after basic tokenisation (before WordPiece), e.g. for inspection.
  std::vector<std::string> basic_tokenize(const std::string& text) const;

  std::vector<std::string> tokenize(const std::string& text) const override;
  std::vector<int64_t> encode_pieces(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return "wordpiece"; }

 private:
  void index_vocab(const std::string& source);
  // Appends the WordPiece split of one basic token (UTF-8) to `out`.
  void wordpiece(const std::string& word, std::vector<std::string>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
  bool lower_case_;
};

}  // namespace kinema::data
