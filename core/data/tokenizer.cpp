#include "core/data/tokenizer.h"

#include <c10/util/Exception.h>

#include <algorithm>

#include "core/data/tokenizer_bpe.h"
#include "core/data/tokenizer_sentencepiece.h"
#include "core/data/tokenizer_wordpiece.h"

namespace kinema::data {

std::vector<int64_t> Tokenizer::special_id_list() const {
  std::vector<int64_t> ids;
  for (int64_t id : {special_.cls, special_.sep, special_.mask, special_.pad}) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

bool Tokenizer::is_special(int64_t id) const {
  return id >= 0 && (id == special_.cls || id == special_.sep || id == special_.mask ||
                     id == special_.pad);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special,
                                       int64_t max_length) const {
  std::vector<int64_t> pieces = encode_pieces(text);
  if (add_special) {
    TORCH_CHECK(special_.cls >= 0 && special_.sep >= 0, "kinema::Tokenizer::encode: the ",
                kind(), " vocabulary has no framing tokens; pass add_special=false");
    TORCH_CHECK(max_length <= 0 || max_length >= 2, "kinema::Tokenizer::encode: max_length ",
                max_length, " leaves no room for the two framing tokens");
    if (max_length > 0 && static_cast<int64_t>(pieces.size()) > max_length - 2)
      pieces.resize(max_length - 2);
    std::vector<int64_t> ids;
    ids.reserve(pieces.size() + 2);
    ids.push_back(special_.cls);
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    ids.push_back(special_.sep);
    return ids;
  }
  if (max_length > 0 && static_cast<int64_t>(pieces.size()) > max_length) pieces.resize(max_length);
  return pieces;
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                                      bool pad_to_max, bool add_special) const {
  TORCH_CHECK(!pad_to_max || max_length > 0, "kinema::Tokenizer::encode_batch: pad_to_max needs "
              "max_length > 0, got ", max_length);
  TORCH_CHECK(special_.pad >= 0, "kinema::Tokenizer::encode_batch: the ", kind(),
              " vocabulary has no padding token");
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  int64_t longest = 0;
  for (const auto& text : texts) {
    rows.push_back(encode(text, add_special, max_length));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(rows.back().size()));
  }
  const int64_t length = pad_to_max ? max_length : longest;
  const int64_t batch = static_cast<int64_t>(texts.size());
  at::Tensor ids = at::full({batch, length}, special_.pad, at::kLong);
  at::Tensor mask = at::zeros({batch, length}, at::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t i = 0; i < rows[b].size(); ++i) {
      ids_a[b][i] = rows[b][i];
      mask_a[b][i] = 1;
    }
  }
  return {ids, mask};
}

std::vector<std::pair<int64_t, int64_t>> Tokenizer::locate_words(
    const std::vector<int64_t>& ids, const std::vector<std::string>& words) const {
  std::vector<std::pair<int64_t, int64_t>> spans;
  size_t from = 0;
  for (const std::string& word : words) {
    const std::vector<int64_t> pieces = encode_pieces(word);
    auto hit = pieces.empty() ? ids.end()
                              : std::search(ids.begin() + from, ids.end(), pieces.begin(), pieces.end());
    if (hit == ids.end()) {
      spans.emplace_back(-1, -1);
      continue;
    }
    const auto begin = static_cast<int64_t>(hit - ids.begin());
    spans.emplace_back(begin, begin + static_cast<int64_t>(pieces.size()));
    from = static_cast<size_t>(begin) + pieces.size();
  }
  return spans;
}

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& kind, const std::string& path) {
  if (kind == "wordpiece") return std::make_shared<WordPieceTokenizer>(path);
  if (kind == "clip_bpe") return std::make_shared<ClipBpeTokenizer>(path);
  if (kind == "sentencepiece") return std::make_shared<SentencePieceTokenizer>(path);
  TORCH_CHECK(false, "kinema::load_tokenizer: unknown kind '", kind,
              "' (expected wordpiece, clip_bpe or sentencepiece)");
}

}  // namespace kinema::data
