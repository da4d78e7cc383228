// gumbel_hard_assign: GroupViT's hard assignment of tokens to group tokens.
// Forward: one_hot(argmax(logits + g)) along dim with g ~ Gumbel(0, 1) drawn
// from the default generator (as -log(Exponential(1)), so torch.manual_seed
// fixes it). Backward: straight-through, the gradient of
// softmax((logits + g) / tau). The forward value is exactly one-hot because
// it adds (soft - soft.detach()), which is exactly zero, to the hard one-hot.
// A composition of ATen ops: every backend and autograd come for free.
#include "ops/checks.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

namespace kinema::ops {
namespace {

at::Tensor gumbel_hard_assign_composite(const at::Tensor& logits, double tau, int64_t dim) {
  TORCH_CHECK(logits.defined(), "kinema::gumbel_hard_assign: argument 'logits' is undefined");
  TORCH_CHECK(logits.is_floating_point(), "kinema::gumbel_hard_assign: argument 'logits' must ",
              "be a floating point tensor, got ", logits.scalar_type());
  TORCH_CHECK(logits.dim() > 0, "kinema::gumbel_hard_assign: argument 'logits' must have at ",
              "least one dimension");
  TORCH_CHECK(std::isfinite(tau) && tau > 0, "kinema::gumbel_hard_assign: argument 'tau' must ",
              "be a positive number, got ", tau);
  TORCH_CHECK(dim >= -logits.dim() && dim < logits.dim(), "kinema::gumbel_hard_assign: ",
              "argument 'dim' is ", dim, " but 'logits' has ", logits.dim(), " dimensions");
  const at::Tensor noise = -at::empty_like(logits, at::MemoryFormat::Contiguous).exponential_().log();
  const at::Tensor soft = ((logits + noise) / tau).softmax(dim);
  const at::Tensor index = soft.argmax(dim, /*keepdim=*/true);
  const at::Tensor hard = at::zeros_like(soft).scatter_(dim, index, 1.0);
  return hard + (soft - soft.detach());
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CompositeImplicitAutograd, m) {
  m.impl("gumbel_hard_assign", &gumbel_hard_assign_composite);
}

}  // namespace kinema::ops
