#include "models/video_encoder.h"

#include <algorithm>

#include "models/adapter.h"
#include "models/checkpoint.h"
#include "models/pos_embed.h"

namespace kinema::models {

VideoEncoderImpl::VideoEncoderImpl(const VideoEncoderOptions& o) : options_(o) {
  const char* op = "VideoEncoder";
  TORCH_CHECK(o.patch_size > 0 && o.image_size > 0 && o.image_size % o.patch_size == 0, op,
              ": config key 'image_size' (", o.image_size, ") must be a multiple of 'patch_size' (",
              o.patch_size, ")");
  TORCH_CHECK(o.tubelet > 0 && o.num_frames > 0 && o.num_frames % o.tubelet == 0, op,
              ": config key 'num_frames' (", o.num_frames, ") must be a multiple of 'tubelet' (",
              o.tubelet, ")");
  TORCH_CHECK(o.depth > 0, op, ": config key 'depth' must be positive");
  TORCH_CHECK(o.attention == "frame" || o.attention == "joint" || o.attention == "divided", op,
              ": config key 'attention' must be \"frame\", \"joint\" or \"divided\", got \"",
              o.attention, "\"");
  TORCH_CHECK(o.pos_interp == "bicubic" || o.pos_interp == "bilinear", op,
              ": config key 'pos_interp' must be \"bicubic\" or \"bilinear\"");
  for (int64_t k : o.return_layers)
    TORCH_CHECK(k >= 1 && k <= o.depth, op, ": config key 'return_layers' has layer ", k,
                " outside 1..", o.depth);
  const int64_t d = o.layer.dim, n = grid() * grid();
  if (o.tubelet == 1) {
    patch_conv2d_ = torch::nn::Conv2d(
        torch::nn::Conv2dOptions(o.in_chans, d, o.patch_size).stride(o.patch_size).bias(o.patch_bias));
  } else {
    patch_conv3d_ = torch::nn::Conv3d(
        torch::nn::Conv3dOptions(o.in_chans, d, {o.tubelet, o.patch_size, o.patch_size})
            .stride({o.tubelet, o.patch_size, o.patch_size})
            .bias(o.patch_bias));
  }
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  if (patch_conv2d_) {
    patch_embed->register_module("proj", patch_conv2d_);
  } else {
    patch_embed->register_module("proj", patch_conv3d_);
  }
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, d}));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, 1 + n, d}));
  time_embed_ = register_parameter("time_embed", torch::zeros({1, o.num_frames / o.tubelet, d}));
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(o.layer.layer_norm_eps)); };
  if (o.norm_pre) norm_pre_ = register_module("norm_pre", ln());
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  LayerOptions lo = o.layer;
  lo.pre_norm = true;
  lo.temporal = o.attention == "divided";
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks_.push_back(TransformerLayer(lo));
    blocks->push_back(blocks_.back());
  }
  if (o.final_norm) norm_ = register_module("norm", ln());
  if (o.proj_dim > 0) proj_ = register_parameter("proj", torch::zeros({d, o.proj_dim}));
  if (!o.grouping_layers.empty()) {
    TORCH_CHECK(o.num_groups > 0, op, ": config key 'num_groups' must be positive");
    group_token_ = register_parameter("group_token", torch::zeros({1, o.num_groups, d}));
    auto grouping = register_module("grouping", torch::nn::ModuleList());
    GroupingOptions go;
    go.dim = d;
    go.num_heads = o.layer.num_heads;
    go.mlp_ratio = o.layer.mlp_ratio;
    go.tau = o.grouping_tau;
    go.layer_norm_eps = o.layer.layer_norm_eps;
    go.act = o.layer.act;
    int64_t previous = 0;
    for (int64_t k : o.grouping_layers) {
      TORCH_CHECK(k > previous && k <= o.depth, op,
                  ": config key 'grouping_layers' must be increasing layer numbers in 1..", o.depth);
      previous = k;
      auto block = grouping_.emplace(k, GroupingBlock(go)).first->second;
      grouping->push_back(block);
    }
    group_norm_ = register_module("group_norm", ln());
  }
  init_transformer_weights(*this);
  torch::NoGradGuard no_grad;
  trunc_normal_(pos_embed_, 0.02);
  trunc_normal_(cls_token_, 0.02);
  trunc_normal_(time_embed_, 0.02);
  if (proj_.defined()) trunc_normal_(proj_, 0.02);
  if (group_token_.defined()) trunc_normal_(group_token_, 0.02);
}

