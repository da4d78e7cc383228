#include "models/layers.h"

#include "models/checkpoint.h"
#include "ops/torch_compat.h"

#include <cmath>
#include <limits>

namespace kinema::models {

namespace F = torch::nn::functional;

void check_activation(const std::string& act, const char* owner) {
  TORCH_CHECK(act == "gelu" || act == "gelu_tanh" || act == "quick_gelu" || act == "relu", owner,
              ": config key 'act' must be \"gelu\", \"gelu_tanh\", \"quick_gelu\" or \"relu\", got \"",
              act, "\"");
}

at::Tensor activate(const at::Tensor& x, const std::string& act) {
  if (act == "gelu") return at::gelu(x);
  if (act == "quick_gelu") return x * at::sigmoid(x * 1.702);
  if (act == "gelu_tanh") return at::gelu(x, "tanh");
  if (act == "relu") return at::relu(x);
  TORCH_CHECK(false, "kinema::models::activate: unknown activation '", act, "'");
}

at::Tensor additive_attention_mask(const at::Tensor& allowed, at::ScalarType dtype) {
  TORCH_CHECK(allowed.scalar_type() == at::kBool,
              "attention mask must be a bool tensor (true = may attend), got ",
              allowed.scalar_type());
  // A large finite value keeps fully masked rows finite (uniform) instead of NaN.
  const double blocked = dtype == at::kHalf ? compat::blocked_attention_mask : -1e30;
  at::Tensor out = at::zeros(allowed.sizes(), allowed.options().dtype(dtype));
  out.masked_fill_(allowed.logical_not(), blocked);
  switch (allowed.dim()) {
    case 2:  // [N, S_k] key padding -> [N, 1, 1, S_k]
      return out.unsqueeze(1).unsqueeze(1);
    case 3:  // [N, S_q, S_k] -> [N, 1, S_q, S_k]
      return out.unsqueeze(1);
    default:
      TORCH_CHECK(false, "attention mask must be [N, S_k] or [N, S_q, S_k], got ", allowed.sizes());
  }
}

// ---------------------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(const AttentionOptions& options) : options_(options) {
  TORCH_CHECK(options.num_heads > 0 && options.dim % options.num_heads == 0,
              "attention: embed_dim (", options.dim, ") must be divisible by num_heads (",
              options.num_heads, ")");
  const int64_t d = options.dim;
  if (options.fused_qkv) {
    qkv_ = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(d, 3 * d).bias(options.qkv_bias)));
  } else {
    q_ = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(options.qkv_bias)));
    k_ = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(options.qkv_bias)));
    v_ = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(options.qkv_bias)));
  }
  proj_ = register_module("proj", torch::nn::Linear(d, d));
}

at::Tensor SelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options_.dim, "attention: input must be [N, S, ",
              options_.dim, "], got ", x.sizes());
  const int64_t n = x.size(0), s = x.size(1), h = options_.num_heads, hd = options_.dim / h;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor q, k, v;
  if (options_.fused_qkv) {
    // One GEMM for q, k and v; [N, S, 3, H, hd] -> three [N, H, S, hd] views.
    at::Tensor qkv = qkv_(x).view({n, s, 3, h, hd}).permute({2, 0, 3, 1, 4});
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else {
    q = q_(x).view({n, s, h, hd}).transpose(1, 2);
    k = k_(x).view({n, s, h, hd}).transpose(1, 2);
    v = v_(x).view({n, s, h, hd}).transpose(1, 2);
  }
  const double dropout = is_training() ? options_.attn_dropout : 0.0;
  at::Tensor out = compat::attention(q, k, v, mask, dropout, scale)
                       .transpose(1, 2)
                       .reshape({n, s, options_.dim});
  out = proj_(out);
  if (options_.proj_dropout > 0.0 && is_training()) out = at::dropout(out, options_.proj_dropout, true);
  return out;
}

// ---------------------------------------------------------------------------

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t hidden, std::string act, double dropout)
    : act_(std::move(act)), dropout_(dropout) {
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  at::Tensor y = activate(fc1_(x), act_);
  if (dropout_ > 0.0 && is_training()) y = at::dropout(y, dropout_, true);
  y = fc2_(y);
  if (dropout_ > 0.0 && is_training()) y = at::dropout(y, dropout_, true);
  return y;
}

// ---------------------------------------------------------------------------

TransformerLayerImpl::TransformerLayerImpl(const LayerOptions& o) : options_(o) {
  check_activation(o.act, "transformer layer");
  AttentionOptions a;
  a.dim = o.dim;
  a.num_heads = o.num_heads;
  a.fused_qkv = o.fused_qkv;
  a.qkv_bias = o.qkv_bias;
  a.attn_dropout = o.attn_dropout;
  a.proj_dropout = o.dropout;
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.layer_norm_eps)); };
  if (o.temporal) {
    // TimeSformer: the temporal branch is added through temporal_fc, which
    // starts at zero so an image-pretrained layer is unchanged at init.
    temporal_norm1_ = register_module("temporal_norm1", ln());
    temporal_attn_ = register_module("temporal_attn", SelfAttention(a));
    temporal_fc_ = register_module("temporal_fc", torch::nn::Linear(o.dim, o.dim));
  }
  norm1_ = register_module("norm1", ln());
  attn_ = register_module("attn", SelfAttention(a));
  norm2_ = register_module("norm2", ln());
  const auto hidden = static_cast<int64_t>(std::llround(static_cast<double>(o.dim) * o.mlp_ratio));
  mlp_ = register_module("mlp", FeedForward(o.dim, hidden, o.act, o.dropout));
  if (o.temporal) {
    torch::NoGradGuard no_grad;
    temporal_fc_->weight.zero_();
    temporal_fc_->bias.zero_();
  }
}

