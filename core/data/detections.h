#pragma once
// Object detections per frame, in the three formats the anchors' pipelines
// produce, plus the top-K selection / padding and DemoVLP's 7-d box location
// feature used downstream.
//
// Formats:
//  - bottom-up-attention .npz, one file per frame (bottom-up-attention.pytorch's
//    extract_features layout): x [N,D] region features, bbox [N,4] x1y1x2y2 in
//    pixels, num_bbox, image_h, image_w, and the detector's classes as top-level
//    objects_id [N] (0-based Visual Genome ids) + objects_conf [N] (kinema synth
//    writes them as cls / conf, ids of its own class list), or cls_prob
//    [N,C] class probabilities (C = 1601 includes the background column 0,
//    C = 1600 does not; id = argmax over the object classes, conf = its prob).
//    The original tool stores objects_id/objects_conf inside a pickled 'info'
//    dict (an object array): such files are read too (detections_pickle.h).
//  - VinVL predictions: a JSON object {"objects": [{"class", "rect": [x1,y1,x2,y2],
//    "conf"}], "image_h"?, "image_w"?} per frame; a file holds one such object,
//    a JSON list of them, or VinVL's predictions.tsv lines "key \t {json}".
//  - the plain per-frame JSON {"frames": [{"frame_index", "time", "image_w",
//    "image_h", "boxes": [[x1,y1,x2,y2], ...], "labels": [...], "scores": [...]}]}
//    where labels are class names or Visual Genome ids; a top-level "classes"
//    list (kinema synth) replaces the vocabulary for both.
#include "core/data/sample.h"
#include "core/data/vg_vocab.h"

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace kinema::data {

// One frame's boxes and, when the source carries them, region features [N,D]
// aligned with boxes.boxes.
struct FrameDetections {
  FrameBoxes boxes;
  at::Tensor features;  // undefined when the source has none
};

// One bottom-up-attention .npz frame. Box names come from `vocab`.
FrameDetections read_butd_npz(const std::string& path,
                              const VgVocab& vocab = VgVocab::objects_1600());

// Per-frame .npz files {dir}/{index}.npz (the OA-Trans / DemoVLP layout) for the
// given frame indices; frame_index of each result is set to that index.
std::vector<FrameDetections> read_butd_frames(const std::string& dir,
                                              const std::vector<int64_t>& frame_indices,
                                              const VgVocab& vocab = VgVocab::objects_1600());

// The region files of a video directory as (frame index, path), sorted by
// index: "{i}.npz" (OA-Trans / DemoVLP, i = sampled-frame order) and
// "frame_{i}.npz" (kinema synth, i = video frame index).
std::vector<std::pair<int64_t, std::string>> list_region_frames(const std::string& dir);

// Number of consecutive frame files 0.npz, 1.npz, ... in dir (0 if none).
int64_t count_butd_frames(const std::string& dir);

// VinVL predictions (see above), frames in file order.
std::vector<FrameBoxes> read_vinvl(const std::string& path,
                                   const VgVocab& vocab = VgVocab::objects_1600());

// The plain per-frame JSON (see above).
std::vector<FrameBoxes> read_frame_boxes_json(const std::string& path,
                                              const VgVocab& vocab = VgVocab::objects_1600());

// The detections of one video in whichever layout `path` holds: a folder of
// bottom-up-attention frames ({i}.npz or frame_{i}.npz, i = the video frame
// index), VinVL predictions.tsv (a key ending in a number gives the frame
// index), a JSON object with "frames" (the plain layout above), or a VinVL-style
// JSON list of frames [{"frame": i, "objects": [{"class", "rect", "conf"}],
// "image_w"?, "image_h"?}] (or one such object). Malformed input raises naming
// the file and the field.
std::vector<FrameBoxes> read_video_detections(const std::string& path,
                                              const VgVocab& vocab = VgVocab::objects_1600());

// Indices of the k most confident boxes (descending score, ties in input
// order). unique_labels keeps only the most confident box of each class (the
// OA-Trans "top-N objects with unique categories"; boxes with label -1 are
// compared by name).
std::vector<int64_t> top_k_indices(const FrameBoxes& frame, int64_t k, bool unique_labels = false);

// DemoVLP's location feature of boxes [..., 4] (x1,y1,x2,y2 pixels) in an image
// of image_w x image_h: [..., 7] = (x1/W, y1/H, x2/W, y2/H, w/W, h/H, w*h/(W*H)).
at::Tensor box_location_7d(const at::Tensor& boxes, double image_w, double image_h);

// Top-K boxes of each frame padded to K (padding rows are zero, label -1,
// valid false).
struct PaddedDetections {
  at::Tensor boxes;     // [F,K,4] float32, pixels
  at::Tensor location;  // [F,K,7] float32 (box_location_7d with each frame's size)
  at::Tensor labels;    // [F,K] int64
  at::Tensor scores;    // [F,K] float32
  at::Tensor valid;     // [F,K] bool
  at::Tensor features;  // [F,K,D] float32 when every frame has features, else undefined
};
PaddedDetections pad_top_k(const std::vector<FrameDetections>& frames, int64_t k,
                           bool unique_labels = false);
PaddedDetections pad_top_k(const std::vector<FrameBoxes>& frames, int64_t k,
                           bool unique_labels = false);

}  // namespace kinema::data
