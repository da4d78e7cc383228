#include "models/text_encoder.h"

#include "models/adapter.h"
#include "models/checkpoint.h"

namespace kinema::models {

TextEncoderOptions TextEncoderOptions::bert() {
  TextEncoderOptions o;
  o.style = "bert";
  o.layer.pre_norm = false;
  o.layer.fused_qkv = false;
  o.layer.act = "gelu";
  o.layer.layer_norm_eps = 1e-12;
  o.layer.dropout = 0.1;
  o.layer.attn_dropout = 0.1;
  return o;
}

TextEncoderOptions TextEncoderOptions::clip() {
  TextEncoderOptions o;
  o.style = "clip";
  o.vocab_size = 49408;
  o.max_len = 77;
  o.type_vocab_size = 0;
  o.layer.dim = 512;
  o.layer.num_heads = 8;
  o.layer.pre_norm = true;
  o.layer.fused_qkv = true;
  o.layer.act = "quick_gelu";
  o.layer.layer_norm_eps = 1e-5;
  o.embed_norm = false;
  o.final_norm = true;
  o.causal = true;
  o.pool = "eot";
  return o;
}

at::Tensor text_attention_mask(const at::Tensor& valid, int64_t batch, int64_t length, bool causal,
                               const at::Device& device) {
  at::Tensor allowed = at::ones({batch, length, length}, at::TensorOptions().dtype(at::kBool).device(device));
  if (valid.defined()) allowed = allowed.logical_and(valid.unsqueeze(1));
  if (causal) allowed = allowed.logical_and(at::ones({length, length}, allowed.options()).tril());
  return allowed;
}

TextEncoderImpl::TextEncoderImpl(const TextEncoderOptions& o) : options_(o) {
  const char* op = "TextEncoder";
  TORCH_CHECK(o.vocab_size > 0 && o.max_len > 0 && o.depth > 0 && o.type_vocab_size >= 0, op,
              ": config keys 'vocab_size', 'max_len', 'depth' must be positive");
  TORCH_CHECK(o.pool == "cls" || o.pool == "eot", op,
              ": config key 'pool' must be \"cls\" or \"eot\", got \"", o.pool, "\"");
  const int64_t d = o.layer.dim;
  word_embed_ = register_module("word_embed", torch::nn::Embedding(o.vocab_size, d));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({o.max_len, d}));
  if (o.type_vocab_size > 0)
    type_embed_ = register_module("type_embed", torch::nn::Embedding(o.type_vocab_size, d));
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(o.layer.layer_norm_eps)); };
  if (o.embed_norm) embed_norm_ = register_module("embed_norm", ln());
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    blocks_.push_back(TransformerLayer(o.layer));
    blocks->push_back(blocks_.back());
  }
  if (o.final_norm) norm_ = register_module("norm", ln());
  if (o.proj_dim > 0) proj_ = register_parameter("proj", torch::zeros({d, o.proj_dim}));
  init_transformer_weights(*this);
  trunc_normal_(pos_embed_, 0.01);
  if (proj_.defined()) trunc_normal_(proj_, 0.02);
}

TextEncoderOutput TextEncoderImpl::forward(const at::Tensor& ids, const at::Tensor& attention_mask,
                                           const at::Tensor& token_type_ids) {
  TORCH_CHECK(ids.dim() == 2 && (ids.scalar_type() == at::kLong || ids.scalar_type() == at::kInt),
              "TextEncoder: input #1 (ids) must be an integer [B, L] tensor, got ",
              ids.scalar_type(), " ", ids.sizes());
  const int64_t b = ids.size(0), l = ids.size(1);
  TORCH_CHECK(l <= options_.max_len, "TextEncoder: input #1 (ids) has ", l,
              " tokens, more than max_len = ", options_.max_len);
  at::Tensor valid;
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.sizes() == ids.sizes(),
                "TextEncoder: input #2 (attention_mask) must be [B, L] like ids, got ",
                attention_mask.sizes());
    valid = attention_mask.scalar_type() == at::kBool ? attention_mask : attention_mask.ne(0);
  }
  at::Tensor x = word_embed_(ids) + pos_embed_.narrow(0, 0, l);
  if (type_embed_) {
    if (token_type_ids.defined()) {
      TORCH_CHECK(token_type_ids.sizes() == ids.sizes(),
                  "TextEncoder: input #3 (token_type_ids) must be [B, L] like ids");
      x = x + type_embed_(token_type_ids);
    } else {
      x = x + type_embed_->weight[0];
    }
  }
  if (embed_norm_) x = embed_norm_(x);
  if (options_.layer.dropout > 0 && is_training()) x = at::dropout(x, options_.layer.dropout, true);

  at::Tensor mask;
  if (valid.defined() || options_.causal)
    mask = additive_attention_mask(text_attention_mask(valid, b, l, options_.causal, x.device()),
                                   x.scalar_type());
  for (auto& holder : blocks_) {
    TransformerLayerImpl* layer = holder.get();
    auto fn = [layer, mask](const at::Tensor& in) { return layer->forward(in, mask); };
    x = options_.grad_checkpoint && is_training() ? checkpoint(fn, x) : fn(x);
  }
  if (norm_) x = norm_(x);

  TextEncoderOutput out;
  out.tokens = x;
  if (options_.pool == "cls") {
    out.pool_index = at::zeros({b}, ids.options().dtype(at::kLong));
  } else if (valid.defined()) {
    // The end-of-text token is the last real token of each caption.
    out.pool_index = (valid.to(at::kLong).sum(1) - 1).clamp_min(0);
  } else {
    out.pool_index = ids.argmax(1);  // CLIP: EOT has the largest id
  }
  out.pooled = x.gather(1, out.pool_index.view({b, 1, 1}).expand({b, 1, x.size(2)})).squeeze(1);
  if (proj_.defined()) out.pooled_proj = at::matmul(out.pooled, proj_);
  return out;
}

