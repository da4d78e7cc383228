#include "core/data/vocab_builder.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <c10/util/Exception.h>

#include "core/data/tokenizer_wordpiece.h"

namespace kinema::data {

namespace {
const std::vector<std::string>& special_tokens() {
  static const std::vector<std::string> s = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return s;
}
}  // namespace

std::vector<std::string> build_word_vocab(const std::vector<std::string>& texts, int64_t min_count) {
  TORCH_CHECK(min_count >= 1, "kinema::data::build_word_vocab: argument 'min_count' must be >= 1, got ",
              min_count);
  // The splitter is the tokenizer's own basic tokenisation, so every word in
  // the vocabulary is one piece when the captions are encoded.
  const WordPieceTokenizer splitter(special_tokens(), /*lower_case=*/true);
  std::map<std::string, int64_t> counts;
  for (const std::string& text : texts)
    for (const std::string& word : splitter.basic_tokenize(text)) ++counts[word];
  std::vector<std::pair<std::string, int64_t>> words;
  for (const auto& [word, n] : counts) {
    const bool special = std::find(special_tokens().begin(), special_tokens().end(), word) !=
                         special_tokens().end();
    if (n >= min_count && !special) words.emplace_back(word, n);
  }
  std::stable_sort(words.begin(), words.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> vocab = special_tokens();
  for (const auto& w : words) vocab.push_back(w.first);
  return vocab;
}

void write_vocab(const std::string& path, const std::vector<std::string>& vocab) {
  // Into a temporary beside it, then renamed: a reader never sees half a vocabulary.
  const std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  TORCH_CHECK(!ec, "kinema::data::write_vocab: cannot create the folder of '", path, "': ", ec.message());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    TORCH_CHECK(out, "kinema::data::write_vocab: cannot open '", tmp, "' for writing");
    for (const std::string& token : vocab) out << token << '\n';
    out.close();
    TORCH_CHECK(out, "kinema::data::write_vocab: writing '", tmp, "' failed");
  }
  std::filesystem::rename(tmp, target, ec);
  TORCH_CHECK(!ec, "kinema::data::write_vocab: cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

}  // namespace kinema::data
