#pragma once
// Text encoders: BERT/DistilBERT-style bidirectional (post-norm, [CLS] pooling)
// and CLIP-style causal (pre-norm, end-of-text pooling). `style` sets the
// defaults of every other option; each can still be overridden.
//
// Parameter names:
//   word_embed.weight [V,D]  pos_embed [L,D]  type_embed.weight [types,D] (type_vocab_size > 0)
//   embed_norm.{weight,bias} (BERT)
//   blocks.<i>.{norm1,attn.q,attn.k,attn.v | attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}
//   norm.{weight,bias} (CLIP's ln_final)   proj [D,E] (proj_dim > 0, used as x @ proj)
// In post-norm (BERT) layers norm1 follows attention and norm2 follows the MLP.
#include <torch/torch.h>

#include <string>

#include "models/layers.h"

namespace kinema::models {

struct TextEncoderOptions {
  std::string style = "bert";  // "bert" | "clip"
  int64_t vocab_size = 30522;
  int64_t max_len = 512;
  int64_t type_vocab_size = 2;
  int64_t depth = 12;
  LayerOptions layer;
  bool embed_norm = true;
  bool final_norm = false;
  bool causal = false;
  std::string pool = "cls";  // "cls" (position 0) | "eot" (last valid token)
  int64_t proj_dim = 0;
  bool grad_checkpoint = false;

  // The published defaults of each style (BERT-base, CLIP ViT-B/16 text tower).
  static TextEncoderOptions bert();
  static TextEncoderOptions clip();
};

struct TextEncoderOutput {
  at::Tensor tokens;       // [B, L, D]
  at::Tensor pooled;       // [B, D]
  at::Tensor pooled_proj;  // [B, E] (proj_dim > 0)
  at::Tensor pool_index;   // [B] int64, the pooled position
};

class TextEncoderImpl : public torch::nn::Module {
 public:
  explicit TextEncoderImpl(const TextEncoderOptions& options);
  // ids [B, L] int64; attention_mask [B, L] (bool or 0/1 integers, true = real
  // token) or undefined; token_type_ids [B, L] int64 or undefined (zeros).
  TextEncoderOutput forward(const at::Tensor& ids, const at::Tensor& attention_mask = {},
                            const at::Tensor& token_type_ids = {});
  // Token embeddings before the transformer (for tying the MLM decoder).
  const at::Tensor& word_embeddings() const { return word_embed_->weight; }
  const TextEncoderOptions& options() const { return options_; }

 private:
  TextEncoderOptions options_;
  torch::nn::Embedding word_embed_{nullptr}, type_embed_{nullptr};
  at::Tensor pos_embed_, proj_;
  torch::nn::LayerNorm embed_norm_{nullptr}, norm_{nullptr};
  std::vector<TransformerLayer> blocks_;
};
TORCH_MODULE(TextEncoder);

TextEncoderOptions text_encoder_options_from_config(const Config& config);

// Bool mask [B, L, L] combining a key-padding mask [B, L] (or undefined) with a
// causal constraint when `causal` (query i sees keys j <= i).
at::Tensor text_attention_mask(const at::Tensor& valid, int64_t batch, int64_t length, bool causal,
                               const at::Device& device);

}  // namespace kinema::models
