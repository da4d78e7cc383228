#pragma once
// DemoVLP region encoder (see region_encoder.cpp for the parameter names).
#include <torch/torch.h>

#include "models/layers.h"

namespace kinema::models {

struct RegionEncoderOptions {
  int64_t feat_dim = 2048;  // region feature width (BUTD/VinVL: 2048)
  int64_t num_frames = 8;
  int64_t depth = 12;
  LayerOptions layer;
  bool grad_checkpoint = false;
};

struct RegionEncoderOutput {
  at::Tensor tokens;   // [B, 1+N, D]
  at::Tensor cls;      // [B, D] (r_0, the global video feature)
  at::Tensor regions;  // [B, N, D]
};

class RegionEncoderImpl : public torch::nn::Module {
 public:
  explicit RegionEncoderImpl(const RegionEncoderOptions& options);
  // features [B, N, feat_dim]; locations [B, N, 7]; frame_index [B, N] int64;
  // mask [B, N] bool (true = real region) or undefined.
  RegionEncoderOutput forward(const at::Tensor& features, const at::Tensor& locations,
                              const at::Tensor& frame_index, const at::Tensor& mask = {});

 private:
  RegionEncoderOptions options_;
  torch::nn::Linear feat_proj_{nullptr}, loc_embed_{nullptr};
  at::Tensor time_embed_, cls_token_;
  std::vector<TransformerLayer> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(RegionEncoder);

}  // namespace kinema::models
