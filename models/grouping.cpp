#include "models/grouping.h"

#include <cmath>

#include "models/adapter.h"
#include "ops/ops.h"
#include "ops/torch_compat.h"

namespace kinema::models {

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t num_heads)
    : dim_(dim), num_heads_(num_heads) {
  TORCH_CHECK(num_heads > 0 && dim % num_heads == 0, "cross attention: embed_dim (", dim,
              ") must be divisible by num_heads (", num_heads, ")");
  q_ = register_module("q", torch::nn::Linear(dim, dim));
  k_ = register_module("k", torch::nn::Linear(dim, dim));
  v_ = register_module("v", torch::nn::Linear(dim, dim));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

at::Tensor CrossAttentionImpl::forward(const at::Tensor& queries, const at::Tensor& tokens,
                                       const at::Tensor& key_mask) {
  const int64_t b = queries.size(0), m = queries.size(1), l = tokens.size(1);
  const int64_t h = num_heads_, hd = dim_ / h;
  at::Tensor q = q_(queries).view({b, m, h, hd}).transpose(1, 2);
  at::Tensor k = k_(tokens).view({b, l, h, hd}).transpose(1, 2);
  at::Tensor v = v_(tokens).view({b, l, h, hd}).transpose(1, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor out = compat::attention(q, k, v, key_mask, /*dropout=*/0.0, scale).transpose(1, 2).reshape({b, m, dim_});
  return proj_(out);
}

GroupingBlockImpl::GroupingBlockImpl(const GroupingOptions& o) : options_(o) {
  TORCH_CHECK(o.tau > 0, "GroupingBlock: config key 'tau' must be positive, got ", o.tau);
  check_activation(o.act, "GroupingBlock");
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.layer_norm_eps)); };
  norm_tokens_ = register_module("norm_tokens", ln());
  norm_groups_ = register_module("norm_groups", ln());
  cross_attn_ = register_module("cross_attn", CrossAttention(o.dim, o.num_heads));
  norm_assign_ = register_module("norm_assign", ln());
  auto assign = register_module("assign", std::make_shared<torch::nn::Module>());
  assign_q_ = assign->register_module("q", torch::nn::Linear(o.dim, o.dim));
  assign_k_ = assign->register_module("k", torch::nn::Linear(o.dim, o.dim));
  assign_v_ = assign->register_module("v", torch::nn::Linear(o.dim, o.dim));
  assign_proj_ = assign->register_module("proj", torch::nn::Linear(o.dim, o.dim));
  norm_mlp_ = register_module("norm_mlp", ln());
  const auto hidden = static_cast<int64_t>(std::llround(static_cast<double>(o.dim) * o.mlp_ratio));
  mlp_ = register_module("mlp", FeedForward(o.dim, hidden, o.act, 0.0));
}

GroupingOutput GroupingBlockImpl::forward(const at::Tensor& groups, const at::Tensor& tokens,
                                          const at::Tensor& token_mask) {
  const int64_t d = options_.dim;
  TORCH_CHECK(groups.dim() == 3 && groups.size(2) == d, "GroupingBlock: groups must be [B, M, ",
              d, "], got ", groups.sizes());
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(2) == d && tokens.size(0) == groups.size(0),
              "GroupingBlock: tokens must be [B, L, ", d, "] with the groups' batch size, got ",
              tokens.sizes());
  at::Tensor key_mask;
  if (token_mask.defined()) {
    TORCH_CHECK(token_mask.scalar_type() == at::kBool && token_mask.dim() == 2 &&
                    token_mask.size(0) == tokens.size(0) && token_mask.size(1) == tokens.size(1),
                "GroupingBlock: token_mask must be bool [B, L], got ", token_mask.sizes());
    key_mask = additive_attention_mask(token_mask, tokens.scalar_type());
  }
  at::Tensor x = norm_tokens_(tokens);
  at::Tensor g = groups + cross_attn_(norm_groups_(groups), x, key_mask);

  // logits [B, M, L]: which group each token belongs to (softmax over M).
  at::Tensor gq = assign_q_(norm_assign_(g));
  at::Tensor logits = at::matmul(gq, assign_k_(x).transpose(1, 2)) * (1.0 / std::sqrt(static_cast<double>(d)));
  at::Tensor assignment;
  if (is_training() && options_.gumbel) {
    assignment = kinema::ops::gumbel_hard_assign(logits, options_.tau, 1);
  } else {
    // Deterministic hard assignment with the same straight-through gradient.
    at::Tensor soft = at::softmax(logits / options_.tau, 1);
    at::Tensor hard = at::zeros_like(soft).scatter_(1, soft.argmax(1, true), 1.0);
    assignment = hard + (soft - soft.detach());  // exactly one-hot in value
  }
  if (token_mask.defined()) assignment = assignment * token_mask.unsqueeze(1).to(assignment.scalar_type());
  // Mean of each group's tokens (+1 keeps an empty group finite, as GroupViT).
  at::Tensor weights = assignment / (assignment.sum(-1, true) + 1.0);
  g = g + assign_proj_(at::matmul(weights, assign_v_(x)));
  g = g + mlp_(norm_mlp_(g));
  return {g, assignment};
}

