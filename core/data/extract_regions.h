#pragma once
// Region-feature extraction (the `kinema extract-regions` command): a backbone
// turns frames into a feature map, RoIAlign pools every box, the mean over the
// pooled bins is the box's feature, and each frame is written as a
// bottom-up-attention style .npz that read_butd_npz / read_butd_frames read back:
//   x [N,C] float32, bbox [N,4] float32 (x1y1x2y2 pixels of image_w x image_h),
//   num_bbox, image_h, image_w (0-d int64), objects_id [N] int64 (Visual Genome
//   ids, -1 unknown), objects_conf [N] float32.
// The backbone is a TorchScript module mapping float [N,3,H,W] (RGB in [0,1],
// normalised by mean/std) to [N,C,h,w]; the RoIAlign scale is h/H (it must
// equal w/W).
#include "core/data/sample.h"

#include <ATen/ATen.h>
#include <torch/script.h>

#include <map>
#include <string>
#include <vector>

namespace kinema::data {

struct RegionExtractOptions {
  int64_t output_size = 7;     // RoIAlign bins per side
  int64_t sampling_ratio = 2;  // samples per bin side (<= 0: adaptive)
  bool aligned = true;         // half-pixel offset (Detectron2's ROIAlignV2)
  std::vector<double> mean = {0.485, 0.456, 0.406};
  std::vector<double> std = {0.229, 0.224, 0.225};
  int64_t max_boxes = 100;     // most confident boxes kept per frame (<= 0: all)
  int64_t batch_frames = 8;    // frames per backbone call
};

class RegionBackbone {
 public:
  // Loads a TorchScript archive (torch.jit.save) and puts it in eval mode.
  explicit RegionBackbone(const std::string& torchscript_path,
                          c10::Device device = c10::Device(c10::kCPU));
  // images float [N,3,H,W] -> feature map [N,C,h,w].
  at::Tensor features(const at::Tensor& images);
  const c10::Device& device() const { return device_; }

 private:
  std::string path_;
  torch::jit::Module module_;
  c10::Device device_;
};

// frames uint8 [T,3,H,W] RGB; boxes[t] in pixels of an image_w x image_h image
// (0 = the frame tensor's size). Returns one .npz map per frame (layout above).
std::vector<std::map<std::string, at::Tensor>> extract_region_features(
    RegionBackbone& backbone, const at::Tensor& frames, const std::vector<FrameBoxes>& boxes,
    const RegionExtractOptions& options = {});

// The whole command for one video: decodes the frames named by each
// detections[i].frame_index (>= 0) at the source resolution, extracts their
// region features and writes {out_dir}/{i}.npz. Boxes are in pixels of the
// source video (image_w/h 0 = the decoded size). Returns the frames written.
// Decoding errors raise kinema::data::VideoError naming the file.
int64_t extract_video_regions(RegionBackbone& backbone, const std::string& video_path,
                              const std::vector<FrameBoxes>& detections, const std::string& out_dir,
                              const RegionExtractOptions& options = {});

// Writes maps[i] to {out_dir}/{i}.npz (creating out_dir), the per-video layout
// read_butd_frames expects. Returns the number of files written.
int64_t write_region_frames(const std::string& out_dir,
                            const std::vector<std::map<std::string, at::Tensor>>& maps);

}  // namespace kinema::data
