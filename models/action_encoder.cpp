// STOA-VLP spatial-temporal action encoder (eq 2); declared in trajectory_encoder.h
// next to the trajectory encoder whose object tokens it consumes.
#include <cmath>

#include "models/adapter.h"
#include "models/trajectory_encoder.h"

namespace kinema::models {

ActionEncoderImpl::ActionEncoderImpl(const ActionEncoderOptions& o) : options_(o) {
  TORCH_CHECK(o.num_frames > 0 && o.num_queries > 0 && o.depth > 0,
              "ActionEncoder: config keys 'num_frames', 'num_queries', 'depth' must be positive");
  const int64_t h = o.layer.dim;
  queries_ = register_parameter("queries", torch::zeros({o.num_queries, h}));
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
  trunc_normal_(queries_, 0.02);
  trunc_normal_(time_embed_, 0.02);
  trunc_normal_(cls_token_, 0.02);
}

ActionEncoderOutput ActionEncoderImpl::forward(const at::Tensor& patches_in, const at::Tensor& objects,
                                               const at::Tensor& object_mask) {
  const char* op = "ActionEncoder";
  int64_t side = 0;
  at::Tensor patches = patch_grid_tokens(patches_in, op, side);
  const int64_t b = patches.size(0), t = patches.size(1), h = options_.layer.dim, m = options_.num_queries;
  TORCH_CHECK(patches.size(3) == h, op, ": input #1 (patches) width ", patches.size(3),
              " differs from embed_dim ", h);
  TORCH_CHECK(t <= options_.num_frames, op, ": ", t, " frames exceed num_frames = ", options_.num_frames);
  at::Tensor features = patches;  // F [B, T, P, h]
  at::Tensor key_valid;
  if (objects.defined()) {
    TORCH_CHECK(objects.dim() == 4 && objects.size(0) == b && objects.size(1) == t && objects.size(3) == h,
                op, ": input #2 (objects) must be [B, T, K, ", h, "], got ", objects.sizes());
    features = at::cat({patches, objects}, 2);
    if (object_mask.defined()) {
      TORCH_CHECK(object_mask.scalar_type() == at::kBool && object_mask.sizes() == objects.sizes().slice(0, 3),
                  op, ": input #3 (object_mask) must be bool [B, T, K]");
      key_valid = at::cat({at::ones({b, t, patches.size(2)}, object_mask.options()), object_mask}, 2);
    }
  }
  // Eq 2, every query against every frame at once: [B, T, M, P].
  at::Tensor scores = at::matmul(queries_, features.transpose(2, 3)) * (1.0 / std::sqrt(static_cast<double>(h)));
  if (key_valid.defined())
    scores = scores.masked_fill(key_valid.unsqueeze(2).logical_not(), -1e30);
  at::Tensor attention = at::softmax(scores, -1);
  at::Tensor per_frame = at::matmul(attention, features).permute({0, 2, 1, 3});  // [B, M, T, h]

  at::Tensor x = per_frame.reshape({b * m, t, h}) + time_embed_.narrow(1, 0, t);
  x = at::cat({cls_token_.expand({b * m, 1, h}), x}, 1);
  x = run_layers(blocks_, x, {}, options_.grad_checkpoint && is_training());
  at::Tensor cls = norm_(x.select(1, 0)).view({b, m, h});
  ActionEncoderOutput out;
  out.actions = proj_ ? proj_(cls) : cls;
  out.frame_features = per_frame;
  out.attention = attention;
  return out;
}

namespace {

using AO = ActionEncoderOptions;
const ConfigKeys<AO>& action_encoder_keys() {
  static const ConfigKeys<AO> keys = with_stack_keys(ConfigKeys<AO>()
                                                         .key("num_frames", &AO::num_frames)
                                                         .key("num_queries", &AO::num_queries)
                                                         .key("out_dim", &AO::out_dim, "0 = none"));
  return keys;
}

class ActionEncoderBlock : public TypedBlock<ActionEncoder> {
 public:
  explicit ActionEncoderBlock(const Config& c) : TypedBlock(ActionEncoder(action_encoder_keys().read(c))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    const char* n = "ActionEncoder";
    ActionEncoderOutput r = impl_->forward(input_tensor(in, 0, n, "patches"), optional_input(in, 1, n, "objects"),
                                           optional_input(in, 2, n, "object_mask"));
    return make_outputs({{"actions", r.actions}, {"frame_features", r.frame_features}, {"attention", r.attention}});
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "ActionEncoder", [](const Config& c) { return std::make_shared<ActionEncoderBlock>(c); },
    "STOA-VLP spatial-temporal action encoder (eq 2): M queries attend over each frame's [patches ; "
    "object tokens], then a [CLS] + temporal transformer per query. Config: " + action_encoder_keys().doc() +
        ". Inputs: patches [B,T,H*W(+1),h] (e.g. "
    "VideoEncoder layer_11), objects [B,T,K,h] (opt, TrajectoryEncoder object_tokens), object_mask "
    "[B,T,K] (opt). Outputs: actions [B,M,d], frame_features [B,M,T,h], attention [B,T,M,P]. "
    "Parameters: queries [M,h], time_embed, cls_token, blocks.<i>.*, norm, proj.");

}  // namespace kinema::models