at::Tensor VideoEncoderImpl::embed(const at::Tensor& video_in, int64_t& frames, int64_t& gh,
                                   int64_t& gw) {
  const auto& o = options_;
  at::Tensor video = video_in.dim() == 4 ? video_in.unsqueeze(1) : video_in;
  TORCH_CHECK(video.dim() == 5 && video.size(2) == o.in_chans, "VideoEncoder: input #1 (video) must be [B, T, ",
              o.in_chans, ", H, W] or [B, ", o.in_chans, ", H, W], got ", video_in.sizes());
  const int64_t b = video.size(0), t = video.size(1);
  TORCH_CHECK(video.size(3) % o.patch_size == 0 && video.size(4) % o.patch_size == 0,
              "VideoEncoder: frame size ", video.size(3), "x", video.size(4),
              " is not a multiple of patch_size ", o.patch_size);
  TORCH_CHECK(t % o.tubelet == 0, "VideoEncoder: ", t, " frames are not a multiple of tubelet ",
              o.tubelet);
  at::Tensor x;  // [B, T', N, D]
  if (patch_conv2d_) {
    x = patch_conv2d_(video.flatten(0, 1));  // [B*T, D, gh, gw]
    gh = x.size(2);
    gw = x.size(3);
    frames = t;
    x = x.flatten(2).transpose(1, 2).reshape({b, t, gh * gw, o.layer.dim});
  } else {
    x = patch_conv3d_(video.transpose(1, 2));  // [B, D, T', gh, gw]
    frames = x.size(2);
    gh = x.size(3);
    gw = x.size(4);
    x = x.flatten(3).permute({0, 2, 3, 1});
  }
  at::Tensor pos = pos_embed_;
  if (gh != grid() || gw != grid())
    pos = resize_spatial_pos_embed(pos_embed_, gh, gw, 1, o.pos_interp, grid(), grid());
  at::Tensor time = time_embed_;
  if (frames != time_embed_.size(1)) time = resize_temporal_pos_embed(time_embed_, frames, "linear");
  time = time.unsqueeze(2);  // [1, T', 1, D]
  x = x + pos.narrow(1, 1, gh * gw).unsqueeze(1) + time;
  // Every frame gets its own [CLS], told apart by the time embedding.
  at::Tensor cls = (cls_token_ + pos.narrow(1, 0, 1)).unsqueeze(1) + time;  // [1, T', 1, D]
  x = at::cat({cls.expand({b, frames, 1, o.layer.dim}), x}, 2);
  if (norm_pre_) x = norm_pre_(x);
  return x;
}

at::Tensor VideoEncoderImpl::run_layer(size_t index, const at::Tensor& x, int64_t batch,
                                       int64_t frames) {
  TransformerLayerImpl* layer = blocks_[index].get();
  const std::string mode = options_.attention;
  auto fn = [layer, mode, batch, frames](const at::Tensor& in) {
    const int64_t s = in.size(2), d = in.size(3);
    if (mode == "joint") return layer->forward(in.reshape({batch, frames * s, d})).view(in.sizes());
    const int64_t f = mode == "divided" ? frames : 0;
    return layer->forward(in.reshape({batch * frames, s, d}), {}, f).view(in.sizes());
  };
  if (options_.grad_checkpoint && is_training()) return checkpoint(fn, x);
  return fn(x);
}

VideoEncoderOutput VideoEncoderImpl::forward(const at::Tensor& video, const at::Tensor& patch_mask) {
  int64_t frames = 0, gh = 0, gw = 0;
  at::Tensor x = embed(video, frames, gh, gw);  // [B, T', 1+N, D]
  const int64_t b = x.size(0), n = gh * gw, d = options_.layer.dim;
  VideoEncoderOutput out;
  at::Tensor groups;
  if (group_token_.defined()) groups = group_token_.expand({b, options_.num_groups, d});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = run_layer(i, x, b, frames);
    const auto layer_number = static_cast<int64_t>(i) + 1;
    if (std::find(options_.return_layers.begin(), options_.return_layers.end(), layer_number) !=
        options_.return_layers.end())
      out.layers[layer_number] = x;
    auto g = grouping_.find(layer_number);
    if (g != grouping_.end()) {
      GroupingOutput r = g->second->forward(groups, x.narrow(2, 1, n).reshape({b, frames * n, d}));
      groups = r.groups;
      out.assignments.push_back(r.assignment);
    }
  }
  out.tokens = norm_ ? norm_(x) : x;
  out.cls = out.tokens.select(2, 0);
  out.patches = out.tokens.narrow(2, 1, n);
  out.pooled = out.cls.mean(1);
  if (proj_.defined()) {
    out.cls_proj = at::matmul(out.cls, proj_);
    out.pooled_proj = at::matmul(out.pooled, proj_);
  }
  if (groups.defined()) out.groups = group_norm_(groups);
  if (patch_mask.defined()) {
    TORCH_CHECK(patch_mask.scalar_type() == at::kBool && patch_mask.dim() == 3 &&
                    patch_mask.size(0) == b && patch_mask.size(1) == frames && patch_mask.size(2) == n,
                "VideoEncoder: input #2 (patch_mask) must be bool [", b, ", ", frames, ", ", n,
                "], got ", patch_mask.scalar_type(), " ", patch_mask.sizes());
    at::Tensor keep = patch_mask.unsqueeze(-1).to(out.patches.scalar_type());
    // A frame with every patch masked pools to zeros rather than NaN.
    out.masked_mean = (out.patches * keep).sum({1, 2}) / keep.sum({1, 2}).clamp_min(1.0);
  }
  return out;
}

