// Autocast (bf16/fp16 mixed precision) kernels of kinema's operators, for the
// AutocastCUDA and AutocastCPU dispatch keys. Every operator here computes in
// float32, as ATen's own reductions do under autocast: bilinear sampling,
// Hungarian costs and log-sum-exp pooling lose too much in 8 mantissa bits.
// roi_align returns its input's dtype (torchvision's rule: it feeds the
// network); the similarities return float32 (they feed the loss);
// linear_assignment returns indices. gumbel_hard_assign is composite, so
// autocast already applies to the ATen ops inside it.
#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "ops/ops.h"

namespace kinema::ops {
namespace {

at::Tensor to_float(const at::Tensor& t) {
  return t.defined() && t.is_floating_point() && t.scalar_type() != at::kDouble ? t.to(at::kFloat) : t;
}

at::Tensor value_or_undefined(const c10::optional<at::Tensor>& t) { return t.has_value() ? *t : at::Tensor(); }

template <c10::DispatchKey autocast_key>
at::Tensor roi_align_autocast(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                              int64_t pooled_width, double spatial_scale, int64_t sampling_ratio, bool aligned) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  return roi_align(to_float(input), to_float(boxes), pooled_height, pooled_width, spatial_scale, sampling_ratio,
                   aligned)
      .to(input.scalar_type());
}

template <c10::DispatchKey autocast_key>
std::tuple<at::Tensor, at::Tensor> linear_assignment_autocast(const at::Tensor& cost,
                                                              const c10::optional<at::Tensor>& row_counts,
                                                              const c10::optional<at::Tensor>& col_counts,
                                                              bool maximize) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  return linear_assignment(to_float(cost), value_or_undefined(row_counts), value_or_undefined(col_counts),
                           maximize);
}

template <c10::DispatchKey autocast_key>
std::tuple<at::Tensor, at::Tensor> rwa_similarity_autocast(const at::Tensor& regions,
                                                           const c10::optional<at::Tensor>& region_mask,
                                                           const at::Tensor& words,
                                                           const c10::optional<at::Tensor>& word_mask,
                                                           double lambda) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  return rwa_similarity(to_float(regions), value_or_undefined(region_mask), to_float(words),
                        value_or_undefined(word_mask), lambda);
}

template <c10::DispatchKey autocast_key>
at::Tensor grounding_similarity_autocast(const at::Tensor& groups, const at::Tensor& nouns,
                                         const c10::optional<at::Tensor>& noun_mask, double tau) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  return grounding_similarity(to_float(groups), to_float(nouns), value_or_undefined(noun_mask), tau);
}

template <c10::DispatchKey autocast_key>
void register_autocast(torch::Library& m) {
  m.impl("roi_align", &roi_align_autocast<autocast_key>);
  m.impl("linear_assignment", &linear_assignment_autocast<autocast_key>);
  m.impl("rwa_similarity", &rwa_similarity_autocast<autocast_key>);
  m.impl("grounding_similarity", &grounding_similarity_autocast<autocast_key>);
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, AutocastCUDA, m) { register_autocast<c10::DispatchKey::AutocastCUDA>(m); }
TORCH_LIBRARY_IMPL(kinema, AutocastCPU, m) { register_autocast<c10::DispatchKey::AutocastCPU>(m); }

}  // namespace kinema::ops
