#pragma once
// SentencePiece (libsentencepiece): load a .model, or train one on a caption
// corpus when no vocabulary is given. Framing tokens are looked up by name:
// [CLS]/[SEP] if the model has them, else its bos/eos; [PAD] else its pad,
// else eos; [MASK] or <mask> when present.
//
// Debian's libsentencepiece carries its own copy of protobuf-lite 3.14 and
// exports it, while LibTorch loads libprotobuf 3.21: linked normally, the two
// interpose and the process crashes before main. So the library is opened at
// first use with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) -- its protobuf binds to
// itself -- and kinema never links it (see tokenizer_sentencepiece.cpp).
#include <memory>
#include <string>
#include <vector>

#include "core/data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kinema::data {

struct SentencePieceTrainOptions {
  int64_t vocab_size = 8000;
  std::string model_type = "unigram";  // unigram | bpe | word | char
  double character_coverage = 1.0;
  bool lower_case = true;  // lower-case the corpus (and every text encoded later)
  int64_t num_threads = 1;
  int64_t seed = 0;        // seeds sentencepiece's sampling of the corpus
  std::string normalization = "nmt_nfkc";  // sentencepiece rule name (nmt_nfkc, nfkc, identity, ...)
  // The ids trained models get: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& model_path, bool lower_case = false);
  ~SentencePieceTokenizer() override;

  // Trains on `captions` (in memory) and returns the tokenizer; the
  // serialized model can be saved with save().
  static std::shared_ptr<SentencePieceTokenizer> train(const std::vector<std::string>& captions,
                                                       const SentencePieceTrainOptions& options);
  void save(const std::string& model_path) const;
  std::string serialized_model() const;

  std::vector<std::string> tokenize(const std::string& text) const override;
  std::vector<int64_t> encode_pieces(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const override;
  int64_t vocab_size() const override;
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return "sentencepiece"; }

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
                         bool lower_case);
  void find_special_ids();
  std::string prepare(const std::string& text) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  bool lower_case_;
};

}  // namespace kinema::data
