#include "models/pos_embed.h"

#include <torch/torch.h>

#include <cmath>

namespace kinema::models {

namespace F = torch::nn::functional;

at::Tensor resize_spatial_pos_embed(const at::Tensor& pos, int64_t new_h, int64_t new_w,
                                    int64_t num_prefix_tokens, const std::string& mode,
                                    int64_t old_h, int64_t old_w) {
  const char* op = "kinema::models::resize_spatial_pos_embed";
  TORCH_CHECK(pos.dim() == 2 || (pos.dim() == 3 && pos.size(0) == 1), op,
              ": argument 'pos' must be [L, D] or [1, L, D], got ", pos.sizes());
  TORCH_CHECK(new_h > 0 && new_w > 0, op, ": arguments 'new_h'/'new_w' must be positive");
  TORCH_CHECK(mode == "bicubic" || mode == "bilinear", op,
              ": argument 'mode' must be \"bicubic\" or \"bilinear\", got \"", mode, "\"");
  at::Tensor p = pos.dim() == 3 ? pos[0] : pos;
  const int64_t length = p.size(0), dim = p.size(1);
  TORCH_CHECK(num_prefix_tokens >= 0 && num_prefix_tokens <= length, op,
              ": argument 'num_prefix_tokens' (", num_prefix_tokens, ") exceeds the ", length,
              " rows of 'pos'");
  const int64_t grid = length - num_prefix_tokens;
  if (old_h <= 0 || old_w <= 0) {
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(grid))));
    TORCH_CHECK(side * side == grid, op, ": ", grid,
                " grid rows are not a square; pass 'old_h' and 'old_w'");
    old_h = old_w = side;
  }
  TORCH_CHECK(old_h * old_w == grid, op, ": old grid ", old_h, "x", old_w, " does not match ",
              grid, " grid rows");
  at::Tensor prefix = p.narrow(0, 0, num_prefix_tokens);
  at::Tensor out;
  if (old_h == new_h && old_w == new_w) {
    out = p;
  } else {
    // Interpolate in float32 at least (bicubic has no half kernel on CPU).
    const auto dtype = p.scalar_type();
    at::Tensor g = p.narrow(0, num_prefix_tokens, grid)
                       .to(dtype == at::kDouble ? at::kDouble : at::kFloat)
                       .reshape({1, old_h, old_w, dim})
                       .permute({0, 3, 1, 2});
    auto opts = F::InterpolateFuncOptions()
                    .size(std::vector<int64_t>{new_h, new_w})
                    .align_corners(false);
    if (mode == "bicubic") {
      opts.mode(torch::kBicubic);
    } else {
      opts.mode(torch::kBilinear);
    }
    g = F::interpolate(g, opts).permute({0, 2, 3, 1}).reshape({new_h * new_w, dim}).to(dtype);
    out = at::cat({prefix, g}, 0);
  }
  return pos.dim() == 3 ? out.unsqueeze(0) : out;
}

at::Tensor resize_temporal_pos_embed(const at::Tensor& time, int64_t new_t, const std::string& mode) {
  const char* op = "kinema::models::resize_temporal_pos_embed";
  TORCH_CHECK(time.dim() == 2 || (time.dim() == 3 && time.size(0) == 1), op,
              ": argument 'time' must be [T, D] or [1, T, D], got ", time.sizes());
  TORCH_CHECK(new_t > 0, op, ": argument 'new_t' must be positive, got ", new_t);
  at::Tensor t = time.dim() == 3 ? time[0] : time;
  const int64_t old_t = t.size(0), dim = t.size(1);
  at::Tensor out;
  if (old_t == new_t) {
    out = t;
  } else if (mode == "pad") {
    const int64_t keep = std::min(old_t, new_t);
    out = at::cat({t.narrow(0, 0, keep), at::zeros({new_t - keep, dim}, t.options())}, 0);
  } else if (mode == "linear" || mode == "nearest") {
    const auto dtype = t.scalar_type();
    at::Tensor g = t.to(dtype == at::kDouble ? at::kDouble : at::kFloat).t().unsqueeze(0);
    auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{new_t});
    if (mode == "linear") {
      opts.mode(torch::kLinear).align_corners(false);
    } else {
      opts.mode(torch::kNearest);
    }
    out = F::interpolate(g, opts)[0].t().contiguous().to(dtype);
  } else {
    TORCH_CHECK(false, op, ": argument 'mode' must be \"linear\", \"nearest\" or \"pad\", got \"",
                mode, "\"");
  }
  return time.dim() == 3 ? out.unsqueeze(0) : out;
}

at::Tensor inflate_patch_weight(const at::Tensor& weight, int64_t t, const std::string& mode) {
  const char* op = "kinema::models::inflate_patch_weight";
  TORCH_CHECK(weight.dim() == 4, op, ": argument 'weight' must be [D, C, p, p], got ",
              weight.sizes());
  TORCH_CHECK(t > 0, op, ": argument 't' must be positive, got ", t);
  if (mode == "average") return weight.unsqueeze(2).repeat({1, 1, t, 1, 1}) / static_cast<double>(t);
  TORCH_CHECK(mode == "center", op, ": argument 'mode' must be \"average\" or \"center\", got \"",
              mode, "\"");
  at::Tensor out = at::zeros({weight.size(0), weight.size(1), t, weight.size(2), weight.size(3)},
                             weight.options());
  out.select(2, t / 2).copy_(weight);
  return out;
}

}  // namespace kinema::models
