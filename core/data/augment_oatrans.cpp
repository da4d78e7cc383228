// OA-Trans object-guided masking.
#include "core/data/augment_oatrans.h"

#include "core/data/augment_random.h"
#include "core/data/detections.h"
#include "core/data/vg_vocab.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kinema::data {

at::Tensor patch_mask_from_boxes(const std::vector<Box>& boxes, int64_t height, int64_t width,
                                 int64_t patch_size) {
  TORCH_CHECK(patch_size > 0 && height % patch_size == 0 && width % patch_size == 0,
              "kinema::data::object_guided_mask: frame ", height, "x", width,
              " is not a whole number of ", patch_size, "-pixel patches");
  const int64_t rows = height / patch_size, cols = width / patch_size;
  at::Tensor mask = at::zeros({rows, cols}, at::kBool);
  auto m = mask.accessor<bool, 2>();
  const double p = static_cast<double>(patch_size);
  for (const Box& b : boxes) {
    // Patches [c*p, (c+1)*p) that overlap [x1, x2) with positive area.
    const int64_t c0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.x1 / p)));
    const int64_t c1 = std::min<int64_t>(cols, static_cast<int64_t>(std::ceil(b.x2 / p)));
    const int64_t r0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.y1 / p)));
    const int64_t r1 = std::min<int64_t>(rows, static_cast<int64_t>(std::ceil(b.y2 / p)));
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) m[r][c] = true;
  }
  return mask;
}

int64_t nearest_detection_frame(const std::vector<FrameBoxes>& detections, double frame_index) {
  TORCH_CHECK(!detections.empty(), "kinema::data::nearest_detection_frame: no detection frames");
  int64_t best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < detections.size(); ++i) {
    TORCH_CHECK(detections[i].frame_index >= 0, "kinema::data::nearest_detection_frame: detection frame ", i,
                " has no frame_index");
    const double distance = std::abs(static_cast<double>(detections[i].frame_index) - frame_index);
    if (distance < best_distance) {  // ties: the earlier frame
      best_distance = distance;
      best = static_cast<int64_t>(i);
    }
  }
  return best;
}

int64_t shift_anchor(int64_t anchor, int64_t count, double shift_prob, std::mt19937_64& rng) {
  TORCH_CHECK(anchor >= 0 && anchor < count, "kinema::data::object_guided_mask: anchor ", anchor,
              " is outside [0, ", count, ")");
  TORCH_CHECK(shift_prob >= 0 && shift_prob <= 1, "kinema::data::object_guided_mask: shift_prob must be in [0,1]");
  // The coin is always drawn so the stream of draws does not depend on count.
  const bool shift = uniform_unit(rng) < shift_prob;
  if (!shift || count == 1) return anchor;
  if (anchor == 0) return 1;
  if (anchor == count - 1) return anchor - 1;
  return uniform_int(rng, 0, 1) ? anchor + 1 : anchor - 1;
}

ObjectMaskResult object_guided_mask(const at::Tensor& frames, const std::vector<FrameBoxes>& detections,
                                    int64_t anchor, const ObjectMaskOptions& options,
                                    std::mt19937_64& rng) {
  TORCH_CHECK(frames.dim() == 4, "kinema::data::object_guided_mask: frames must be [F,C,H,W], got ",
              frames.sizes());
  const int64_t num_frames = frames.size(0);
  TORCH_CHECK(static_cast<int64_t>(detections.size()) == num_frames,
              "kinema::data::object_guided_mask: ", detections.size(), " detection frames for ",
              num_frames, " frames");
  const int64_t used = shift_anchor(anchor, num_frames, options.shift_prob, rng);
  ObjectMaskResult out = mask_anchor_frame(frames[used], detections[used], options, rng);
  out.anchor = used;
  return out;
}

