#include "models/fusion_encoder.h"

#include "models/adapter.h"
#include "models/checkpoint.h"

namespace kinema::models {

FusionEncoderOptions::FusionEncoderOptions() {
  layer.dim = 512;
  layer.num_heads = 8;
  layer.act = "quick_gelu";
  layer.layer_norm_eps = 1e-5;
}

at::Tensor fusion_attention_mask(const at::Tensor& context_valid, const at::Tensor& text_valid,
                                 const at::Tensor& prefix_len) {
  const char* op = "kinema::models::fusion_attention_mask";
  TORCH_CHECK(context_valid.dim() == 2 && context_valid.scalar_type() == at::kBool, op,
              ": argument 'context_valid' must be bool [B, P]");
  TORCH_CHECK(text_valid.dim() == 2 && text_valid.scalar_type() == at::kBool &&
                  text_valid.size(0) == context_valid.size(0),
              op, ": argument 'text_valid' must be bool [B, L] with the batch size of context_valid");
  const int64_t b = context_valid.size(0), p = context_valid.size(1), l = text_valid.size(1);
  const int64_t s = p + l;
  at::Tensor key_valid = at::cat({context_valid, text_valid}, 1);  // [B, S]
  at::Tensor allowed = key_valid.unsqueeze(1).expand({b, s, s});
  if (!prefix_len.defined()) return allowed.contiguous();
  TORCH_CHECK(prefix_len.dim() == 1 && prefix_len.size(0) == b &&
                  (prefix_len.scalar_type() == at::kLong || prefix_len.scalar_type() == at::kInt),
              op, ": argument 'prefix_len' must be an integer [B] tensor, got ", prefix_len.sizes());
  // Text position of every token; context tokens get negative positions so they
  // behave as part of the prefix.
  at::Tensor pos = at::arange(s, key_valid.options().dtype(at::kLong)) - p;   // [S]
  at::Tensor split = prefix_len.to(at::kLong).view({b, 1});                   // [B, 1]
  at::Tensor key_in_prefix = pos.unsqueeze(0).lt(split);                       // [B, S]
  at::Tensor query_in_suffix = pos.unsqueeze(0).ge(split);                     // [B, S]
  at::Tensor causal = pos.unsqueeze(0).le(pos.unsqueeze(1));                   // [S_q, S_k]
  at::Tensor structure =
      key_in_prefix.unsqueeze(1).logical_or(query_in_suffix.unsqueeze(2).logical_and(causal.unsqueeze(0)));
  return allowed.logical_and(structure);
}

FusionEncoderImpl::FusionEncoderImpl(const FusionEncoderOptions& o) : options_(o) {
  TORCH_CHECK(o.depth > 0, "FusionEncoder: config key 'depth' must be positive");
  const int64_t d = o.layer.dim;
  auto input_proj = [&](const char* name, int64_t in) {
    return in > 0 && in != d ? register_module(name, torch::nn::Linear(in, d)) : torch::nn::Linear(nullptr);
  };
  video_proj_ = input_proj("video_proj", o.video_dim);
  trajectory_proj_ = input_proj("trajectory_proj", o.trajectory_dim);
  action_proj_ = input_proj("action_proj", o.action_dim);
  text_proj_ = input_proj("text_proj", o.text_dim);
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks_.push_back(TransformerLayer(o.layer));
    blocks->push_back(blocks_.back());
  }
  if (o.final_norm)
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(o.layer.layer_norm_eps)));
  init_transformer_weights(*this);
}

static at::Tensor check_segment(const at::Tensor& t, int64_t batch, const char* name, int64_t input) {
  TORCH_CHECK(t.dim() == 3 && t.size(0) == batch, "FusionEncoder: input #", input, " (", name,
              ") must be [B, n, dim] with B = ", batch, ", got ", t.sizes());
  return t;
}

