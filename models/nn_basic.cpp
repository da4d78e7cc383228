// The basic layers every graph needs, as blocks callable from Lua:
// Linear, Embedding, LayerNorm, Dropout, GELU, MultiheadAttention,
// TransformerEncoderLayer, Conv2d, Conv3d. Parameter names follow PyTorch.
#include "models/block.h"

namespace kinema::models {

namespace {

class LinearBlock : public Block {
 public:
  explicit LinearBlock(const Config& c) {
    int64_t in = c.require_int("in_features"), out = c.require_int("out_features");
    // torch.nn.Linear's initialisation: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    weight = register_parameter("weight", torch::empty({out, in}).uniform_(-bound, bound));
    if (c.get_bool("bias", true)) bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return at::linear(input_tensor(in, 0, "Linear", "input"), weight, bias);
  }
  at::Tensor weight, bias;
};

class EmbeddingBlock : public Block {
 public:
  explicit EmbeddingBlock(const Config& c)
      : padding_idx_(c.get_int("padding_idx", -1)) {
    int64_t n = c.require_int("num_embeddings"), d = c.require_int("embedding_dim");
    weight = register_parameter("weight", torch::randn({n, d}));
    if (padding_idx_ >= 0) {
      TORCH_CHECK(padding_idx_ < n, "Embedding: padding_idx ", padding_idx_, " >= num_embeddings ", n);
      torch::NoGradGuard guard;
      weight[padding_idx_].zero_();
    }
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    at::Tensor ids = input_tensor(in, 0, "Embedding", "input");
    TORCH_CHECK(!ids.is_floating_point(), "Embedding: input must hold integer ids, got ", ids.scalar_type());
    return at::embedding(weight, ids, padding_idx_);
  }
  at::Tensor weight;

 private:
  int64_t padding_idx_;
};

class LayerNormBlock : public Block {
 public:
  explicit LayerNormBlock(const Config& c)
      : shape_(c.get_ints("normalized_shape", {})), eps_(c.get_double("eps", 1e-5)) {
    TORCH_CHECK(!shape_.empty(), "LayerNorm: config key 'normalized_shape' is required");
    if (c.get_bool("elementwise_affine", true)) {
      weight = register_parameter("weight", torch::ones(shape_));
      bias = register_parameter("bias", torch::zeros(shape_));
    }
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return at::layer_norm(input_tensor(in, 0, "LayerNorm", "input"), shape_, weight, bias, eps_);
  }
  at::Tensor weight, bias;

 private:
  std::vector<int64_t> shape_;
  double eps_;
};

class DropoutBlock : public Block {
 public:
  explicit DropoutBlock(const Config& c) : p_(c.get_double("p", 0.5)) {
    TORCH_CHECK(p_ >= 0 && p_ <= 1, "Dropout: p must be in [0, 1], got ", p_);
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return at::dropout(input_tensor(in, 0, "Dropout", "input"), p_, is_training());
  }

 private:
  double p_;
};

class GeluBlock : public Block {
 public:
  explicit GeluBlock(const Config& c) : approximate_(c.get_string("approximate", "none")) {
    TORCH_CHECK(approximate_ == "none" || approximate_ == "tanh",
                "GELU: approximate must be 'none' or 'tanh', got '", approximate_, "'");
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    return at::gelu(input_tensor(in, 0, "GELU", "input"), approximate_);
  }

 private:
  std::string approximate_;
};

// Batch-first multi-head attention with PyTorch's parameter names
// (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias).
class MultiheadAttentionBlock : public Block {
 public:
  explicit MultiheadAttentionBlock(const Config& c)
      : embed_dim_(c.require_int("embed_dim")),
        num_heads_(c.require_int("num_heads")),
        dropout_(c.get_double("dropout", 0.0)),
        batch_first_(c.get_bool("batch_first", true)) {
    TORCH_CHECK(embed_dim_ % num_heads_ == 0, "MultiheadAttention: embed_dim ", embed_dim_,
                " is not divisible by num_heads ", num_heads_);
    attention_ = register_module(
        "attention", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(embed_dim_, num_heads_)
                                                       .dropout(dropout_)
                                                       .bias(c.get_bool("bias", true))));
    in_proj_weight = register_parameter("in_proj_weight", attention_->in_proj_weight);
    if (attention_->in_proj_bias.defined()) in_proj_bias = register_parameter("in_proj_bias", attention_->in_proj_bias);
    out_proj = register_module("out_proj", attention_->out_proj);
    unregister_module("attention");
  }