ObjectMaskResult mask_anchor_frame(const at::Tensor& frame, const FrameBoxes& det,
                                   const ObjectMaskOptions& options, std::mt19937_64& rng) {
  TORCH_CHECK(frame.dim() == 3, "kinema::data::object_guided_mask: the anchor frame must be [C,H,W], got ",
              frame.sizes());
  const int64_t height = frame.size(1), width = frame.size(2);
  TORCH_CHECK(options.drop_ratio >= 0 && options.drop_ratio <= 1 && options.max_objects > 0,
              "kinema::data::object_guided_mask: drop_ratio must be in [0,1] and max_objects positive");
  ObjectMaskResult out;

  // 2. Most confident boxes (unique classes).
  std::vector<int64_t> picked = top_k_indices(det, options.max_objects, options.unique_labels);

  // 3. Drop round(drop_ratio * n), keeping at least one: a random subset, then
  //    back to confidence order.
  const int64_t n = static_cast<int64_t>(picked.size());
  int64_t n_drop = static_cast<int64_t>(std::llround(options.drop_ratio * static_cast<double>(n)));
  n_drop = std::min(n_drop, std::max<int64_t>(n - 1, 0));
  std::vector<int64_t> slots(n);
  for (int64_t i = 0; i < n; ++i) slots[i] = i;
  for (int64_t i = 0; i < n_drop; ++i) std::swap(slots[i], slots[uniform_int(rng, i, n - 1)]);
  std::vector<int64_t> kept_slots(slots.begin() + n_drop, slots.end());
  std::sort(kept_slots.begin(), kept_slots.end());

  // 4. Rescale to the tensor, clip, halve large boxes.
  const double sx = det.image_w > 0 ? static_cast<double>(width) / det.image_w : 1.0;
  const double sy = det.image_h > 0 ? static_cast<double>(height) / det.image_h : 1.0;
  const double frame_area = static_cast<double>(width) * height;
  std::vector<std::string> tags;
  for (const int64_t slot : kept_slots) {
    Box b = det.boxes[picked[slot]];
    double x1 = std::clamp(b.x1 * sx, 0.0, static_cast<double>(width));
    double x2 = std::clamp(b.x2 * sx, 0.0, static_cast<double>(width));
    double y1 = std::clamp(b.y1 * sy, 0.0, static_cast<double>(height));
    double y2 = std::clamp(b.y2 * sy, 0.0, static_cast<double>(height));
    if ((x2 - x1) * (y2 - y1) > options.large_box_fraction * frame_area) {
      const double cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, hw = (x2 - x1) / 4, hh = (y2 - y1) / 4;
      x1 = cx - hw;
      x2 = cx + hw;
      y1 = cy - hh;
      y2 = cy + hh;
    }
    b.x1 = static_cast<float>(x1);
    b.x2 = static_cast<float>(x2);
    b.y1 = static_cast<float>(y1);
    b.y2 = static_cast<float>(y2);
    std::string name = b.name;
    if (name.empty() && b.label >= 0 && b.label < VgVocab::objects_1600().size()) {
      name = VgVocab::objects_1600().name(b.label);
    }
    if (!name.empty()) tags.push_back(name);
    out.boxes.push_back(std::move(b));
  }
  for (size_t i = 0; i < tags.size(); ++i) out.tags += (i ? " " : "") + tags[i];

  // 5. Patch mask and masked frame.
  if (out.boxes.empty()) {
    TORCH_CHECK(height % options.patch_size == 0 && width % options.patch_size == 0,
                "kinema::data::object_guided_mask: frame ", height, "x", width,
                " is not a whole number of ", options.patch_size, "-pixel patches");
    out.patch_mask = at::ones({height / options.patch_size, width / options.patch_size}, at::kBool);
  } else {
    out.patch_mask = patch_mask_from_boxes(out.boxes, height, width, options.patch_size);
  }
  const at::Tensor pixel_keep = out.patch_mask.repeat_interleave(options.patch_size, 0)
                                    .repeat_interleave(options.patch_size, 1)
                                    .to(frame.device());
  out.frame = frame.masked_fill(pixel_keep.logical_not().unsqueeze(0), options.fill_value);
  return out;
}

ObjectMaskResult mask_anchor_frame(const at::Tensor& frame, const FrameBoxes& det,
                                   const ObjectMaskOptions& options, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return mask_anchor_frame(frame, det, options, rng);
}

ObjectMaskResult object_guided_mask(const at::Tensor& frames, const std::vector<FrameBoxes>& detections,
                                    int64_t anchor, const ObjectMaskOptions& options, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return object_guided_mask(frames, detections, anchor, options, rng);
}

}  // namespace kinema::data
