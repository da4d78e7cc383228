#include "core/data/video_transform.h"

#include <algorithm>
#include <cmath>

#include "core/data/video_sampling.h"

namespace kinema::data {

CropWindow crop_window(int64_t src_w, int64_t src_h, const ResizeCrop& rc, uint64_t crop_seed) {
  TORCH_CHECK(src_w > 0 && src_h > 0, "kinema::data::crop_window: bad source size ", src_w, "x",
              src_h);
  CropWindow w;
  if (rc.out_h <= 0 || rc.out_w <= 0) {
    w.scaled_w = w.out_w = src_w;
    w.scaled_h = w.out_h = src_h;
    return w;
  }
  const int64_t target_short = rc.short_side > 0 ? rc.short_side : std::max(rc.out_h, rc.out_w);
  const double scale = static_cast<double>(target_short) / std::min(src_w, src_h);
  // The shorter side gets exactly target_short; the other side is rounded, and
  // never smaller than the crop.
  w.scaled_w = src_w <= src_h ? target_short : std::llround(src_w * scale);
  w.scaled_h = src_w <= src_h ? std::llround(src_h * scale) : target_short;
  w.scaled_w = std::max(w.scaled_w, rc.out_w);
  w.scaled_h = std::max(w.scaled_h, rc.out_h);
  w.out_w = rc.out_w;
  w.out_h = rc.out_h;
  if (rc.random_crop) {
    SplitMix64 rng(crop_seed);
    w.x0 = rng.uniform_int(0, w.scaled_w - w.out_w);
    w.y0 = rng.uniform_int(0, w.scaled_h - w.out_h);
  } else {
    w.x0 = (w.scaled_w - w.out_w) / 2;
    w.y0 = (w.scaled_h - w.out_h) / 2;
  }
  return w;
}

VideoNorm parse_video_norm(const std::string& name) {
  if (name == "none") return VideoNorm::None;
  if (name == "clip") return VideoNorm::Clip;
  if (name == "imagenet") return VideoNorm::ImageNet;
  TORCH_CHECK(false, "kinema::data::normalize_video: unknown normalisation '", name,
              "' (expected none, clip or imagenet)");
}

at::Tensor normalize_video(const at::Tensor& frames, VideoNorm norm) {
  TORCH_CHECK(frames.scalar_type() == at::kByte,
              "kinema::data::normalize_video: argument 'frames' must be uint8, got ",
              frames.scalar_type());
  TORCH_CHECK(frames.dim() >= 3 && frames.size(-3) == 3,
              "kinema::data::normalize_video: argument 'frames' must be [..., 3, H, W], got ",
              frames.sizes());
  at::Tensor x = frames.to(at::kFloat).div_(255.0);
  if (norm == VideoNorm::None) return x;
  // CLIP's and torchvision's ImageNet statistics.
  static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  static const float inet_mean[3] = {0.485f, 0.456f, 0.406f};
  static const float inet_std[3] = {0.229f, 0.224f, 0.225f};
  const float* m = norm == VideoNorm::Clip ? clip_mean : inet_mean;
  const float* s = norm == VideoNorm::Clip ? clip_std : inet_std;
  auto shape = std::vector<int64_t>(frames.dim(), 1);
  shape[frames.dim() - 3] = 3;
  at::Tensor mean = at::tensor({m[0], m[1], m[2]}).view(shape);
  at::Tensor stdv = at::tensor({s[0], s[1], s[2]}).view(shape);
  return x.sub_(mean).div_(stdv);
}

}  // namespace kinema::data
