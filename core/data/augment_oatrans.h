#pragma once
// OA-Trans object-guided masking of the anchor frame (paper sec. 3.2;
// docs/objectives.md, "Object-guided masking").
//
// Steps, in order, all drawn from the caller's seeded generator:
//  1. shift: with probability shift_prob the anchor moves to an adjacent frame
//     (previous or next, uniformly among those that exist);
//  2. select: the anchor frame's max_objects most confident boxes, one per
//     class when unique_labels (the paper's "top-N objects with unique object
//     categories");
//  3. drop: round(drop_ratio * n) of them at random, never all;
//  4. halve: a box covering more than large_box_fraction of the frame shrinks
//     to half its width and height around its centre (the paper's "reduce the
//     object size to half" / "crop the central region");
//  5. mask: on the patch grid a patch is kept when it overlaps a kept box
//     (positive-area overlap, i.e. columns floor(x1/p) .. ceil(x2/p)-1 as the
//     authors' code does), every other patch is filled with fill_value.
// Tags are the kept boxes' class names, most confident first, joined by ' '.
// A frame without boxes keeps every patch and has empty tags.
#include "core/data/sample.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kinema::data {

struct ObjectMaskOptions {
  int64_t patch_size = 16;
  int64_t max_objects = 15;
  bool unique_labels = true;
  double drop_ratio = 0.2;
  double shift_prob = 0.5;
  double large_box_fraction = 0.8;
  double fill_value = 0.0;
};

struct ObjectMaskResult {
  at::Tensor frame;        // [C,H,W] the masked anchor frame
  at::Tensor patch_mask;   // [H/p, W/p] bool, true = kept
  std::string tags;        // kept class names joined by ' '
  std::vector<Box> boxes;  // kept boxes in frame-tensor pixels, after halving
  int64_t anchor = -1;     // frame index used (after the shift)
};

// Patches of a height x width frame overlapped by any box (pixels) -> [H/p, W/p] bool.
at::Tensor patch_mask_from_boxes(const std::vector<Box>& boxes, int64_t height, int64_t width,
                                 int64_t patch_size);

// The loader's path (decode only the anchor): the detection frame nearest to a
// frame index (e.g. the centre of the sampled clip; ties -> the earlier one),
// then the shift of step 1 over the detection frames, then steps 2-5 on the one
// decoded frame.
int64_t nearest_detection_frame(const std::vector<FrameBoxes>& detections, double frame_index);
int64_t shift_anchor(int64_t anchor, int64_t count, double shift_prob, std::mt19937_64& rng);
// frame [C,H,W]; det in pixels of det.image_w x det.image_h (0 = the frame's
// size). anchor in the result is -1.
ObjectMaskResult mask_anchor_frame(const at::Tensor& frame, const FrameBoxes& det,
                                   const ObjectMaskOptions& options, std::mt19937_64& rng);
ObjectMaskResult mask_anchor_frame(const at::Tensor& frame, const FrameBoxes& det,
                                   const ObjectMaskOptions& options, uint64_t seed);

// All steps on frames already decoded: shift_anchor(anchor, F) then
// mask_anchor_frame(frames[anchor']).
// frames [F,C,H,W] (any dtype; H, W multiples of patch_size); detections[f] are
// frame f's boxes in pixels of an image_w x image_h image (0 = the tensor's own
// size), rescaled to the tensor; anchor in [0, F).
ObjectMaskResult object_guided_mask(const at::Tensor& frames, const std::vector<FrameBoxes>& detections,
                                    int64_t anchor, const ObjectMaskOptions& options,
                                    std::mt19937_64& rng);
ObjectMaskResult object_guided_mask(const at::Tensor& frames, const std::vector<FrameBoxes>& detections,
                                    int64_t anchor, const ObjectMaskOptions& options, uint64_t seed);

}  // namespace kinema::data
