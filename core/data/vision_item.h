#pragma once
// The box- and region-based parts of a recipe item (recipe_item.h), as pure
// functions of the sample's annotations and the frames the video item sampled:
//  * detections (STOA): each sampled frame takes the boxes of the nearest
//    annotated / detected frame, normalised to the output crop;
//  * regions (DemoVLP): pre-extracted region features of up to `frames` region
//    files, top-k boxes each, with the 7-d location feature;
//  * the OA-Trans anchor frame choice (the masking itself is augment_oatrans.h).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/data/sample.h"
#include "core/data/video_sampling.h"
#include "core/data/video_transform.h"

namespace kinema::data {

// Where boxes land in the output frames: the source video size and, when the
// video was decoded, the resize + crop window (crop.out_w == 0: no crop known,
// boxes are only normalised by their image size).
struct FrameGeometry {
  int64_t video_w = 0, video_h = 0;
  CropWindow crop;
};

// The detection frame nearest to video frame `frame_index` (ties: the earlier
// one in the list). A frame's position is its frame_index when known, else its
// time_s * fps (fps > 0), else its place in the list. -1 when there is none.
int64_t nearest_frame(const std::vector<FrameBoxes>& frames, double frame_index, double fps);

// A box in pixels of an image_w x image_h image (0: the video's size) mapped to
// [0,1] coordinates of the output frame: normalised, then through the crop
// window and clamped. Returns false when nothing of the box is left inside.
bool normalise_box(const Box& box, int64_t image_w, int64_t image_h, const FrameGeometry& geometry,
                   Box& out);

struct DetectionTensors {
  at::Tensor boxes;    // [T,K,4] float32, x1,y1,x2,y2 in [0,1]; zeros when invalid
  at::Tensor classes;  // [T,K] int64, -1 = no box
  at::Tensor scores;   // [T,K] float32, 0 when invalid
};

// The top-k boxes (by score, after normalisation) of the detection frame
// nearest to each sampled frame. No detection frames: every row invalid.
DetectionTensors detections_at_frames(const std::vector<FrameBoxes>& frames,
                                      const std::vector<int64_t>& frame_indices, double fps,
                                      const FrameGeometry& geometry, int64_t k, bool unique_labels);

// Without a decoded video: `count` of the detection frames, chosen as the
// sampling options choose video frames (Uniform / Rand / HeadTail over the
// list; other strategies act as Uniform), returned as list positions.
std::vector<int64_t> pick_list_positions(int64_t list_size, int64_t count,
                                         FrameSampling strategy, uint64_t seed);

struct RegionTensors {
  at::Tensor features;     // [N,D] float32, N = frames * k
  at::Tensor locations;    // [N,7] float32 (box_location_7d), zeros when invalid
  at::Tensor frame_index;  // [N] int64, 0-based order of the region file among those used
  at::Tensor region_mask;  // [N] bool, true = a real region
};

// Region files of `dir` (list_region_frames): all of them when there are at
// most `frames`, else `frames` chosen by pick_list_positions; the top-k boxes
// of each. dim = the feature size to pad with when the sample has no region
// files (0: take it from the files; then a sample without files raises, and the
// loader replaces it). Files of the wrong feature size raise.
RegionTensors region_tensors(const std::string& dir, int64_t frames, int64_t k, int64_t dim,
                             FrameSampling strategy, uint64_t seed);

}  // namespace kinema::data
