#pragma once
// S-ViLM grouping block (GroupViT-style): group tokens gather the video tokens
// assigned to them. Each block first lets the groups attend to the tokens, then
// assigns every token to exactly one group (gumbel hard assignment with a
// straight-through softmax gradient, kinema::ops::gumbel_hard_assign) and adds
// the mean of each group's tokens to it, then an MLP.
//
// Parameters: norm_tokens, norm_groups, cross_attn.{q,k,v,proj}, norm_assign,
// assign.{q,k,v,proj}, norm_mlp, mlp.{fc1,fc2}.
#include <torch/torch.h>

#include "models/layers.h"

namespace kinema::models {

struct GroupingOptions {
  int64_t dim = 768;
  int64_t num_heads = 12;  // heads of the pre-assignment cross-attention
  double mlp_ratio = 4.0;
  double tau = 1.0;         // gumbel-softmax temperature
  bool gumbel = true;       // add gumbel noise while training (never in eval)
  double layer_norm_eps = 1e-6;
  std::string act = "gelu";
};

class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t num_heads);
  // queries [B, M, D] attend to keys/values [B, L, D]; key_mask [B, L] additive or undefined.
  at::Tensor forward(const at::Tensor& queries, const at::Tensor& tokens, const at::Tensor& key_mask = {});

 private:
  int64_t dim_, num_heads_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(CrossAttention);

struct GroupingOutput {
  at::Tensor groups;      // [B, M, D]
  at::Tensor assignment;  // [B, M, L] one-hot over groups for every token (float)
};

class GroupingBlockImpl : public torch::nn::Module {
 public:
  explicit GroupingBlockImpl(const GroupingOptions& options);
  // groups [B, M, D]; tokens [B, L, D]; token_mask [B, L] bool (true = valid) or
  // undefined. Masked tokens are assigned to no group.
  GroupingOutput forward(const at::Tensor& groups, const at::Tensor& tokens,
                         const at::Tensor& token_mask = {});
  const GroupingOptions& options() const { return options_; }

 private:
  GroupingOptions options_;
  torch::nn::LayerNorm norm_tokens_{nullptr}, norm_groups_{nullptr}, norm_assign_{nullptr},
      norm_mlp_{nullptr};
  CrossAttention cross_attn_{nullptr};
  torch::nn::Linear assign_q_{nullptr}, assign_k_{nullptr}, assign_v_{nullptr},
      assign_proj_{nullptr};
  FeedForward mlp_{nullptr};
};
TORCH_MODULE(GroupingBlock);

}  // namespace kinema::models
