#pragma once
// ViT-B/16-family video encoder: per-frame patches (16x16) or tubelets
// (t x 16 x 16), one [CLS] token per frame (per tubelet slice), learned spatial
// and temporal position embeddings (resampled when the input size differs from
// the configured one), and per-frame, joint space-time or divided space-time
// (TimeSformer) attention. Optional S-ViLM grouping blocks after chosen layers
// and gradient checkpointing.
//
// Parameter names (timm ViT; CLIP/TimeSformer extras):
//   patch_embed.proj.{weight,bias}   Conv2d [D,C,p,p] or Conv3d [D,C,t,p,p]
//   cls_token [1,1,D]  pos_embed [1,1+N,D]  time_embed [1,T',D]
//   norm_pre.{weight,bias}           (norm_pre = true, CLIP's ln_pre)
//   blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}
//   blocks.<i>.{temporal_norm1,temporal_attn.qkv,temporal_attn.proj,temporal_fc}  (divided)
//   norm.{weight,bias}  proj [D,E] (proj_dim > 0; used as x @ proj, CLIP's visual.proj)
//   group_token [1,M,D]  grouping.<j>.*  group_norm.{weight,bias}  (grouping_layers)
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "models/grouping.h"
#include "models/layers.h"

namespace kinema::models {

struct VideoEncoderOptions {
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t num_frames = 8;
  int64_t tubelet = 1;  // frames per patch (S-ViLM: 2)
  int64_t depth = 12;
  LayerOptions layer;   // embed_dim, num_heads, mlp_ratio, act, ...
  std::string attention = "frame";  // "frame" | "joint" | "divided"
  bool patch_bias = true;   // CLIP's conv1 has none
  bool norm_pre = false;    // CLIP's ln_pre
  bool final_norm = true;
  int64_t proj_dim = 0;     // > 0: CLIP-style projection matrix [D, proj_dim]
  std::vector<int64_t> return_layers;  // 1-based layer numbers
  bool grad_checkpoint = false;
  std::string pos_interp = "bicubic";  // spatial resampling at other image sizes
  std::vector<int64_t> grouping_layers;  // 1-based; grouping block after each
  int64_t num_groups = 32;
  double grouping_tau = 1.0;
};

struct VideoEncoderOutput {
  at::Tensor tokens;       // [B, T', 1+N, D] after the final norm
  at::Tensor cls;          // [B, T', D] frame [CLS] outputs
  at::Tensor patches;      // [B, T', N, D]
  at::Tensor pooled;       // [B, D] mean of the frame [CLS] outputs
  at::Tensor cls_proj;     // [B, T', E] (proj_dim > 0)
  at::Tensor pooled_proj;  // [B, E]     (proj_dim > 0)
  at::Tensor masked_mean;  // [B, D] mean of kept patches (patch_mask given)
  at::Tensor groups;       // [B, M, D] (grouping_layers)
  std::vector<at::Tensor> assignments;     // [B, M, T'*N] per grouping block
  std::map<int64_t, at::Tensor> layers;    // layer number -> [B, T', 1+N, D] (pre final norm)
};

class VideoEncoderImpl : public torch::nn::Module {
 public:
  explicit VideoEncoderImpl(const VideoEncoderOptions& options);
  // video [B, T, C, H, W] (or an image batch [B, C, H, W] as T = 1);
  // patch_mask [B, T', N] bool (true = kept patch) or undefined.
  VideoEncoderOutput forward(const at::Tensor& video, const at::Tensor& patch_mask = {});
  const VideoEncoderOptions& options() const { return options_; }
  int64_t grid() const { return options_.image_size / options_.patch_size; }

 private:
  at::Tensor embed(const at::Tensor& video, int64_t& frames, int64_t& grid_h, int64_t& grid_w);
  at::Tensor run_layer(size_t index, const at::Tensor& x, int64_t batch, int64_t frames);

  VideoEncoderOptions options_;
  torch::nn::Conv2d patch_conv2d_{nullptr};
  torch::nn::Conv3d patch_conv3d_{nullptr};
  at::Tensor cls_token_, pos_embed_, time_embed_, proj_, group_token_;
  torch::nn::LayerNorm norm_pre_{nullptr}, norm_{nullptr}, group_norm_{nullptr};
  std::vector<TransformerLayer> blocks_;
  std::map<int64_t, GroupingBlock> grouping_;  // layer number -> block
};
TORCH_MODULE(VideoEncoder);

VideoEncoderOptions video_encoder_options_from_config(const Config& config);

}  // namespace kinema::models
