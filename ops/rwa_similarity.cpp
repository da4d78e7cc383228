// rwa_similarity: DemoVLP's region-word alignment scores for all
// (video, caption) pairs, S [Bv, Bt] (region -> word) and S' [Bt, Bv]
// (word -> region), as docs/objectives.md defines them. The kernels are ATen
// compositions (ops/pooled_cosine.cpp), so one registration serves CPU and
// CUDA; the autograd wrapper pairs them with the hand-written backward.
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
  at::Tensor region_weights, word_weights;
  detail::PooledCosineOptions options;
};

Args check(const char* op, const at::Tensor& regions, const OptTensor& region_mask,
           const at::Tensor& words, const OptTensor& word_mask, double lambda) {
  detail::check_tokens(op, "regions", regions, "regions", regions);
  detail::check_tokens(op, "words", words, "regions", regions);
  TORCH_CHECK(std::isfinite(lambda), "kinema::", op, ": argument 'lambda' must be finite");
  Args args;
  args.region_weights = detail::mask_as_weights(op, "region_mask", region_mask, "regions", regions);
  args.word_weights = detail::mask_as_weights(op, "word_mask", word_mask, "words", words);
  args.options.scale = lambda;
  args.options.threshold = true;
  return args;
}

std::tuple<at::Tensor, at::Tensor> rwa_similarity_kernel(const at::Tensor& regions,
                                                         const OptTensor& region_mask,
                                                         const at::Tensor& words,
                                                         const OptTensor& word_mask,
                                                         double lambda) {
  const Args args = check("rwa_similarity", regions, region_mask, words, word_mask, lambda);
  auto [region_to_word, word_to_region] = detail::pooled_cosine_forward(
      regions, args.region_weights, words, args.word_weights, args.options);
  return {region_to_word, word_to_region.t().contiguous()};
}

std::tuple<at::Tensor, at::Tensor> rwa_similarity_backward_kernel(
    const at::Tensor& grad_region_to_word, const at::Tensor& grad_word_to_region,
    const at::Tensor& regions, const OptTensor& region_mask, const at::Tensor& words,
    const OptTensor& word_mask, double lambda) {
  constexpr const char* op = "_rwa_similarity_backward";
  const Args args = check(op, regions, region_mask, words, word_mask, lambda);
  const int64_t bv = regions.size(0), bt = words.size(0);
  if (grad_region_to_word.defined())
    TORCH_CHECK(grad_region_to_word.sizes() == at::IntArrayRef({bv, bt}), "kinema::", op,
                ": argument 'grad_region_to_word' must have shape [", bv, ", ", bt, "]");
  if (grad_word_to_region.defined())
    TORCH_CHECK(grad_word_to_region.sizes() == at::IntArrayRef({bt, bv}), "kinema::", op,
                ": argument 'grad_word_to_region' must have shape [", bt, ", ", bv, "]");
  const at::Tensor grad_ba =
      grad_word_to_region.defined() ? grad_word_to_region.t() : at::Tensor();
  auto [grad_regions, grad_words] = detail::pooled_cosine_backward(
      grad_region_to_word, grad_ba, regions, args.region_weights, words, args.word_weights,
      args.options);
  return {grad_regions, grad_words};
}

template <typename Signature>
auto find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

OptTensor optional_of(const at::Tensor& t) { return t.defined() ? OptTensor(t) : c10::nullopt; }

class RwaSimilarityFunction : public torch::autograd::Function<RwaSimilarityFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& regions,
                               const OptTensor& region_mask, const at::Tensor& words,
                               const OptTensor& word_mask, double lambda) {
    ctx->save_for_backward({regions, region_mask.value_or(at::Tensor()), words,
                            word_mask.value_or(at::Tensor())});
    ctx->saved_data["lambda"] = lambda;
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = find_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const OptTensor&, const at::Tensor&, const OptTensor&, double)>(
        "kinema::rwa_similarity");
    auto [s, s_t] = op.call(regions, region_mask, words, word_mask, lambda);
    return {s, s_t};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    static auto op = find_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
        const at::Tensor&, const OptTensor&, double)>("kinema::_rwa_similarity_backward");
    auto [grad_regions, grad_words] =
        op.call(grads[0], grads[1], saved[0], optional_of(saved[1]), saved[2],
                optional_of(saved[3]), ctx->saved_data["lambda"].toDouble());
    return {grad_regions, at::Tensor(), grad_words, at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> rwa_similarity_autograd(const at::Tensor& regions,
                                                           const OptTensor& region_mask,
                                                           const at::Tensor& words,
                                                           const OptTensor& word_mask,
                                                           double lambda) {
  auto out = RwaSimilarityFunction::apply(regions, region_mask, words, word_mask, lambda);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CompositeExplicitAutograd, m) {
  m.impl("rwa_similarity", &rwa_similarity_kernel);
  m.impl("_rwa_similarity_backward", &rwa_similarity_backward_kernel);
}

TORCH_LIBRARY_IMPL(kinema, Autograd, m) { m.impl("rwa_similarity", &rwa_similarity_autograd); }

}  // namespace kinema::ops
