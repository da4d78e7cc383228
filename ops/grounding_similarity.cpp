// grounding_similarity: S-ViLM's G(v, c) for all (video, caption) pairs:
// each valid noun attends over the video's group tokens with
// softmax(cos / tau), and G averages cos(noun, attended group) over the
// caption's valid nouns. Same engine as rwa_similarity (b -> a direction,
// no threshold), so it never builds a [Bv, Bt, K, *] tensor.
#include "ops/pooled_cosine.h"
#include "ops/similarity_args.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace kinema::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = c10::optional<at::Tensor>;

struct Args {
  at::Tensor group_weights, noun_weights;
  detail::PooledCosineOptions options;
};

Args check(const char* op, const at::Tensor& groups, const at::Tensor& nouns,
           const OptTensor& noun_mask, double tau) {
  detail::check_tokens(op, "groups", groups, "groups", groups);
  detail::check_tokens(op, "nouns", nouns, "groups", groups);
  TORCH_CHECK(std::isfinite(tau) && tau > 0, "kinema::", op,
              ": argument 'tau' must be a positive number, got ", tau);
  Args args;
  args.group_weights = at::ones({groups.size(0), groups.size(1)}, groups.options());
  args.noun_weights = detail::mask_as_weights(op, "noun_mask", noun_mask, "nouns", nouns);
  args.options.scale = 1.0 / tau;
  args.options.threshold = false;
  args.options.a_to_b = false;
  return args;
}

at::Tensor grounding_similarity_kernel(const at::Tensor& groups, const at::Tensor& nouns,
                                       const OptTensor& noun_mask, double tau) {
  const Args args = check("grounding_similarity", groups, nouns, noun_mask, tau);
  return detail::pooled_cosine_forward(groups, args.group_weights, nouns, args.noun_weights,
                                       args.options)
      .second;
}

std::tuple<at::Tensor, at::Tensor> grounding_similarity_backward_kernel(
    const at::Tensor& grad, const at::Tensor& groups, const at::Tensor& nouns,
    const OptTensor& noun_mask, double tau) {
  constexpr const char* op = "_grounding_similarity_backward";
  const Args args = check(op, groups, nouns, noun_mask, tau);
  TORCH_CHECK(grad.defined() && grad.sizes() == at::IntArrayRef({groups.size(0), nouns.size(0)}),
              "kinema::", op, ": argument 'grad' must have shape [", groups.size(0), ", ",
              nouns.size(0), "]");
  auto [grad_groups, grad_nouns] = detail::pooled_cosine_backward(
      at::Tensor(), grad, groups, args.group_weights, nouns, args.noun_weights, args.options);
  return {grad_groups, grad_nouns};
}

template <typename Signature>
auto find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

OptTensor optional_of(const at::Tensor& t) { return t.defined() ? OptTensor(t) : c10::nullopt; }

class GroundingSimilarityFunction
    : public torch::autograd::Function<GroundingSimilarityFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& groups,
                            const at::Tensor& nouns, const OptTensor& noun_mask, double tau) {
    ctx->save_for_backward({groups, nouns, noun_mask.value_or(at::Tensor())});
    ctx->saved_data["tau"] = tau;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, double)>(
            "kinema::grounding_similarity");
    return op.call(groups, nouns, noun_mask, tau);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    static auto op = find_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&, double)>(
        "kinema::_grounding_similarity_backward");
    auto [grad_groups, grad_nouns] = op.call(grads[0], saved[0], saved[1], optional_of(saved[2]),
                                             ctx->saved_data["tau"].toDouble());
    return {grad_groups, grad_nouns, at::Tensor(), at::Tensor()};
  }
};

at::Tensor grounding_similarity_autograd(const at::Tensor& groups, const at::Tensor& nouns,
                                         const OptTensor& noun_mask, double tau) {
  return GroundingSimilarityFunction::apply(groups, nouns, noun_mask, tau);
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CompositeExplicitAutograd, m) {
  m.impl("grounding_similarity", &grounding_similarity_kernel);
  m.impl("_grounding_similarity_backward", &grounding_similarity_backward_kernel);
}

TORCH_LIBRARY_IMPL(kinema, Autograd, m) {
  m.impl("grounding_similarity", &grounding_similarity_autograd);
}

}  // namespace kinema::ops
