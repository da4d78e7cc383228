#pragma once
// Transformer pieces shared by every encoder in models/: multi-head
// self-attention (fused or separate q/k/v projections), the MLP, and one
// transformer layer (pre-norm ViT/CLIP style or post-norm BERT style, with an
// optional TimeSformer temporal sub-layer). Parameter names follow timm:
//   norm1, attn.qkv | attn.q attn.k attn.v, attn.proj, norm2, mlp.fc1, mlp.fc2,
//   temporal_norm1, temporal_attn.*, temporal_fc (divided space-time only).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/adapter.h"
#include "models/block.h"

namespace kinema::models {

// Activation by name: "gelu" (exact erf, ViT/BERT), "gelu_tanh", "quick_gelu"
// (x * sigmoid(1.702 x), OpenAI CLIP), "relu".
at::Tensor activate(const at::Tensor& x, const std::string& act);
void check_activation(const std::string& act, const char* owner);

// Turns a boolean "may attend" mask (true = keep) into an additive float mask of
// dtype `dtype`, broadcastable against attention scores [N, heads, S_q, S_k].
// Accepted shapes: [N, S_k] (key padding), [N, S_q, S_k] or [S_q, S_k].
at::Tensor additive_attention_mask(const at::Tensor& allowed, at::ScalarType dtype);

struct AttentionOptions {
  int64_t dim = 768;
  int64_t num_heads = 12;
  bool fused_qkv = true;  // one qkv Linear (timm/CLIP) or q, k, v Linears (BERT)
  bool qkv_bias = true;
  double attn_dropout = 0.0;
  double proj_dropout = 0.0;
};

class SelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SelfAttentionImpl(const AttentionOptions& options);
  // x [N, S, D]; mask: additive float mask broadcastable to [N, heads, S, S] or
  // undefined. Returns [N, S, D].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = {});
  const AttentionOptions& options() const { return options_; }

 private:
  AttentionOptions options_;
  torch::nn::Linear qkv_{nullptr}, q_{nullptr}, k_{nullptr}, v_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(SelfAttention);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden, std::string act, double dropout);
  at::Tensor forward(const at::Tensor& x);

 private:
  std::string act_;
  double dropout_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(FeedForward);

struct LayerOptions {
  int64_t dim = 768;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool pre_norm = true;  // x + f(norm(x)) (ViT, CLIP) or norm(x + f(x)) (BERT)
  std::string act = "gelu";
  bool fused_qkv = true;
  bool qkv_bias = true;
  double layer_norm_eps = 1e-6;
  double dropout = 0.0;
  double attn_dropout = 0.0;
  bool temporal = false;  // adds the divided space-time temporal sub-layer
};

class TransformerLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerLayerImpl(const LayerOptions& options);
  // x [N, S, D] with an additive mask (or undefined). With the temporal
  // sub-layer, x is [B*T, S, D] laid out frame-major and `frames` = T: each of
  // the S positions first attends over the T frames, then within its frame.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = {}, int64_t frames = 0);
  const LayerOptions& options() const { return options_; }

 private:
  at::Tensor temporal_forward(const at::Tensor& x, int64_t frames);

  LayerOptions options_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, temporal_norm1_{nullptr};
  SelfAttention attn_{nullptr}, temporal_attn_{nullptr};
  torch::nn::Linear temporal_fc_{nullptr};
  FeedForward mlp_{nullptr};
};
TORCH_MODULE(TransformerLayer);

// Runs `layers` over x [N, S, D] with one additive mask, checkpointing each
// layer when `checkpointed` (and grad is being recorded).
at::Tensor run_layers(const std::vector<TransformerLayer>& layers, at::Tensor x,
                      const at::Tensor& mask, bool checkpointed);

// The LayerOptions keys shared by every encoder's config (embed_dim,
// num_heads, mlp_ratio, act, qkv, qkv_bias, layer_norm_eps, dropout,
// attn_dropout), with their checks; an encoder's table takes them with
// keys_of(&Options::layer, layer_keys()).
const ConfigKeys<LayerOptions>& layer_keys();

// `keys` followed by the keys of an encoder's stack of layers: depth, the
// layer keys and grad_checkpoint (fields depth, layer, grad_checkpoint of O).
template <typename O>
ConfigKeys<O> with_stack_keys(ConfigKeys<O> keys) {
  keys.key("depth", &O::depth).keys_of(&O::layer, layer_keys()).key("grad_checkpoint", &O::grad_checkpoint);
  return keys;
}

// Parameter initialisation used by all blocks (timm's ViT scheme): trunc-normal
// std 0.02 for Linear weights and embeddings, zero biases, LayerNorm (1, 0).
void init_transformer_weights(torch::nn::Module& module);
at::Tensor trunc_normal_(at::Tensor t, double std);

}  // namespace kinema::models
