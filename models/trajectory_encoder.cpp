#include "models/trajectory_encoder.h"

#include <cmath>

#include "models/adapter.h"
#include "ops/ops.h"

namespace kinema::models {

at::Tensor patch_grid_tokens(const at::Tensor& tokens, const char* block, int64_t& side) {
  TORCH_CHECK(tokens.dim() == 4, block, ": input #1 (patches) must be [B, T, H*W (+1), h], got ",
              tokens.sizes());
  auto square_side = [](int64_t n) {
    const auto s = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    return s * s == n ? s : int64_t{-1};
  };
  const int64_t n = tokens.size(2);
  if ((side = square_side(n)) > 0) return tokens;
  side = square_side(n - 1);
  TORCH_CHECK(side > 0, block, ": input #1 (patches) has ", n,
              " tokens per frame, neither a square grid nor [CLS] + a square grid");
  return tokens.narrow(2, 1, n - 1);
}

TrajectoryEncoderImpl::TrajectoryEncoderImpl(const TrajectoryEncoderOptions& o) : options_(o) {
  const char* op = "TrajectoryEncoder";
  TORCH_CHECK(o.num_frames > 0 && o.num_trajectories > 0 && o.roi_size > 0 && o.depth > 0, op,
              ": config keys 'num_frames', 'num_trajectories', 'roi_size', 'depth' must be positive");
  const int64_t h = o.layer.dim;
  auto mlp = register_module("box_mlp", std::make_shared<torch::nn::Module>());
  fc1_ = mlp->register_module("fc1", torch::nn::Linear(h, h));
  fc2_ = mlp->register_module("fc2", torch::nn::Linear(h, h));
  box_embed_ = register_module("box_embed", torch::nn::Linear(4, h));
  time_embed_ = register_parameter("time_embed", torch::zeros({1, o.num_frames, h}));
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, h}));
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  LayerOptions lo = o.layer;
  lo.pre_norm = true;
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks_.push_back(TransformerLayer(lo));
    blocks->push_back(blocks_.back());
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(o.layer.layer_norm_eps)));
  if (o.out_dim > 0) proj_ = register_module("proj", torch::nn::Linear(h, o.out_dim));
  init_transformer_weights(*this);
  trunc_normal_(time_embed_, 0.02);
  trunc_normal_(cls_token_, 0.02);
}

