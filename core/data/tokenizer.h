#pragma once
// Text tokenizers: one interface, three implementations (BERT WordPiece, CLIP
// byte-level BPE, SentencePiece). encode() frames a caption as
// [cls/bos] content [sep/eos]; encode_batch() pads and truncates to a fixed
// length and returns int64 tensors ready for a text encoder.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kinema::data {

// The ids a model treats specially; -1 where the vocabulary has no such token
// (e.g. CLIP has no [MASK]).
struct SpecialTokenIds {
  int64_t cls = -1;   // [CLS] / <|startoftext|> / <s>: first token of every encoding
  int64_t sep = -1;   // [SEP] / <|endoftext|> / </s>: last token of every encoding
  int64_t mask = -1;  // [MASK] for MLM
  int64_t pad = -1;   // filler after the last real token (attention_mask 0)
  int64_t unk = -1;   // out-of-vocabulary
};

struct BatchEncoding {
  at::Tensor input_ids;       // [B, L] int64
  at::Tensor attention_mask;  // [B, L] int64, 1 on real tokens (framing included), 0 on padding
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Sub-word pieces of the text, without framing tokens.
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // Ids of the pieces, without framing tokens.
  virtual std::vector<int64_t> encode_pieces(const std::string& text) const = 0;
  // Text of the ids; framing, mask and padding ids are dropped when skip_special.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const = 0;

  virtual int64_t vocab_size() const = 0;
  // Id of a vocabulary entry, or -1 when absent.
  virtual int64_t token_to_id(const std::string& token) const = 0;
  // Vocabulary entry of an id; throws naming the id when out of range.
  virtual std::string id_to_token(int64_t id) const = 0;
  // "wordpiece", "clip_bpe" or "sentencepiece".
  virtual std::string kind() const = 0;

  const SpecialTokenIds& special_ids() const { return special_; }
  // The ids MLM must never choose: cls, sep, mask and pad (those that exist).
  std::vector<int64_t> special_id_list() const;
  bool is_special(int64_t id) const;

  // [cls] pieces [sep]; truncated so the whole has at most max_length ids
  // (max_length <= 0: no limit). The framing tokens always survive truncation.
  std::vector<int64_t> encode(const std::string& text, bool add_special = true,
                              int64_t max_length = 0) const;

  // Pads to max_length (pad_to_max = true) or to the longest encoding in the
  // batch (pad_to_max = false, still truncated to max_length when > 0).
  BatchEncoding encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                             bool pad_to_max = true, bool add_special = true) const;

  // Where each word's pieces sit in an encoding of the caption that contains
  // them (e.g. the nouns of PosTagger::parts for OTA): [begin, end) positions
  // in `ids`, matched left to right in order; {-1, -1} for a word not found
  // (e.g. cut by truncation). Words are matched by their own encoding, so a
  // word written right after punctuation without a space may be missed by
  // SentencePiece.
  std::vector<std::pair<int64_t, int64_t>> locate_words(const std::vector<int64_t>& ids,
                                                        const std::vector<std::string>& words) const;

 protected:
  SpecialTokenIds special_;
};

// Loads a tokenizer by kind: "wordpiece" (vocab.txt), "clip_bpe"
// (bpe_simple_vocab_16e6.txt, plain or gzip-free text), "sentencepiece" (.model).
std::shared_ptr<Tokenizer> load_tokenizer(const std::string& kind, const std::string& path);

}  // namespace kinema::data
