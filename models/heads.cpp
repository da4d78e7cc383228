// Small heads shared by the four papers: projection into the shared space, a
// learnable temperature, the VTM classifier and the MLM/PLM vocabulary head
// whose decoder weight is tied to the text encoder's word embeddings.
#include "models/heads.h"

#include <cmath>

#include "models/adapter.h"

namespace kinema::models {

ProjectionImpl::ProjectionImpl(int64_t in_dim, int64_t out_dim, bool bias, bool normalize)
    : normalize_(normalize) {
  TORCH_CHECK(in_dim > 0 && out_dim > 0, "Projection: config keys 'in_dim' and 'out_dim' must be positive");
  proj_ = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(in_dim, out_dim).bias(bias)));
  init_transformer_weights(*this);
}

at::Tensor ProjectionImpl::forward(const at::Tensor& x) {
  at::Tensor y = proj_(x);
  if (normalize_) y = torch::nn::functional::normalize(y, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  return y;
}

TemperatureImpl::TemperatureImpl(double init, double min, double max) : min_(min), max_(max) {
  TORCH_CHECK(min > 0 && min <= init && init <= max, "Temperature: need 0 < min <= init <= max, got init=",
              init, " min=", min, " max=", max);
  // CLIP's parameterisation: logit_scale = log(1 / tau).
  logit_scale_ = register_parameter("logit_scale", torch::full({}, std::log(1.0 / init)));
}

at::Tensor TemperatureImpl::forward() {
  return at::exp(-logit_scale_).clamp(min_, max_);
}

VTMHeadImpl::VTMHeadImpl(int64_t dim) {
  fc_ = register_module("fc", torch::nn::Linear(dim, 2));
  init_transformer_weights(*this);
}

at::Tensor VTMHeadImpl::forward(const at::Tensor& x) { return fc_(x); }

MLMHeadImpl::MLMHeadImpl(int64_t dim, int64_t vocab_size, std::string act, double eps)
    : act_(std::move(act)) {
  check_activation(act_, "MLMHead");
  dense_ = register_module("dense", torch::nn::Linear(dim, dim));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
  bias_ = register_parameter("bias", torch::zeros({vocab_size}));
  init_transformer_weights(*this);
}

at::Tensor MLMHeadImpl::forward(const at::Tensor& hidden, const at::Tensor& word_embeddings) {
  TORCH_CHECK(word_embeddings.dim() == 2 && word_embeddings.size(0) == bias_.size(0) &&
                  word_embeddings.size(1) == hidden.size(-1),
              "MLMHead: input #2 (word_embeddings) must be [vocab_size=", bias_.size(0), ", ",
              hidden.size(-1), "], got ", word_embeddings.sizes());
  at::Tensor h = norm_(activate(dense_(hidden), act_));
  return at::linear(h, word_embeddings, bias_);
}

namespace {

class ProjectionBlock : public TypedBlock<Projection> {
 public:
  explicit ProjectionBlock(const Config& c)
      : TypedBlock(Projection(c.require_int("in_dim"), c.require_int("out_dim"), c.get_bool("bias", true),
                              c.get_bool("normalize", false))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return impl_->forward(input_tensor(in, 0, "Projection", "x"));
  }
};

class TemperatureBlock : public TypedBlock<Temperature> {
 public:
  explicit TemperatureBlock(const Config& c)
      : TypedBlock(Temperature(c.get_double("init", 0.07), c.get_double("min", 0.01), c.get_double("max", 1.0))) {
    if (!c.get_bool("learnable", true)) impl_->parameters()[0].set_requires_grad(false);
  }
  c10::IValue forward(std::vector<c10::IValue>) override { return impl_->forward(); }
};

class VTMHeadBlock : public TypedBlock<VTMHead> {
 public:
  explicit VTMHeadBlock(const Config& c) : TypedBlock(VTMHead(c.get_int("embed_dim", 512))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return impl_->forward(input_tensor(in, 0, "VTMHead", "x"));
  }
};

class MLMHeadBlock : public TypedBlock<MLMHead> {
 public:
  explicit MLMHeadBlock(const Config& c)
      : TypedBlock(MLMHead(c.get_int("embed_dim", 512), c.require_int("vocab_size"), c.get_string("act", "gelu"),
                           c.get_double("layer_norm_eps", 1e-5))) {}
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return impl_->forward(input_tensor(in, 0, "MLMHead", "hidden"),
                          input_tensor(in, 1, "MLMHead", "word_embeddings"));
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "Projection", [](const Config& c) { return std::make_shared<ProjectionBlock>(c); },
    "Linear projection into the shared space. Config: in_dim, out_dim (required), bias=true, "
    "normalize=false (L2-normalise the output). Input: x [..., in_dim]. Output: [..., out_dim]. "
    "Parameters: proj.weight [out,in], proj.bias.");
KINEMA_REGISTER_BLOCK(
    "Temperature", [](const Config& c) { return std::make_shared<TemperatureBlock>(c); },
    "Learnable contrastive temperature, CLIP-parameterised (logit_scale = log(1/tau)), clamped to "
    "[min, max]. Config: init=0.07 min=0.01 max=1 learnable=true. No inputs. Output: tau (scalar "
    "tensor). Parameter: logit_scale.");
KINEMA_REGISTER_BLOCK(
    "VTMHead", [](const Config& c) { return std::make_shared<VTMHeadBlock>(c); },
    "Video-text matching head: 2-way Linear on the fused video [CLS]. Config: embed_dim=512. "
    "Input: x [B, D]. Output: logits [B, 2]. Parameters: fc.weight, fc.bias.");
KINEMA_REGISTER_BLOCK(
    "MLMHead", [](const Config& c) { return std::make_shared<MLMHeadBlock>(c); },
    "MLM/PLM vocabulary head (BERT-style transform, decoder tied to the word embeddings, which are "
    "passed in). Config: embed_dim=512, vocab_size (required), act='gelu', layer_norm_eps=1e-5. "
    "Inputs: hidden [B, L, D], word_embeddings [V, D] (e.g. the text encoder's word_embed.weight). "
    "Output: logits [B, L, V]. Parameters: dense, norm, bias [V].");

}  // namespace kinema::models
