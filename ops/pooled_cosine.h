// The engine behind rwa_similarity and grounding_similarity: for every pair
// (i, j) of a "video side" a[i] (Na tokens) and a "text side" b[j] (Nb tokens),
// tokens of one side attend over the other with softmax(scale * cos), the
// attended vectors are compared by cosine with the attending token, and the
// cosines are averaged over the valid attending tokens.
//
//   a_to_b[i, j]: a-tokens attend over b-tokens (DemoVLP region -> word).
//   b_to_a[i, j]: b-tokens attend over a-tokens (DemoVLP word -> region,
//                 S-ViLM grounding with a = groups, b = nouns).
//
// With `threshold`, attention weights not above their mean over the valid
// keys are zeroed, without gradient through the test.
// Pairs are processed in chunks and no [Ba, Bb, Na, *] or [Ba, Bb, *, d]
// tensor is ever built: the attended vector's dot product and norm follow
// from the token dot products and the key side's Gram matrix, so memory
// grows like (Ba*Na + Bb*Nb)*d + Ba*Na*Na + Bb*Nb*Nb plus one chunk. The
// backward recomputes each chunk and applies the chain rule by hand.
#pragma once

#include <ATen/ATen.h>

namespace kinema::ops::detail {

struct PooledCosineOptions {
  double scale = 1.0;      // multiplies the cosine inside the softmax
  bool threshold = false;  // DemoVLP's "keep weights above the mean"
  bool a_to_b = true;      // compute the a -> b direction
  bool b_to_a = true;      // compute the b -> a direction
  // Upper bound on a chunk's Ba*Na*Bb*Nb; 0 = automatic: a 64th of the inputs'
  // elements (a chunk holds ~20 temporaries, so together they stay well under
  // the inputs' size), between 2^12 and 2^21.
  int64_t chunk_elements = 0;
};

// a [Ba,Na,d], b [Bb,Nb,d]; masks [Ba,Na] / [Bb,Nb] in the inputs' dtype (1 =
// valid). Returns {a_to_b, b_to_a}, each [Ba,Bb] or undefined if not asked for.
std::pair<at::Tensor, at::Tensor> pooled_cosine_forward(const at::Tensor& a,
                                                        const at::Tensor& mask_a,
                                                        const at::Tensor& b,
                                                        const at::Tensor& mask_b,
                                                        const PooledCosineOptions& options);

// Gradients of sum(grad_a_to_b * a_to_b + grad_b_to_a * b_to_a) with respect to
// a and b (an undefined grad means zero). Returns {grad_a, grad_b}.
std::pair<at::Tensor, at::Tensor> pooled_cosine_backward(
    const at::Tensor& grad_a_to_b, const at::Tensor& grad_b_to_a, const at::Tensor& a,
    const at::Tensor& mask_a, const at::Tensor& b, const at::Tensor& mask_b,
    const PooledCosineOptions& options);

}  // namespace kinema::ops::detail