at::Tensor TransformerLayerImpl::temporal_forward(const at::Tensor& x, int64_t frames) {
  const int64_t bt = x.size(0), s = x.size(1), d = x.size(2);
  TORCH_CHECK(frames > 0 && bt % frames == 0, "divided attention: ", bt,
              " sequences are not a multiple of ", frames, " frames");
  const int64_t b = bt / frames;
  // [B, T, S, D] -> [B*S, T, D]: each spatial position attends over time.
  at::Tensor xt = x.view({b, frames, s, d}).transpose(1, 2).reshape({b * s, frames, d});
  at::Tensor r = temporal_fc_(temporal_attn_(temporal_norm1_(xt)));
  return x + r.view({b, s, frames, d}).transpose(1, 2).reshape({bt, s, d});
}

at::Tensor TransformerLayerImpl::forward(const at::Tensor& x_in, const at::Tensor& mask,
                                         int64_t frames) {
  at::Tensor x = x_in;
  if (options_.temporal) {
    TORCH_CHECK(options_.pre_norm, "divided attention needs pre_norm layers");
    x = temporal_forward(x, frames);
  }
  if (options_.pre_norm) {
    x = x + attn_(norm1_(x), mask);
    return x + mlp_(norm2_(x));
  }
  x = norm1_(x + attn_(x, mask));
  return norm2_(x + mlp_(x));
}

at::Tensor run_layers(const std::vector<TransformerLayer>& layers, at::Tensor x,
                      const at::Tensor& mask, bool checkpointed) {
  for (const auto& holder : layers) {
    TransformerLayerImpl* layer = holder.ptr().get();
    auto fn = [layer, mask](const at::Tensor& in) { return layer->forward(in, mask); };
    x = checkpointed ? checkpoint(fn, x) : fn(x);
  }
  return x;
}

const ConfigKeys<LayerOptions>& layer_keys() {
  static const ConfigKeys<LayerOptions> keys =
      ConfigKeys<LayerOptions>()
          .key("embed_dim", &LayerOptions::dim)
          .key("num_heads", &LayerOptions::num_heads)
          .key("mlp_ratio", &LayerOptions::mlp_ratio)
          .key("act", &LayerOptions::act, "'gelu'|'quick_gelu'")
          .custom(
              "qkv",
              [](const Config& c, const char* name, LayerOptions& o) {
                const std::string qkv = c.get_string(name, o.fused_qkv ? "fused" : "separate");
                TORCH_CHECK(qkv == "fused" || qkv == "separate",
                            "config key 'qkv' must be \"fused\" or \"separate\", got \"", qkv, "\"");
                o.fused_qkv = qkv == "fused";
              },
              [](const LayerOptions& o) { return std::string(o.fused_qkv ? "'fused'" : "'separate'"); },
              "'fused'|'separate'")
          .key("qkv_bias", &LayerOptions::qkv_bias)
          .key("layer_norm_eps", &LayerOptions::layer_norm_eps)
          .key("dropout", &LayerOptions::dropout)
          .key("attn_dropout", &LayerOptions::attn_dropout)
          .check([](const LayerOptions& o) {
            TORCH_CHECK(o.dim > 0 && o.num_heads > 0 && o.dim % o.num_heads == 0,
                        "config keys 'embed_dim' (", o.dim, ") and 'num_heads' (", o.num_heads,
                        "): embed_dim must be a positive multiple of num_heads");
            TORCH_CHECK(o.mlp_ratio > 0, "config key 'mlp_ratio' must be positive");
            TORCH_CHECK(o.dropout >= 0 && o.dropout < 1 && o.attn_dropout >= 0 && o.attn_dropout < 1,
                        "config keys 'dropout'/'attn_dropout' must be in [0, 1)");
            check_activation(o.act, "config");
          });
  return keys;
}

at::Tensor trunc_normal_(at::Tensor t, double std) {
  torch::NoGradGuard no_grad;
  // Resample-free truncation at +-2 std, as timm's trunc_normal_(std=.02).
  t.normal_(0.0, std).clamp_(-2.0 * std, 2.0 * std);
  return t;
}

void init_transformer_weights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(m)) {
      trunc_normal_(lin->weight, 0.02);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = dynamic_cast<torch::nn::EmbeddingImpl*>(m)) {
      trunc_normal_(emb->weight, 0.02);
    } else if (auto* ln = dynamic_cast<torch::nn::LayerNormImpl*>(m)) {
      if (ln->weight.defined()) {
        ln->weight.fill_(1.0);
        ln->bias.zero_();
      }
    }
  }
  // TimeSformer's zero-initialised temporal_fc survives the generic init.
  for (auto& item : module.named_modules("", false)) {
    if (auto* layer = dynamic_cast<TransformerLayerImpl*>(item.value().get())) {
      if (layer->options().temporal) {
        auto params = layer->named_parameters(true);
        if (auto* w = params.find("temporal_fc.weight")) w->zero_();
        if (auto* b = params.find("temporal_fc.bias")) b->zero_();
      }
    }
  }
}

}  // namespace kinema::models
