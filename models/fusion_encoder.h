#pragma once
// STOA-VLP's modality-agnostic fusion encoder: a transformer over
// [video frames ; video CLS ; trajectories ; actions ; text] with the masks the
// objectives need — bidirectional with padding (VTM, MLM) or prefix-causal
// (PLM: video, trajectories, actions and the text prefix see each other; each
// text token from the split point on also sees the suffix up to itself).
//
// Parameter names: blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2},
// norm (final_norm), video_proj/trajectory_proj/action_proj/text_proj.{weight,bias}
// when the corresponding *_dim differs from embed_dim. Defaults follow the CLIP
// text layers STOA initialises it from (pre-norm, fused qkv, quick_gelu, eps 1e-5).
#include <torch/torch.h>

#include "models/layers.h"

namespace kinema::models {

struct FusionEncoderOptions {
  int64_t depth = 6;
  LayerOptions layer;
  bool final_norm = true;
  bool append_video_cls = true;  // append the mean of the frames as v_[CLS]
  // Input widths (0 = embed_dim); a Linear maps them to embed_dim otherwise.
  int64_t video_dim = 0, trajectory_dim = 0, action_dim = 0, text_dim = 0;
  bool grad_checkpoint = false;
  FusionEncoderOptions();
};

struct FusionEncoderOutput {
  at::Tensor tokens;        // [B, S, D]
  at::Tensor video;         // [B, T(+1), D]
  at::Tensor video_cls;     // [B, D] output at v_[CLS] (append_video_cls)
  at::Tensor trajectories;  // [B, N, D] or undefined
  at::Tensor actions;       // [B, M, D] or undefined
  at::Tensor text;          // [B, L, D]
  at::Tensor attention;     // [B, S, S] bool mask used (true = may attend)
};

class FusionEncoderImpl : public torch::nn::Module {
 public:
  explicit FusionEncoderImpl(const FusionEncoderOptions& options);
  // video [B, T, Dv]; text [B, L, Dt]; text_mask [B, L] bool or undefined;
  // trajectories [B, N, Do], actions [B, M, Da] (undefined = absent);
  // prefix_len [B] int64 (PLM split point p: text positions < p are the prefix)
  // or undefined (bidirectional); trajectory_mask [B, N] bool or undefined.
  FusionEncoderOutput forward(const at::Tensor& video, const at::Tensor& text,
                              const at::Tensor& text_mask = {}, const at::Tensor& trajectories = {},
                              const at::Tensor& actions = {}, const at::Tensor& prefix_len = {},
                              const at::Tensor& trajectory_mask = {});
  const FusionEncoderOptions& options() const { return options_; }

 private:
  FusionEncoderOptions options_;
  torch::nn::Linear video_proj_{nullptr}, trajectory_proj_{nullptr}, action_proj_{nullptr},
      text_proj_{nullptr};
  std::vector<TransformerLayer> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(FusionEncoder);

// The fusion mask [B, S, S] (true = may attend) for `context_valid` [B, P]
// non-text tokens followed by text tokens `text_valid` [B, L]. Padding is never
// attended to. With prefix_len [B] (PLM), context and prefix tokens (text
// position < p) attend to context and prefix only; a suffix token at text
// position i >= p attends to context, prefix and suffix positions <= i.
at::Tensor fusion_attention_mask(const at::Tensor& context_valid, const at::Tensor& text_valid,
                                 const at::Tensor& prefix_len = {});

FusionEncoderOptions fusion_encoder_options_from_config(const Config& config);

}  // namespace kinema::models
