// kinema operators, callable from C++ (models/) without going through Lua.
//
// Each function looks up the registered operator kinema::NAME in the c10
// dispatcher and calls it, so the backend (CPU/CUDA) is picked by the inputs'
// device and autograd records the call exactly as it would from Lua
// (kinema.ops.NAME) or Python (torch.ops.kinema.NAME). Semantics follow
// docs/objectives.md; argument names and defaults match the schemas in
// ops/registration.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace kinema::ops {

// torchvision's roi_align: input [N,C,H,W], boxes [K,5] rows (batch index,
// x1, y1, x2, y2) in input coordinates before spatial_scale. Returns
// [K, C, pooled_height, pooled_width]. sampling_ratio <= 0 means adaptive
// (ceil(box size / bin count) samples per bin), aligned shifts by -0.5 pixel.
at::Tensor roi_align(const at::Tensor& input, const at::Tensor& boxes, int64_t pooled_height,
                     int64_t pooled_width, double spatial_scale = 1.0,
                     int64_t sampling_ratio = -1, bool aligned = false);

// Batched rectangular assignment. cost [B,R,C] float/double; row_counts and
// col_counts [B] int64 give the valid top-left R_b x C_b block of each sample.
// Returns (rows, cols), both [B, P] int64 with P = min(R, C): the matched pairs
// of sample b sorted by row, padded with -1 after min(R_b, C_b) pairs. The total
// cost equals scipy.optimize.linear_sum_assignment's. No gradient.
std::tuple<at::Tensor, at::Tensor> linear_assignment(const at::Tensor& cost,
                                                     const at::Tensor& row_counts,
                                                     const at::Tensor& col_counts,
                                                     bool maximize = false);

// DemoVLP region-word alignment for all (video, caption) pairs.
// regions [Bv,N,d], region_mask [Bv,N] bool (true = valid), words [Bt,L,d],
// word_mask [Bt,L] bool. Returns S [Bv,Bt] (region -> word) and S' [Bt,Bv]
// (word -> region). Pairs with no valid region or no valid word score 0.
std::tuple<at::Tensor, at::Tensor> rwa_similarity(const at::Tensor& regions,
                                                  const at::Tensor& region_mask,
                                                  const at::Tensor& words,
                                                  const at::Tensor& word_mask,
                                                  double lambda = 1.0);

// S-ViLM grounding similarity G [Bv,Bt]: groups [Bv,M,d], nouns [Bt,K,d],
// noun_mask [Bt,K] bool (true = valid). A caption with no valid noun scores 0.
at::Tensor grounding_similarity(const at::Tensor& groups, const at::Tensor& nouns,
                                const at::Tensor& noun_mask, double tau = 1.0);

// GroupViT hard assignment: one-hot of argmax(logits + gumbel noise) along dim
// in the forward, gradient of softmax((logits + noise) / tau) in the backward
// (straight-through). Noise comes from the default generator.
at::Tensor gumbel_hard_assign(const at::Tensor& logits, double tau = 1.0, int64_t dim = -1);

}  // namespace kinema::ops