  // forward(query, key=query, value=key, key_padding_mask (true = ignore), attn_mask, need_weights)
  c10::IValue forward(std::vector<c10::IValue> in) override {
    at::Tensor q = input_tensor(in, 0, "MultiheadAttention", "query");
    at::Tensor k = input_tensor(in, 1, "MultiheadAttention", "key", false);
    at::Tensor v = input_tensor(in, 2, "MultiheadAttention", "value", false);
    at::Tensor key_padding_mask = input_tensor(in, 3, "MultiheadAttention", "key_padding_mask", false);
    at::Tensor attn_mask = input_tensor(in, 4, "MultiheadAttention", "attn_mask", false);
    if (!k.defined()) k = q;
    if (!v.defined()) v = k;
    TORCH_CHECK(q.dim() == 3, "MultiheadAttention: query must be 3-D [batch, seq, embed], got ", q.sizes());
    TORCH_CHECK(q.size(-1) == embed_dim_, "MultiheadAttention: query has embed size ", q.size(-1),
                ", expected ", embed_dim_);
    if (batch_first_) {
      q = q.transpose(0, 1);
      k = k.transpose(0, 1);
      v = v.transpose(0, 1);
    }
    auto out = torch::nn::functional::multi_head_attention_forward(
        q, k, v,
        torch::nn::functional::MultiheadAttentionForwardFuncOptions(
            embed_dim_, num_heads_, in_proj_weight, in_proj_bias, at::Tensor(), at::Tensor(), false, dropout_,
            out_proj->weight, out_proj->bias)
            .training(is_training())
            .key_padding_mask(key_padding_mask)
            .attn_mask(attn_mask)
            .need_weights(true));
    at::Tensor o = std::get<0>(out);
    if (batch_first_) o = o.transpose(0, 1);
    return make_outputs({{"output", o}, {"weights", std::get<1>(out)}});
  }

  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t embed_dim_, num_heads_;
  double dropout_;
  bool batch_first_;
  torch::nn::MultiheadAttention attention_{nullptr};
};

// Batch-first transformer encoder layer (post-norm by default, pre-norm with
// norm_first), PyTorch's parameter names: self_attn.*, linear1, linear2, norm1, norm2.
class TransformerEncoderLayerBlock : public Block {
 public:
  explicit TransformerEncoderLayerBlock(const Config& c)
      : norm_first_(c.get_bool("norm_first", false)),
        dropout_(c.get_double("dropout", 0.1)),
        activation_(c.get_string("activation", "relu")) {
    int64_t d = c.require_int("d_model"), heads = c.require_int("nhead");
    int64_t ff = c.get_int("dim_feedforward", 2048);
    double eps = c.get_double("layer_norm_eps", 1e-5);
    TORCH_CHECK(activation_ == "relu" || activation_ == "gelu",
                "TransformerEncoderLayer: activation must be 'relu' or 'gelu', got '", activation_, "'");
    Config attn_cfg({{"embed_dim", d}, {"num_heads", heads}, {"dropout", dropout_}});
    self_attn = register_module("self_attn", std::make_shared<MultiheadAttentionBlock>(attn_cfg));
    linear1 = register_module("linear1", torch::nn::Linear(d, ff));
    linear2 = register_module("linear2", torch::nn::Linear(ff, d));
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps)));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps)));
  }

  // forward(src [B, S, D], src_mask [S, S] or [B*heads, S, S], src_key_padding_mask [B, S] (true = pad))
  c10::IValue forward(std::vector<c10::IValue> in) override {
    at::Tensor x = input_tensor(in, 0, "TransformerEncoderLayer", "src");
    at::Tensor mask = input_tensor(in, 1, "TransformerEncoderLayer", "src_mask", false);
    at::Tensor padding = input_tensor(in, 2, "TransformerEncoderLayer", "src_key_padding_mask", false);
    auto attend = [&](const at::Tensor& h) {
      auto out = self_attn->forward({h, h, h, padding, mask}).toGenericDict();
      return at::dropout(out.at("output").toTensor(), dropout_, is_training());
    };
    auto feed_forward = [&](const at::Tensor& h) {
      at::Tensor a = linear1(h);
      a = activation_ == "gelu" ? at::gelu(a) : at::relu(a);
      return at::dropout(linear2(at::dropout(a, dropout_, is_training())), dropout_, is_training());
    };
    if (norm_first_) {
      x = x + attend(norm1(x));
      return x + feed_forward(norm2(x));
    }
    x = norm1(x + attend(x));
    return norm2(x + feed_forward(x));
  }

  std::shared_ptr<MultiheadAttentionBlock> self_attn;
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};

 private:
  bool norm_first_;
  double dropout_;
  std::string activation_;
};