namespace {

using VO = VideoEncoderOptions;
const ConfigKeys<VO>& video_encoder_keys() {
  static const ConfigKeys<VO> keys = with_stack_keys(ConfigKeys<VO>()
                                                         .key("image_size", &VO::image_size)
                                                         .key("patch_size", &VO::patch_size)
                                                         .key("in_chans", &VO::in_chans)
                                                         .key("num_frames", &VO::num_frames)
                                                         .key("tubelet", &VO::tubelet))
                                         .key("attention", &VO::attention, "'frame'|'joint'|'divided'")
                                         .key("patch_bias", &VO::patch_bias)
                                         .key("norm_pre", &VO::norm_pre)
                                         .key("final_norm", &VO::final_norm)
                                         .key("proj_dim", &VO::proj_dim)
                                         .key("return_layers", &VO::return_layers, "1-based")
                                         .key("pos_interp", &VO::pos_interp, "'bicubic'|'bilinear'")
                                         .key("grouping_layers", &VO::grouping_layers, "1-based")
                                         .key("num_groups", &VO::num_groups)
                                         .key("grouping_tau", &VO::grouping_tau);
  return keys;
}

}  // namespace

VideoEncoderOptions video_encoder_options_from_config(const Config& c) { return video_encoder_keys().read(c); }

namespace {

class VideoEncoderBlock : public TypedBlock<VideoEncoder> {
 public:
  explicit VideoEncoderBlock(const Config& c)
      : TypedBlock(VideoEncoder(video_encoder_options_from_config(c))) {}

  c10::IValue forward(std::vector<c10::IValue> inputs) override {
    at::Tensor video = input_tensor(inputs, 0, "VideoEncoder", "video");
    at::Tensor mask = optional_input(inputs, 1, "VideoEncoder", "patch_mask");
    VideoEncoderOutput r = impl_->forward(video, mask);
    Outputs out = make_outputs({{"tokens", r.tokens}, {"cls", r.cls}, {"patches", r.patches},
                                {"pooled", r.pooled}});
    if (r.cls_proj.defined()) {
      out.insert("cls_proj", r.cls_proj);
      out.insert("pooled_proj", r.pooled_proj);
    }
    if (r.masked_mean.defined()) out.insert("masked_mean", r.masked_mean);
    if (r.groups.defined()) {
      out.insert("groups", r.groups);
      out.insert("assignment", r.assignments.back());
    }
    for (const auto& kv : r.layers) out.insert("layer_" + std::to_string(kv.first), kv.second);
    return out;
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "VideoEncoder", [](const Config& c) { return std::make_shared<VideoEncoderBlock>(c); },
    "ViT video encoder (per-frame [CLS]; frame/joint/divided attention; optional S-ViLM grouping). "
    "Config: " + video_encoder_keys().doc() + ". "
    "Inputs: video [B,T,C,H,W] (or [B,C,H,W]), patch_mask [B,T',N] bool (optional). "
    "Outputs: tokens [B,T',1+N,D], cls [B,T',D], patches [B,T',N,D], pooled [B,D]; cls_proj/pooled_proj "
    "(proj_dim>0); masked_mean [B,D] (patch_mask); groups [B,M,D] + assignment (grouping); "
    "layer_<k> [B,T',1+N,D] for k in return_layers. "
    "Parameters: patch_embed.proj, cls_token, pos_embed, time_embed, norm_pre, blocks.<i>.{norm1,attn.qkv,"
    "attn.proj,norm2,mlp.fc1,mlp.fc2,temporal_*}, norm, proj, group_token, grouping.<j>.*, group_norm.");

}  // namespace kinema::models