namespace {

using GO = GroupingOptions;
const ConfigKeys<GO>& grouping_keys() {
  static const ConfigKeys<GO> keys = ConfigKeys<GO>()
                                         .key("embed_dim", &GO::dim)
                                         .key("num_heads", &GO::num_heads)
                                         .key("mlp_ratio", &GO::mlp_ratio)
                                         .key("tau", &GO::tau)
                                         .key("gumbel", &GO::gumbel)
                                         .key("layer_norm_eps", &GO::layer_norm_eps)
                                         .key("act", &GO::act, "'gelu'|'quick_gelu'");
  return keys;
}
constexpr int64_t kDefaultGroups = 32;  // the standalone block's num_groups

// The standalone block keeps its own learnable group tokens (group_token
// [1, M, D]) used when no groups are passed in, so a chain of grouping blocks
// can be wired from Lua after any encoder layers.
class GroupingBlockAdapter : public TypedBlock<GroupingBlock> {
 public:
  explicit GroupingBlockAdapter(const Config& c) : TypedBlock(GroupingBlock(grouping_keys().read(c))) {
    const int64_t m = c.get_int("num_groups", kDefaultGroups);
    TORCH_CHECK(m > 0, "GroupingBlock: config key 'num_groups' must be positive");
    group_token_ = register_parameter("group_token", torch::zeros({1, m, impl_->options().dim}));
    trunc_normal_(group_token_, 0.02);
  }

  c10::IValue forward(std::vector<c10::IValue> in) override {
    const char* n = "GroupingBlock";
    at::Tensor tokens = input_tensor(in, 0, n, "tokens");
    at::Tensor groups = optional_input(in, 1, n, "groups");
    if (!groups.defined()) groups = group_token_.expand({tokens.size(0), group_token_.size(1), group_token_.size(2)});
    GroupingOutput r = impl_->forward(groups, tokens, optional_input(in, 2, n, "token_mask"));
    return make_outputs({{"groups", r.groups}, {"assignment", r.assignment}});
  }

 private:
  at::Tensor group_token_;
};

}  // namespace

KINEMA_REGISTER_BLOCK(
    "GroupingBlock", [](const Config& c) { return std::make_shared<GroupingBlockAdapter>(c); },
    "S-ViLM / GroupViT grouping block: groups attend to the tokens, every token is hard-assigned to one "
    "group (gumbel noise while training, straight-through softmax gradient) and merged into it. "
    "Config: " + grouping_keys().doc() + " num_groups=" + std::to_string(kDefaultGroups) + ". Inputs: tokens [B,L,D], groups [B,M,D] (opt; default: the learned group_token), "
    "token_mask [B,L] bool (opt). Outputs: groups [B,M,D], assignment [B,M,L]. Parameters: group_token, "
    "norm_tokens, norm_groups, cross_attn.{q,k,v,proj}, norm_assign, assign.{q,k,v,proj}, norm_mlp, "
    "mlp.{fc1,fc2}.");

}  // namespace kinema::models
