#pragma once
// Position-embedding surgery shared by the encoders (inputs of another size
// than the configured one) and the weight loader (checkpoints trained at
// another resolution or frame count). All functions are pure and differentiable.
#include <ATen/ATen.h>

#include <string>

namespace kinema::models {

// Spatial resampling of a ViT position embedding, as timm's
// resample_abs_pos_embed: the first `num_prefix_tokens` rows ([CLS]) are kept,
// the grid rows are reshaped to old_h x old_w, interpolated to new_h x new_w
// ("bicubic" or "bilinear", align_corners=false) and flattened back.
// pos: [L, D] or [1, L, D] (CLIP / timm layouts); the result keeps the rank.
// old_h/old_w <= 0: a square grid is inferred from L - num_prefix_tokens.
at::Tensor resize_spatial_pos_embed(const at::Tensor& pos, int64_t new_h, int64_t new_w,
                                    int64_t num_prefix_tokens = 1,
                                    const std::string& mode = "bicubic", int64_t old_h = -1,
                                    int64_t old_w = -1);

// Temporal resampling of a learned time embedding [T, D] or [1, T, D] to
// new_t rows: "linear" (align_corners=false), "nearest", or "pad" (keep the
// first min(T, new_t) rows, fill the rest with zeros — TimeSformer's choice
// when a checkpoint has fewer frames).
at::Tensor resize_temporal_pos_embed(const at::Tensor& time, int64_t new_t,
                                     const std::string& mode = "linear");

// Inflates a 2-D patch-embedding kernel [D, C, p, p] to a tubelet kernel
// [D, C, t, p, p] (I3D): "average" repeats it over time divided by t (a static
// clip gives the 2-D response), "center" puts it at the middle slice, zeros
// elsewhere.
at::Tensor inflate_patch_weight(const at::Tensor& weight, int64_t t,
                                const std::string& mode = "average");

}  // namespace kinema::models
