// kinema::ops::* — C++ entry points that call the registered operators
// through the dispatcher (backend selection and autograd included).
#include "ops/ops.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace kinema::ops {
namespace {

using OptTensor = c10::optional<at::Tensor>;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

OptTensor optional_of(const at::Tensor& t) { return t.defined() ? OptTensor(t) : c10::nullopt; }

}  // namespace

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                     int64_t pooled_width, double spatial_scale, int64_t sampling_ratio,
                     bool aligned) {
  static auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                      double, int64_t, bool)>("kinema::roi_align");
  return op.call(input, boxes, pooled_height, pooled_width, spatial_scale, sampling_ratio,
                 aligned);
}

std::tuple<at::Tensor, at::Tensor> linear_assignment(const at::Tensor& cost,
                                                     const at::Tensor& row_counts,
                                                     const at::Tensor& col_counts, bool maximize) {
  static auto op = find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const OptTensor&,
                                                              const OptTensor&, bool)>(
      "kinema::linear_assignment");
  return op.call(cost, optional_of(row_counts), optional_of(col_counts), maximize);
}

std::tuple<at::Tensor, at::Tensor> rwa_similarity(const at::Tensor& regions,
                                                  const at::Tensor& region_mask,
                                                  const at::Tensor& words,
                                                  const at::Tensor& word_mask, double lambda) {
  static auto op = find_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const OptTensor&, const at::Tensor&, const OptTensor&, double)>(
      "kinema::rwa_similarity");
  return op.call(regions, optional_of(region_mask), words, optional_of(word_mask), lambda);
}

at::Tensor grounding_similarity(const at::Tensor& groups, const at::Tensor& nouns,
                                const at::Tensor& noun_mask, double tau) {
  static auto op =
      find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, double)>(
          "kinema::grounding_similarity");
  return op.call(groups, nouns, optional_of(noun_mask), tau);
}

at::Tensor gumbel_hard_assign(const at::Tensor& logits, double tau, int64_t dim) {
  static auto op = find_op<at::Tensor(const at::Tensor&, double, int64_t)>(
      "kinema::gumbel_hard_assign");
  return op.call(logits, tau, dim);
}

}  // namespace kinema::ops
