// Region-feature extraction with a TorchScript backbone and kinema::ops::roi_align.
#include "core/data/extract_regions.h"

#include "core/data/detections.h"
#include "core/data/formats.h"
#include "core/io/npz.h"
#include "ops/ops.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <filesystem>

namespace kinema::data {

RegionBackbone::RegionBackbone(const std::string& torchscript_path, c10::Device device)
    : path_(torchscript_path), device_(device) {
  try {
    module_ = torch::jit::load(torchscript_path, device);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "kinema::data::RegionBackbone: cannot load TorchScript module '", torchscript_path,
                "': ", e.what_without_backtrace());
  }
  module_.eval();
}

at::Tensor RegionBackbone::features(const at::Tensor& images) {
  at::NoGradGuard no_grad;
  const c10::IValue out = module_.forward({images.to(device_)});
  TORCH_CHECK(out.isTensor(), "kinema::data::RegionBackbone: '", path_,
              "' must return one tensor [N,C,h,w], got ", out.tagKind());
  const at::Tensor map = out.toTensor();
  TORCH_CHECK(map.dim() == 4 && map.size(0) == images.size(0), "kinema::data::RegionBackbone: '", path_,
              "' returned shape ", map.sizes(), " for input ", images.sizes(), "; expected [N,C,h,w]");
  return map;
}

std::vector<std::map<std::string, at::Tensor>> extract_region_features(
    RegionBackbone& backbone, const at::Tensor& frames, const std::vector<FrameBoxes>& boxes,
    const RegionExtractOptions& options) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(1) == 3 && frames.scalar_type() == at::kByte,
              "kinema::data::extract_region_features: frames must be uint8 [T,3,H,W], got ",
              frames.scalar_type(), " ", frames.sizes());
  const int64_t num_frames = frames.size(0), height = frames.size(2), width = frames.size(3);
  TORCH_CHECK(static_cast<int64_t>(boxes.size()) == num_frames, "kinema::data::extract_region_features: ",
              boxes.size(), " box lists for ", num_frames, " frames");
  TORCH_CHECK(options.mean.size() == 3 && options.std.size() == 3,
              "kinema::data::extract_region_features: mean and std need 3 values");
  TORCH_CHECK(options.batch_frames > 0 && options.output_size > 0,
              "kinema::data::extract_region_features: batch_frames and output_size must be positive");
  const c10::Device device = backbone.device();
  const at::Tensor mean = at::tensor(options.mean, at::kFloat).view({1, 3, 1, 1}).to(device);
  const at::Tensor std = at::tensor(options.std, at::kFloat).view({1, 3, 1, 1}).to(device);

  std::vector<std::map<std::string, at::Tensor>> out(num_frames);
  for (int64_t begin = 0; begin < num_frames; begin += options.batch_frames) {
    const int64_t count = std::min(options.batch_frames, num_frames - begin);
    const at::Tensor images =
        (frames.narrow(0, begin, count).to(device).to(at::kFloat).div(255.0) - mean) / std;
    const at::Tensor map = backbone.features(images).to(at::kFloat);
    const double scale = static_cast<double>(map.size(2)) / static_cast<double>(height);
    TORCH_CHECK(std::abs(static_cast<double>(map.size(3)) / width - scale) < 1e-6,
                "kinema::data::extract_region_features: feature map ", map.size(2), "x", map.size(3),
                " is not one scale of the ", height, "x", width, " frame");

    // All boxes of the batch in one RoIAlign call: rows (frame, x1, y1, x2, y2).
    std::vector<float> rois;
    std::vector<std::vector<int64_t>> picked(count);
    for (int64_t t = 0; t < count; ++t) {
      const FrameBoxes& fb = boxes[begin + t];
      const int64_t k = options.max_boxes > 0 ? options.max_boxes : static_cast<int64_t>(fb.boxes.size());
      picked[t] = top_k_indices(fb, k);
      const double sx = fb.image_w > 0 ? static_cast<double>(width) / fb.image_w : 1.0;
      const double sy = fb.image_h > 0 ? static_cast<double>(height) / fb.image_h : 1.0;
      for (const int64_t i : picked[t]) {
        const Box& b = fb.boxes[i];
        rois.insert(rois.end(), {static_cast<float>(t), static_cast<float>(b.x1 * sx),
                                 static_cast<float>(b.y1 * sy), static_cast<float>(b.x2 * sx),
                                 static_cast<float>(b.y2 * sy)});
      }
    }
    at::Tensor pooled;
    const int64_t total = static_cast<int64_t>(rois.size() / 5);
    if (total > 0) {
      const at::Tensor roi_tensor = at::from_blob(rois.data(), {total, 5}, at::kFloat).clone().to(device);
      pooled = ops::roi_align(map, roi_tensor, options.output_size, options.output_size, scale,
                              options.sampling_ratio, options.aligned)
                   .mean({2, 3})
                   .cpu();
    }

    int64_t row = 0;
    for (int64_t t = 0; t < count; ++t) {
      const FrameBoxes& fb = boxes[begin + t];
      const int64_t n = static_cast<int64_t>(picked[t].size());
      at::Tensor bbox = at::empty({n, 4}, at::kFloat);
      at::Tensor ids = at::empty({n}, at::kLong);
      at::Tensor conf = at::empty({n}, at::kFloat);
      for (int64_t j = 0; j < n; ++j) {
        const Box& b = fb.boxes[picked[t][j]];
        bbox[j] = at::tensor({b.x1, b.y1, b.x2, b.y2}, at::kFloat);
        ids[j] = b.label;
        conf[j] = b.score;
      }
      auto& m = out[begin + t];
      m["x"] = n > 0 ? pooled.narrow(0, row, n).contiguous() : at::zeros({0, map.size(1)}, at::kFloat);
      m["bbox"] = bbox;
      m["num_bbox"] = at::scalar_tensor(n, at::kLong);
      m["image_h"] = at::scalar_tensor(fb.image_h > 0 ? fb.image_h : height, at::kLong);
      m["image_w"] = at::scalar_tensor(fb.image_w > 0 ? fb.image_w : width, at::kLong);
      m["objects_id"] = ids;
      m["objects_conf"] = conf;
      row += n;
    }
  }
  return out;
}

int64_t write_region_frames(const std::string& out_dir,
                            const std::vector<std::map<std::string, at::Tensor>>& maps) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  TORCH_CHECK(!ec, "kinema::data::write_region_frames: cannot create '", out_dir, "': ", ec.message());
  for (size_t i = 0; i < maps.size(); ++i) {
    io::save_npz(join_path(out_dir, std::to_string(i) + ".npz"), maps[i], /*compress=*/true);
  }
  return static_cast<int64_t>(maps.size());
}

}  // namespace kinema::data