namespace {

using TO = TextEncoderOptions;
// The keys read on top of the chosen style's defaults (style itself picks them).
const ConfigKeys<TO>& text_encoder_keys() {
  static const ConfigKeys<TO> keys =
      with_stack_keys(ConfigKeys<TO>()
                          .key("vocab_size", &TO::vocab_size)
                          .key("max_len", &TO::max_len)
                          .key("type_vocab_size", &TO::type_vocab_size))
          .key_at("pre_norm", [](TO& o) -> bool& { return o.layer.pre_norm; })
          .key("embed_norm", &TO::embed_norm)
          .key("final_norm", &TO::final_norm)
          .key("causal", &TO::causal)
          .key("pool", &TO::pool, "'cls'|'eot'")
          .key("proj_dim", &TO::proj_dim);
  return keys;
}

}  // namespace

TextEncoderOptions text_encoder_options_from_config(const Config& c) {
  const std::string style = c.get_string("style", "bert");
  TORCH_CHECK(style == "bert" || style == "clip",
              "TextEncoder: config key 'style' must be \"bert\" or \"clip\", got \"", style, "\"");
  return text_encoder_keys().read(c, style == "bert" ? TextEncoderOptions::bert() : TextEncoderOptions::clip());
}

namespace {

class TextEncoderBlock : public TypedBlock<TextEncoder> {
 public:
  explicit TextEncoderBlock(const Config& c) : TypedBlock(TextEncoder(text_encoder_options_from_config(c))) {}

  c10::IValue forward(std::vector<c10::IValue> inputs) override {
    at::Tensor ids = input_tensor(inputs, 0, "TextEncoder", "ids");
    at::Tensor mask = optional_input(inputs, 1, "TextEncoder", "attention_mask");
    at::Tensor types = optional_input(inputs, 2, "TextEncoder", "token_type_ids");
    TextEncoderOutput r = impl_->forward(ids, mask, types);
    Outputs out = make_outputs({{"tokens", r.tokens}, {"pooled", r.pooled}, {"pool_index", r.pool_index}});
    if (r.pooled_proj.defined()) out.insert("pooled_proj", r.pooled_proj);
    return out;
  }
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "TextEncoder", [](const Config& c) { return std::make_shared<TextEncoderBlock>(c); },
    "Text encoder, BERT/DistilBERT-style (style='bert': post-norm, separate q/k/v, [CLS] pooling) or "
    "CLIP-style (style='clip': pre-norm, causal, fused qkv, quick_gelu, end-of-text pooling). "
    "Config: style='bert'|'clip', then (defaults of style='bert', BERT-base; 'clip': CLIP ViT-B/16 text) " +
        text_encoder_keys().doc(TextEncoderOptions::bert()) + ". "
    "Inputs: ids [B,L] int64, attention_mask [B,L] (optional, true/1 = token), token_type_ids "
    "(optional). Outputs: tokens [B,L,D], pooled [B,D], pool_index [B], pooled_proj [B,E] (proj_dim>0). "
    "Parameters: word_embed, pos_embed [L,D], type_embed, embed_norm, blocks.<i>.{norm1,attn.q/k/v|"
    "attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}, norm, proj [D,E].");

}  // namespace kinema::models