FusionEncoderOutput FusionEncoderImpl::forward(const at::Tensor& video_in, const at::Tensor& text_in,
                                               const at::Tensor& text_mask,
                                               const at::Tensor& trajectories_in,
                                               const at::Tensor& actions_in,
                                               const at::Tensor& prefix_len,
                                               const at::Tensor& trajectory_mask) {
  TORCH_CHECK(video_in.dim() == 3, "FusionEncoder: input #1 (video) must be [B, T, dim], got ",
              video_in.sizes());
  const int64_t b = video_in.size(0), d = options_.layer.dim;
  auto project = [&](const at::Tensor& t, torch::nn::Linear& proj, const char* name, int64_t input,
                     int64_t width) {
    check_segment(t, b, name, input);
    const int64_t expected = width > 0 ? width : d;
    TORCH_CHECK(t.size(2) == expected, "FusionEncoder: input #", input, " (", name, ") has width ",
                t.size(2), " but config key '", name, "_dim' expects ", expected);
    return proj ? proj(t) : t;
  };
  at::Tensor video = project(video_in, video_proj_, "video", 1, options_.video_dim);
  if (options_.append_video_cls) video = at::cat({video, video.mean(1, true)}, 1);
  at::Tensor text = project(text_in, text_proj_, "text", 2, options_.text_dim);
  const auto bool_opts = video.options().dtype(at::kBool);
  std::vector<at::Tensor> segments{video};
  std::vector<at::Tensor> valid{at::ones({b, video.size(1)}, bool_opts)};
  at::Tensor traj, act;
  if (trajectories_in.defined()) {
    traj = project(trajectories_in, trajectory_proj_, "trajectory", 4, options_.trajectory_dim);
    segments.push_back(traj);
    if (trajectory_mask.defined()) {
      TORCH_CHECK(trajectory_mask.scalar_type() == at::kBool &&
                      trajectory_mask.sizes() == at::IntArrayRef({b, traj.size(1)}),
                  "FusionEncoder: input #7 (trajectory_mask) must be bool [B, N]");
      valid.push_back(trajectory_mask);
    } else {
      valid.push_back(at::ones({b, traj.size(1)}, bool_opts));
    }
  }
  if (actions_in.defined()) {
    act = project(actions_in, action_proj_, "action", 5, options_.action_dim);
    segments.push_back(act);
    valid.push_back(at::ones({b, act.size(1)}, bool_opts));
  }
  at::Tensor text_valid = at::ones({b, text.size(1)}, bool_opts);
  if (text_mask.defined()) {
    TORCH_CHECK(text_mask.dim() == 2 && text_mask.size(0) == b && text_mask.size(1) == text.size(1),
                "FusionEncoder: input #3 (text_mask) must be [B, L] like text, got ", text_mask.sizes());
    text_valid = text_mask.scalar_type() == at::kBool ? text_mask : text_mask.ne(0);
  }
  const int64_t context = [&] {
    int64_t n = 0;
    for (const auto& s : segments) n += s.size(1);
    return n;
  }();
  segments.push_back(text);
  at::Tensor x = at::cat(segments, 1);
  at::Tensor allowed = fusion_attention_mask(at::cat(valid, 1), text_valid, prefix_len);
  at::Tensor mask = additive_attention_mask(allowed, x.scalar_type());
  for (auto& holder : blocks_) {
    TransformerLayerImpl* layer = holder.get();
    auto fn = [layer, mask](const at::Tensor& in) { return layer->forward(in, mask); };
    x = options_.grad_checkpoint && is_training() ? checkpoint(fn, x) : fn(x);
  }
  if (norm_) x = norm_(x);
  FusionEncoderOutput out;
  out.tokens = x;
  out.attention = allowed;
  int64_t offset = 0;
  out.video = x.narrow(1, offset, video.size(1));
  if (options_.append_video_cls) out.video_cls = x.select(1, video.size(1) - 1);
  offset += video.size(1);
  if (traj.defined()) {
    out.trajectories = x.narrow(1, offset, traj.size(1));
    offset += traj.size(1);
  }
  if (act.defined()) {
    out.actions = x.narrow(1, offset, act.size(1));
    offset += act.size(1);
  }
  TORCH_INTERNAL_ASSERT(offset == context);
  out.text = x.narrow(1, offset, text.size(1));
  return out;
}

namespace {

using FO = FusionEncoderOptions;
const ConfigKeys<FO>& fusion_encoder_keys() {
  static const ConfigKeys<FO> keys =
      with_stack_keys(ConfigKeys<FO>())
          .key_at("pre_norm", [](FO& o) -> bool& { return o.layer.pre_norm; })
          .key("final_norm", &FO::final_norm)
          .key("append_video_cls", &FO::append_video_cls)
          .key("video_dim", &FO::video_dim, "0 = embed_dim")
          .key("trajectory_dim", &FO::trajectory_dim, "0 = embed_dim")
          .key("action_dim", &FO::action_dim, "0 = embed_dim")
          .key("text_dim", &FO::text_dim, "0 = embed_dim");
  return keys;
}

}  // namespace

FusionEncoderOptions fusion_encoder_options_from_config(const Config& c) { return fusion_encoder_keys().read(c); }

namespace {

class FusionEncoderBlock : public TypedBlock<FusionEncoder> {
 public:
  explicit FusionEncoderBlock(const Config& c) : TypedBlock(FusionEncoder(fusion_encoder_options_from_config(c))) {}

  c10::IValue forward(std::vector<c10::IValue> in) override {
    const char* n = "FusionEncoder";
    FusionEncoderOutput r = impl_->forward(
        input_tensor(in, 0, n, "video"), input_tensor(in, 1, n, "text"),
        optional_input(in, 2, n, "text_mask"), optional_input(in, 3, n, "trajectories"),
        optional_input(in, 4, n, "actions"), optional_input(in, 5, n, "prefix_len"),
        optional_input(in, 6, n, "trajectory_mask"));
    Outputs out = make_outputs({{"tokens", r.tokens}, {"video", r.video}, {"text", r.text},
                                {"attention", r.attention}});
    if (r.video_cls.defined()) out.insert("video_cls", r.video_cls);
    if (r.trajectories.defined()) out.insert("trajectories", r.trajectories);
    if (r.actions.defined()) out.insert("actions", r.actions);
    return out;
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "FusionEncoder", [](const Config& c) { return std::make_shared<FusionEncoderBlock>(c); },
    "STOA-VLP modality-agnostic fusion encoder over [video frames ; v_CLS ; trajectories ; actions ; "
    "text]. Config: " + fusion_encoder_keys().doc() + ". "
    "Inputs: video [B,T,Dv], text [B,L,Dt], text_mask [B,L] (opt), trajectories [B,N,Do] (opt), "
    "actions [B,M,Da] (opt), prefix_len [B] int64 (opt: PLM prefix-causal mask), trajectory_mask "
    "[B,N] (opt). Outputs: tokens, video, video_cls [B,D], trajectories, actions, text [B,L,D], "
    "attention [B,S,S] bool. Parameters: blocks.<i>.*, norm, <input>_proj.");

}  // namespace kinema::models
