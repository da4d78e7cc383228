#pragma once
// STOA-VLP object trajectory encoder (eq 1) and spatial-temporal action
// encoder (eq 2).
//
// Trajectories: every frame's top-K boxes are RoIAligned on the patch grid of an
// intermediate video layer, max-pooled and passed through an MLP (object tokens
// O, [B,T,K,h]) plus a spatial (Linear of the box) and temporal (learned)
// position embedding. The N classes with the largest summed confidence become
// trajectories: each is a [CLS] token followed by all T*K object tokens of which
// only that class's are visible (masked attention), through a small transformer;
// the [CLS] output, normed and projected, is the trajectory token.
//
// Actions: M learned queries attend (softmax(q F^T / sqrt(h)) F) over each
// frame's [patches ; object tokens]; the T per-frame results of a query plus a
// [CLS] and a temporal position embedding go through a small transformer; the
// [CLS] output, normed and projected, is the action token.
//
// Parameter names (TrajectoryEncoder): box_mlp.{fc1,fc2}, box_embed, time_embed
// [1,T,h], cls_token [1,1,h], blocks.<i>.*, norm, proj. (ActionEncoder):
// queries [M,h], time_embed [1,T,h], cls_token [1,1,h], blocks.<i>.*, norm, proj.
#include <torch/torch.h>

#include "models/layers.h"

namespace kinema::models {

struct TrajectoryEncoderOptions {
  int64_t num_frames = 12;        // rows of the temporal position embedding
  int64_t num_trajectories = 20;  // N
  int64_t roi_size = 4;           // RoIAlign output is roi_size x roi_size, then max-pooled
  int64_t sampling_ratio = 2;
  int64_t depth = 2;
  int64_t out_dim = 512;          // d, the shared space (0 = no projection)
  LayerOptions layer;             // width h = the video encoder's
  bool grad_checkpoint = false;
};

struct TrajectoryEncoderOutput {
  at::Tensor trajectories;      // [B, N, d]
  at::Tensor trajectory_mask;   // [B, N] bool: class present in the video
  at::Tensor trajectory_class;  // [B, N] int64 (-1 when absent)
  at::Tensor object_tokens;     // [B, T, K, h] (O, with position embeddings)
  at::Tensor object_mask;       // [B, T, K] bool (valid boxes)
};

class TrajectoryEncoderImpl : public torch::nn::Module {
 public:
  explicit TrajectoryEncoderImpl(const TrajectoryEncoderOptions& options);
  // patches [B, T, H*W (+1 leading [CLS]), h]; boxes [B, T, K, 4] as normalised
  // (x1, y1, x2, y2) in [0, 1]; classes [B, T, K] int64 (< 0 = no box);
  // scores [B, T, K] detection confidences.
  TrajectoryEncoderOutput forward(const at::Tensor& patches, const at::Tensor& boxes,
                                  const at::Tensor& classes, const at::Tensor& scores);
  const TrajectoryEncoderOptions& options() const { return options_; }

 private:
  TrajectoryEncoderOptions options_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, box_embed_{nullptr}, proj_{nullptr};
  at::Tensor time_embed_, cls_token_;
  std::vector<TransformerLayer> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(TrajectoryEncoder);

struct ActionEncoderOptions {
  int64_t num_frames = 12;
  int64_t num_queries = 4;  // M
  int64_t depth = 2;
  int64_t out_dim = 512;
  LayerOptions layer;
  bool grad_checkpoint = false;
};

struct ActionEncoderOutput {
  at::Tensor actions;         // [B, M, d]
  at::Tensor frame_features;  // [B, M, T, h] (x_i of eq 2)
  at::Tensor attention;       // [B, T, M, P] softmax weights over [patches ; objects]
};

class ActionEncoderImpl : public torch::nn::Module {
 public:
  explicit ActionEncoderImpl(const ActionEncoderOptions& options);
  // patches [B, T, H*W (+1), h]; objects [B, T, K, h] or undefined;
  // object_mask [B, T, K] bool or undefined.
  ActionEncoderOutput forward(const at::Tensor& patches, const at::Tensor& objects = {},
                              const at::Tensor& object_mask = {});
  const ActionEncoderOptions& options() const { return options_; }

 private:
  ActionEncoderOptions options_;
  at::Tensor queries_, time_embed_, cls_token_;
  std::vector<TransformerLayer> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear proj_{nullptr};
};
TORCH_MODULE(ActionEncoder);

// Drops a leading [CLS] row when the token count is 1 + a square; checks the
// rest is a square grid. Returns [B, T, H*W, h].
at::Tensor patch_grid_tokens(const at::Tensor& tokens, const char* block, int64_t& side);

}  // namespace kinema::models
