// Argument checks for the pairwise similarity operators (rwa_similarity,
// grounding_similarity): token tensors [B, N, d] and optional bool masks [B, N].
#pragma once

#include "ops/checks.h"

#include <string>

#include <ATen/ATen.h>

namespace kinema::ops::detail {

inline void check_tokens(const char* op, const char* arg, const at::Tensor& tokens,
                         const char* ref_arg, const at::Tensor& ref) {
  check_tensor(op, arg, tokens, 3);
  check_floating(op, arg, tokens);
  if (&tokens == &ref) return;
  check_same_device(op, arg, tokens, ref_arg, ref);
  check_same_dtype(op, arg, tokens, ref_arg, ref);
  check_size(op, arg, tokens, 2, ref.size(2),
             (std::string("the embedding size of '") + ref_arg + "'").c_str());
}

// The mask as 0/1 in the tokens' dtype; absent means all tokens are valid.
inline at::Tensor mask_as_weights(const char* op, const char* arg,
                                  const c10::optional<at::Tensor>& mask, const char* tokens_arg,
                                  const at::Tensor& tokens) {
  if (!mask.has_value() || !mask->defined())
    return at::ones({tokens.size(0), tokens.size(1)}, tokens.options());
  check_tensor(op, arg, *mask, 2);
  TORCH_CHECK(mask->scalar_type() == at::kBool, "kinema::", op, ": argument '", arg,
              "' must be a bool tensor (true = valid), got ", mask->scalar_type());
  check_same_device(op, arg, *mask, tokens_arg, tokens);
  TORCH_CHECK(mask->size(0) == tokens.size(0) && mask->size(1) == tokens.size(1), "kinema::", op,
              ": argument '", arg, "' must have shape [", tokens.size(0), ", ", tokens.size(1),
              "] to match '", tokens_arg, "', got ", mask->sizes());
  return mask->to(tokens.scalar_type());
}

}  // namespace kinema::ops::detail
