#pragma once
// Geometry of "resize the shorter side, then crop" and the per-batch
// normalisation of uint8 frames. Kept apart from decoding so it can be tested
// (and reused by other readers, e.g. image folders) on its own.
#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace kinema::data {

struct ResizeCrop {
  // Output crop size; <= 0 keeps the source size (no resize, no crop).
  int64_t out_h = 224, out_w = 224;
  // Shorter side after resizing; 0 = just large enough for the crop.
  int64_t short_side = 0;
  bool random_crop = false;  // false: centre crop
};

// Where a frame of src_w x src_h lands: resized to scaled_w x scaled_h, then
// the window [x0, x0+out_w) x [y0, y0+out_h) is kept.
struct CropWindow {
  int64_t scaled_w = 0, scaled_h = 0, x0 = 0, y0 = 0, out_w = 0, out_h = 0;
};

// `crop_seed` drives the random crop offset (one offset per clip, so all T
// frames share it).
CropWindow crop_window(int64_t src_w, int64_t src_h, const ResizeCrop& rc, uint64_t crop_seed);

enum class VideoNorm { None, Clip, ImageNet };
VideoNorm parse_video_norm(const std::string& name);  // "none" | "clip" | "imagenet"

// uint8 [..., 3, H, W] -> float32 (x/255 - mean)/std with the chosen mean/std
// (None: x/255). Applied per batch, after collation.
at::Tensor normalize_video(const at::Tensor& frames, VideoNorm norm);

}  // namespace kinema::data