template <size_t D>
class ConvBlock : public Block {
 public:
  explicit ConvBlock(const Config& c) {
    auto expand = [&](const char* key, int64_t fallback) {
      std::vector<int64_t> v = c.get_ints(key, {fallback});
      if (v.size() == 1) v.assign(D, v[0]);
      TORCH_CHECK(v.size() == D, "Conv", D, "d: '", key, "' needs 1 or ", D, " values");
      return v;
    };
    std::vector<int64_t> kernel = c.get_ints("kernel_size", {});
    TORCH_CHECK(!kernel.empty(), "Conv", D, "d: config key 'kernel_size' is required");
    if (kernel.size() == 1) kernel.assign(D, kernel[0]);
    stride_ = expand("stride", 1);
    padding_ = expand("padding", 0);
    dilation_ = expand("dilation", 1);
    groups_ = c.get_int("groups", 1);
    int64_t in = c.require_int("in_channels"), out = c.require_int("out_channels");
    TORCH_CHECK(in % groups_ == 0 && out % groups_ == 0, "Conv", D, "d: channels not divisible by groups");
    std::vector<int64_t> wshape = {out, in / groups_};
    wshape.insert(wshape.end(), kernel.begin(), kernel.end());
    // Kaiming-uniform initialisation as torch.nn.ConvNd does.
    int64_t fan_in = in / groups_;
    for (int64_t k : kernel) fan_in *= k;
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    weight = register_parameter("weight", torch::empty(wshape).uniform_(-bound, bound));
    if (c.get_bool("bias", true)) bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
  }
  c10::IValue forward(std::vector<c10::IValue> in) override {
    at::Tensor x = input_tensor(in, 0, D == 2 ? "Conv2d" : "Conv3d", "input");
    TORCH_CHECK(x.dim() == static_cast<int64_t>(D) + 2, "Conv", D, "d: input must be ", D + 2, "-D, got ",
                x.sizes());
    if (D == 2) return at::conv2d(x, weight, bias, stride_, padding_, dilation_, groups_);
    return at::conv3d(x, weight, bias, stride_, padding_, dilation_, groups_);
  }
  at::Tensor weight, bias;

 private:
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
};

template <typename T>
BlockFactory factory() {
  return [](const Config& c) { return std::make_shared<T>(c); };
}

}  // namespace

KINEMA_REGISTER_BLOCK("Linear", factory<LinearBlock>(),
                      "Linear{in_features, out_features, bias=true}: y = x W^T + b. Parameters weight, bias.");
KINEMA_REGISTER_BLOCK("Embedding", factory<EmbeddingBlock>(),
                      "Embedding{num_embeddings, embedding_dim, padding_idx=-1}: integer ids -> vectors.");
KINEMA_REGISTER_BLOCK("LayerNorm", factory<LayerNormBlock>(),
                      "LayerNorm{normalized_shape, eps=1e-5, elementwise_affine=true}.");
KINEMA_REGISTER_BLOCK("Dropout", factory<DropoutBlock>(), "Dropout{p=0.5}: active in train() mode only.");
KINEMA_REGISTER_BLOCK("GELU", factory<GeluBlock>(), "GELU{approximate='none'|'tanh'}.");
KINEMA_REGISTER_BLOCK("MultiheadAttention", factory<MultiheadAttentionBlock>(),
                      "MultiheadAttention{embed_dim, num_heads, dropout=0, bias=true, batch_first=true}: "
                      "forward(query, key, value, key_padding_mask (true = ignore), attn_mask) -> "
                      "{output, weights (averaged over heads)}.");
KINEMA_REGISTER_BLOCK("TransformerEncoderLayer", factory<TransformerEncoderLayerBlock>(),
                      "TransformerEncoderLayer{d_model, nhead, dim_feedforward=2048, dropout=0.1, "
                      "activation='relu'|'gelu', norm_first=false, layer_norm_eps=1e-5}: batch-first; "
                      "forward(src, src_mask, src_key_padding_mask).");
KINEMA_REGISTER_BLOCK("Conv2d", factory<ConvBlock<2>>(),
                      "Conv2d{in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, "
                      "groups=1, bias=true}.");
KINEMA_REGISTER_BLOCK("Conv3d", factory<ConvBlock<3>>(),
                      "Conv3d{in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, "
                      "groups=1, bias=true}.");

}  // namespace kinema::models
