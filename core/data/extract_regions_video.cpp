// extract_video_regions: decode the detected frames, then extract and write.
#include "core/data/extract_regions.h"

#include "core/data/video_reader.h"

namespace kinema::data {

int64_t extract_video_regions(RegionBackbone& backbone, const std::string& video_path,
                              const std::vector<FrameBoxes>& detections, const std::string& out_dir,
                              const RegionExtractOptions& options) {
  std::vector<int64_t> indices;
  indices.reserve(detections.size());
  for (size_t i = 0; i < detections.size(); ++i) {
    TORCH_CHECK(detections[i].frame_index >= 0, "kinema::data::extract_video_regions: detection frame ", i,
                " of '", video_path, "' has no frame_index");
    indices.push_back(detections[i].frame_index);
  }
  DecodeOptions decode;
  decode.resize.out_h = 0;  // source resolution: the boxes are in its pixels
  decode.resize.out_w = 0;
  VideoReader reader(video_path, decode);
  for (const int64_t index : indices) {
    TORCH_CHECK(index < reader.info().num_frames, "kinema::data::extract_video_regions: frame_index ", index,
                " is past the ", reader.info().num_frames, " frames of '", video_path, "'");
  }
  const at::Tensor frames = reader.read_frames(indices);
  return write_region_frames(out_dir, extract_region_features(backbone, frames, detections, options));
}

}  // namespace kinema::data
