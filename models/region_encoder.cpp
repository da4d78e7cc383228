// DemoVLP region encoder: a ViT over pre-extracted region features, each plus a
// Linear embedding of its 7-d location [x1, y1, x2, y2, w, h, w*h] and the
// learned temporal position embedding of its frame, with a leading [CLS].
//
// Parameter names: feat_proj (feat_dim != embed_dim), loc_embed, time_embed
// [1,T,D], cls_token [1,1,D], blocks.<i>.*, norm (timm ViT layout).
#include "models/region_encoder.h"

#include "models/adapter.h"

namespace kinema::models {

RegionEncoderImpl::RegionEncoderImpl(const RegionEncoderOptions& o) : options_(o) {
  TORCH_CHECK(o.feat_dim > 0 && o.num_frames > 0 && o.depth > 0,
              "RegionEncoder: config keys 'feat_dim', 'num_frames', 'depth' must be positive");
  const int64_t d = o.layer.dim;
  if (o.feat_dim != d) feat_proj_ = register_module("feat_proj", torch::nn::Linear(o.feat_dim, d));
  loc_embed_ = register_module("loc_embed", torch::nn::Linear(7, d));
  time_embed_ = register_parameter("time_embed", torch::zeros({1, o.num_frames, d}));
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, d}));
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  LayerOptions lo = o.layer;
  lo.pre_norm = true;
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks_.push_back(TransformerLayer(lo));
    blocks->push_back(blocks_.back());
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(o.layer.layer_norm_eps)));
  init_transformer_weights(*this);
  trunc_normal_(time_embed_, 0.02);
  trunc_normal_(cls_token_, 0.02);
}

RegionEncoderOutput RegionEncoderImpl::forward(const at::Tensor& features, const at::Tensor& locations,
                                               const at::Tensor& frame_index, const at::Tensor& mask) {
  const char* op = "RegionEncoder";
  TORCH_CHECK(features.dim() == 3 && features.size(2) == options_.feat_dim, op,
              ": input #1 (features) must be [B, N, ", options_.feat_dim, "], got ", features.sizes());
  const int64_t b = features.size(0), n = features.size(1), d = options_.layer.dim;
  TORCH_CHECK(locations.dim() == 3 && locations.size(0) == b && locations.size(1) == n && locations.size(2) == 7,
              op, ": input #2 (locations) must be [B, N, 7], got ", locations.sizes());
  TORCH_CHECK(frame_index.dim() == 2 && frame_index.size(0) == b && frame_index.size(1) == n &&
                  frame_index.scalar_type() == at::kLong,
              op, ": input #3 (frame_index) must be int64 [B, N], got ", frame_index.scalar_type(), " ",
              frame_index.sizes());
  if (frame_index.numel() > 0) {
    TORCH_CHECK(frame_index.min().item<int64_t>() >= 0 && frame_index.max().item<int64_t>() < options_.num_frames,
                op, ": input #3 (frame_index) must lie in [0, num_frames = ", options_.num_frames, ")");
  }
  at::Tensor x = feat_proj_ ? feat_proj_(features) : features;
  x = x + loc_embed_(locations.to(x.scalar_type())) + time_embed_[0].index_select(0, frame_index.reshape(-1)).view({b, n, d});
  x = at::cat({cls_token_.expand({b, 1, d}), x}, 1);
  at::Tensor add_mask;
  if (mask.defined()) {
    TORCH_CHECK(mask.scalar_type() == at::kBool && mask.dim() == 2 && mask.size(0) == b && mask.size(1) == n, op,
                ": input #4 (mask) must be bool [B, N], got ", mask.sizes());
    add_mask = additive_attention_mask(at::cat({at::ones({b, 1}, mask.options()), mask}, 1), x.scalar_type());
  }
  x = run_layers(blocks_, x, add_mask, options_.grad_checkpoint && is_training());
  x = norm_(x);
  return {x, x.select(1, 0), x.narrow(1, 1, n)};
}

namespace {

using RO = RegionEncoderOptions;
const ConfigKeys<RO>& region_encoder_keys() {
  static const ConfigKeys<RO> keys =
      with_stack_keys(ConfigKeys<RO>().key("feat_dim", &RO::feat_dim).key("num_frames", &RO::num_frames));
  return keys;
}

class RegionEncoderBlock : public TypedBlock<RegionEncoder> {
 public:
  explicit RegionEncoderBlock(const Config& c) : TypedBlock(RegionEncoder(region_encoder_keys().read(c))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    const char* n = "RegionEncoder";
    RegionEncoderOutput r = impl_->forward(input_tensor(in, 0, n, "features"), input_tensor(in, 1, n, "locations"),
                                           input_tensor(in, 2, n, "frame_index"), optional_input(in, 3, n, "mask"));
    return make_outputs({{"tokens", r.tokens}, {"cls", r.cls}, {"regions", r.regions}});
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "RegionEncoder", [](const Config& c) { return std::make_shared<RegionEncoderBlock>(c); },
    "DemoVLP region-feature video encoder. Config: " + region_encoder_keys().doc() + ". "
    "Inputs: features [B,N,feat_dim], locations [B,N,7] (x1,y1,x2,y2,w,h,w*h normalised), frame_index "
    "[B,N] int64, mask [B,N] bool (opt, true = region). Outputs: tokens [B,1+N,D], cls [B,D], regions "
    "[B,N,D]. Parameters: feat_proj, loc_embed, time_embed, cls_token, blocks.<i>.*, norm.");

}  // namespace kinema::models