TrajectoryEncoderOutput TrajectoryEncoderImpl::forward(const at::Tensor& patches_in,
                                                       const at::Tensor& boxes,
                                                       const at::Tensor& classes,
                                                       const at::Tensor& scores) {
  const char* op = "TrajectoryEncoder";
  int64_t side = 0;
  at::Tensor patches = patch_grid_tokens(patches_in, op, side);
  const int64_t b = patches.size(0), t = patches.size(1), h = options_.layer.dim;
  TORCH_CHECK(patches.size(3) == h, op, ": input #1 (patches) width ", patches.size(3),
              " differs from embed_dim ", h);
  TORCH_CHECK(t <= options_.num_frames, op, ": ", t, " frames exceed num_frames = ", options_.num_frames);
  TORCH_CHECK(boxes.dim() == 4 && boxes.size(0) == b && boxes.size(1) == t && boxes.size(3) == 4, op,
              ": input #2 (boxes) must be [B, T, K, 4], got ", boxes.sizes());
  const int64_t k = boxes.size(2);
  TORCH_CHECK(classes.sizes() == boxes.sizes().slice(0, 3) && classes.scalar_type() == at::kLong, op,
              ": input #3 (classes) must be int64 [B, T, K], got ", classes.scalar_type(), " ", classes.sizes());
  TORCH_CHECK(scores.sizes() == classes.sizes(), op, ": input #4 (scores) must be [B, T, K], got ",
              scores.sizes());

  // Eq 1: RoIAlign on the patch grid -> max-pool -> MLP.
  at::Tensor grid = patches.reshape({b * t, side, side, h}).permute({0, 3, 1, 2}).contiguous();
  at::Tensor frame_index = at::arange(b * t, boxes.options()).repeat_interleave(k).unsqueeze(1);
  at::Tensor rois = at::cat({frame_index, boxes.reshape({b * t * k, 4}).to(grid.scalar_type()) * side}, 1);
  at::Tensor pooled = kinema::ops::roi_align(grid, rois.to(grid.scalar_type()), options_.roi_size,
                                             options_.roi_size, 1.0, options_.sampling_ratio, true)
                          .amax({2, 3});  // [B*T*K, h]
  at::Tensor objects = fc2_(activate(fc1_(pooled), options_.layer.act)).view({b, t, k, h});
  objects = objects + box_embed_(boxes.to(objects.scalar_type())) +
            time_embed_.narrow(1, 0, t).unsqueeze(2);

  // Top-N classes by summed confidence over the valid boxes.
  at::Tensor valid = classes.ge(0);
  at::Tensor flat_classes = classes.clamp_min(0).reshape({b, t * k});
  const int64_t num_classes = std::max<int64_t>(flat_classes.numel() ? flat_classes.max().item<int64_t>() + 1 : 1,
                                                options_.num_trajectories);
  at::Tensor confidence = at::zeros({b, num_classes}, scores.options().dtype(at::kFloat))
                              .scatter_add_(1, flat_classes, (scores.to(at::kFloat) * valid).reshape({b, t * k}));
  at::Tensor count = at::zeros({b, num_classes}, scores.options().dtype(at::kFloat))
                         .scatter_add_(1, flat_classes, valid.to(at::kFloat).reshape({b, t * k}));
  // Present classes first (ranked by confidence), absent ones after.
  at::Tensor rank_key = confidence + count.gt(0).to(at::kFloat) * (confidence.abs().max() + 1.0);
  at::Tensor top = std::get<1>(rank_key.topk(options_.num_trajectories, 1));  // [B, N]
  at::Tensor present = count.gather(1, top).gt(0);
  const int64_t n = options_.num_trajectories;
  // Class masks over the T*K object tokens (+ the always-visible [CLS]).
  at::Tensor visible = flat_classes.unsqueeze(1).eq(top.unsqueeze(2))
                           .logical_and(valid.reshape({b, 1, t * k}))
                           .logical_and(present.unsqueeze(2));  // [B, N, T*K]
  at::Tensor keys = at::cat({at::ones({b, n, 1}, visible.options()), visible}, 2).reshape({b * n, 1 + t * k});
  at::Tensor x = at::cat({cls_token_.expand({b * n, 1, h}),
                          objects.reshape({b, 1, t * k, h}).expand({b, n, t * k, h}).reshape({b * n, t * k, h})},
                         1);
  x = run_layers(blocks_, x, additive_attention_mask(keys, x.scalar_type()),
                 options_.grad_checkpoint && is_training());
  at::Tensor cls = norm_(x.select(1, 0)).view({b, n, h});

  TrajectoryEncoderOutput out;
  out.trajectories = proj_ ? proj_(cls) : cls;
  out.trajectory_mask = present;
  out.trajectory_class = top.masked_fill(present.logical_not(), -1);
  out.object_tokens = objects;
  out.object_mask = valid;
  return out;
}

namespace {

using TrO = TrajectoryEncoderOptions;
const ConfigKeys<TrO>& trajectory_encoder_keys() {
  static const ConfigKeys<TrO> keys = with_stack_keys(ConfigKeys<TrO>()
                                                          .key("num_frames", &TrO::num_frames)
                                                          .key("num_trajectories", &TrO::num_trajectories)
                                                          .key("roi_size", &TrO::roi_size)
                                                          .key("sampling_ratio", &TrO::sampling_ratio)
                                                          .key("out_dim", &TrO::out_dim, "0 = none"));
  return keys;
}

class TrajectoryEncoderBlock : public TypedBlock<TrajectoryEncoder> {
 public:
  explicit TrajectoryEncoderBlock(const Config& c) : TypedBlock(TrajectoryEncoder(trajectory_encoder_keys().read(c))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    const char* n = "TrajectoryEncoder";
    TrajectoryEncoderOutput r = impl_->forward(input_tensor(in, 0, n, "patches"), input_tensor(in, 1, n, "boxes"),
                                               input_tensor(in, 2, n, "classes"), input_tensor(in, 3, n, "scores"));
    return make_outputs({{"trajectories", r.trajectories},
                         {"trajectory_mask", r.trajectory_mask},
                         {"trajectory_class", r.trajectory_class},
                         {"object_tokens", r.object_tokens},
                         {"object_mask", r.object_mask}});
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "TrajectoryEncoder", [](const Config& c) { return std::make_shared<TrajectoryEncoderBlock>(c); },
    "STOA-VLP object trajectory encoder (eq 1). Config: " + trajectory_encoder_keys().doc() + ". Inputs: patches [B,T,H*W(+1),h] (e.g. "
    "VideoEncoder layer_10), boxes [B,T,K,4] normalised x1,y1,x2,y2, classes [B,T,K] int64 (<0 = none), "
    "scores [B,T,K]. Outputs: trajectories [B,N,d], trajectory_mask [B,N], trajectory_class [B,N], "
    "object_tokens [B,T,K,h], object_mask [B,T,K]. Parameters: box_mlp.{fc1,fc2}, box_embed, "
    "time_embed, cls_token, blocks.<i>.*, norm, proj.");

}  // namespace kinema::models
