#include "core/data/recipe_item.h"

#include <algorithm>
#include <cmath>

#include <c10/util/Exception.h>

#include "core/data/augment_cutpaste.h"
#include "core/data/detections.h"
#include "core/data/video_reader.h"
#include "core/data/vision_item.h"

namespace kinema::data {

namespace {

// Seed streams of one item (the caption and crop streams are those of
// make_video_item_fn / VideoReader::sample, so the video and caption equal the
// standard item's).
constexpr uint64_t kCaptionStream = 0xca9, kCropStream = 0x63726f70, kAnchorStream = 0x616e63,
                   kRegionStream = 0x726567, kDetectionStream = 0x646574;

std::vector<int64_t> sample_indices(const VideoReader& reader, const SamplingOptions& sampling,
                                    uint64_t seed, double start_s, double end_s) {
  try {
    return sample_frame_indices(reader.info().num_frames, reader.info().fps, sampling, seed, start_s, end_s);
  } catch (const c10::Error& e) {
    throw VideoError(reader.path(), e.what_without_backtrace());
  }
}

// The anchor's detection frame with its boxes mapped into crop pixels of the
// decoded frame (mask_anchor_frame works in the frame tensor's pixels).
FrameBoxes anchor_boxes(const FrameBoxes& src, const FrameGeometry& g) {
  FrameBoxes out;
  out.frame_index = src.frame_index;
  out.image_w = g.crop.out_w;
  out.image_h = g.crop.out_h;
  for (const Box& b : src.boxes) {
    Box n;
    if (!normalise_box(b, src.image_w, src.image_h, g, n)) continue;
    n.x1 *= g.crop.out_w, n.x2 *= g.crop.out_w;
    n.y1 *= g.crop.out_h, n.y2 *= g.crop.out_h;
    out.boxes.push_back(n);
  }
  return out;
}

}  // namespace

std::pair<int64_t, int64_t> choose_anchor(const std::vector<FrameBoxes>& frames,
                                          const std::vector<int64_t>& frame_indices, double fps,
                                          double shift_prob, std::mt19937_64& rng) {
  TORCH_CHECK(!frame_indices.empty(), "kinema::data::choose_anchor: no sampled frames");
  const double centre = 0.5 * static_cast<double>(frame_indices.front() + frame_indices.back());
  const int64_t centre_index = frame_indices[frame_indices.size() / 2];
  if (frames.empty()) return {-1, centre_index};
  int64_t a = nearest_frame(frames, centre, fps);
  a = shift_anchor(a, static_cast<int64_t>(frames.size()), shift_prob, rng);
  const FrameBoxes& f = frames[a];
  if (f.frame_index >= 0) return {a, f.frame_index};
  if (f.time_s >= 0 && fps > 0) return {a, std::llround(f.time_s * fps)};
  return {a, centre_index};
}

ItemFn make_recipe_item_fn(RecipeItemOptions options) {
  TORCH_CHECK(options.decode_video || !options.anchor,
              "data.Loader: option 'anchor' needs the video (it cannot be used with video = false)");
  if (options.detections)
    TORCH_CHECK(options.detections->k > 0, "data.Loader: option 'detections.k' must be > 0, got ",
                options.detections->k);
  if (options.regions) {
    TORCH_CHECK(options.regions->k > 0, "data.Loader: option 'regions.k' must be > 0, got ", options.regions->k);
    TORCH_CHECK(options.regions->frames > 0, "data.Loader: option 'regions.frames' must be > 0, got ",
                options.regions->frames);
    TORCH_CHECK(options.regions->dim >= 0, "data.Loader: option 'regions.dim' must be >= 0, got ",
                options.regions->dim);
  }
  if (options.anchor) {
    const ObjectMaskOptions& a = *options.anchor;
    TORCH_CHECK(a.patch_size > 0, "data.Loader: option 'anchor.patch_size' must be > 0, got ", a.patch_size);
    TORCH_CHECK(a.max_objects > 0, "data.Loader: option 'anchor.max_objects' must be > 0, got ", a.max_objects);
    TORCH_CHECK(a.drop_ratio >= 0 && a.drop_ratio <= 1,
                "data.Loader: option 'anchor.drop_ratio' must be in [0, 1], got ", a.drop_ratio);
    TORCH_CHECK(a.shift_prob >= 0 && a.shift_prob <= 1,
                "data.Loader: option 'anchor.shift_prob' must be in [0, 1], got ", a.shift_prob);
    const ResizeCrop& r = options.video.decode.resize;
    TORCH_CHECK(r.out_h > 0 && r.out_h % a.patch_size == 0 && r.out_w % a.patch_size == 0,
                "data.Loader: option 'anchor.patch_size' (", a.patch_size, ") must divide the frame size ",
                r.out_h, "x", r.out_w);
  }
  auto opt = std::make_shared<const RecipeItemOptions>(std::move(options));
  return [opt](const Sample& s, uint64_t seed) {
    Item item;
    int64_t caption_index = -1;
    std::string caption;
    if (!s.captions.empty()) {
      SplitMix64 rng(mix_seed(seed, kCaptionStream));
      caption_index = opt->video.random_caption
                          ? rng.uniform_int(0, static_cast<int64_t>(s.captions.size()) - 1)
                          : 0;
      caption = s.captions[caption_index];
    }
    item.strings["caption"] = caption;
    item.strings["id"] = s.id;
    // The sample's boxes: inline, or read from its detections file now.
    std::vector<FrameBoxes> read_boxes;
    if (!s.boxes_path.empty() && (opt->detections || opt->anchor)) read_boxes = read_video_detections(s.boxes_path);
    const std::vector<FrameBoxes>& sample_boxes = s.boxes_path.empty() ? s.frames : read_boxes;

    std::vector<int64_t> frame_indices;
    double fps = 0;
    FrameGeometry geometry;
    std::pair<int64_t, int64_t> anchor{-1, -1};
    std::mt19937_64 anchor_rng(mix_seed(seed, kAnchorStream));
    at::Tensor anchor_frame;
    if (opt->decode_video) {
      VideoReader reader(s.video_path, opt->video.decode);
      const VideoInfo& info = reader.info();
      fps = info.fps;
      geometry.video_w = info.width;
      geometry.video_h = info.height;
      const uint64_t crop_seed = mix_seed(seed, kCropStream);
      geometry.crop = crop_window(info.width, info.height, opt->video.decode.resize, crop_seed);
      frame_indices = sample_indices(reader, opt->video.sampling, seed, s.start_s, s.end_s);
      std::vector<int64_t> to_read = frame_indices;
      if (opt->anchor) {
        anchor = choose_anchor(sample_boxes, frame_indices, fps, opt->anchor->shift_prob, anchor_rng);
        anchor.second = std::clamp<int64_t>(anchor.second, 0, std::max<int64_t>(info.num_frames - 1, 0));
        to_read.push_back(anchor.second);  // one decode pass for the clip and the anchor
      }
      at::Tensor frames = reader.read_frames(to_read, crop_seed);
      const int64_t t = static_cast<int64_t>(frame_indices.size());
      item.tensors["video"] = frames.narrow(0, 0, t);
      if (opt->anchor) anchor_frame = frames[t];
    }

    if (opt->text) opt->text->add(item, s, caption, caption_index, seed);

    if (opt->detections) {
      std::vector<int64_t> targets = frame_indices;
      const std::vector<FrameBoxes>* frames = &sample_boxes;
      std::vector<FrameBoxes> by_position;
      if (!opt->decode_video) {
        // No video timeline: T of the detection frames themselves, in list order.
        const int64_t t = opt->video.sampling.num_frames;
        targets.assign(static_cast<size_t>(t), 0);
        if (!sample_boxes.empty()) {
          targets = pick_list_positions(static_cast<int64_t>(sample_boxes.size()), t, opt->video.sampling.strategy,
                                        mix_seed(seed, kDetectionStream));
          by_position = sample_boxes;
          for (size_t i = 0; i < by_position.size(); ++i) by_position[i].frame_index = static_cast<int64_t>(i);
          frames = &by_position;
        }
      }
      const DetectionTensors d = detections_at_frames(*frames, targets, fps, geometry, opt->detections->k,
                                                      opt->detections->unique_labels);
      item.tensors["boxes"] = d.boxes;
      item.tensors["classes"] = d.classes;
      item.tensors["scores"] = d.scores;
    }

    if (opt->regions) {
      const RegionTensors r = region_tensors(s.region_path, opt->regions->frames, opt->regions->k,
                                             opt->regions->dim, opt->video.sampling.strategy,
                                             mix_seed(seed, kRegionStream));
      item.tensors["features"] = r.features;
      item.tensors["locations"] = r.locations;
      item.tensors["frame_index"] = r.frame_index;
      item.tensors["region_mask"] = r.region_mask;
    }

    if (opt->anchor) {
      const FrameBoxes boxes = anchor.first >= 0 ? anchor_boxes(sample_boxes[anchor.first], geometry) : FrameBoxes{};
      const ObjectMaskResult m = mask_anchor_frame(anchor_frame, boxes, *opt->anchor, anchor_rng);
      item.tensors["anchor"] = m.frame;
      item.tensors["patch_mask"] = m.patch_mask.reshape({1, -1});
      item.strings["tags"] = m.tags;
      if (opt->text) {
        auto [ids, mask] = opt->text->encode(m.tags);
        item.tensors["tag_ids"] = ids;
        item.tensors["tag_mask"] = mask;
      }
    }
    return item;
  };
}

void zero_masked_anchor_patches(Batch& batch, int64_t patch_size) {
  auto anchor = batch.tensors.find("anchor");
  auto mask = batch.tensors.find("patch_mask");
  if (anchor == batch.tensors.end() || mask == batch.tensors.end()) return;
  const int64_t b = anchor->second.size(0), h = anchor->second.size(2), w = anchor->second.size(3);
  TORCH_CHECK(patch_size > 0 && h % patch_size == 0 && w % patch_size == 0 &&
                  mask->second.numel() == b * (h / patch_size) * (w / patch_size),
              "kinema::data::zero_masked_anchor_patches: patch_mask ", mask->second.sizes(),
              " does not match the anchor ", anchor->second.sizes(), " with patch size ", patch_size);
  // [B,1,N] -> [B,1,H/p,W/p] -> one value per pixel.
  const at::Tensor keep = mask->second.reshape({b, 1, h / patch_size, w / patch_size})
                              .repeat_interleave(patch_size, 2)
                              .repeat_interleave(patch_size, 3);
  anchor->second = anchor->second * keep.to(anchor->second.scalar_type());
}

BatchFn make_cut_paste_batch_fn(int64_t clip_len, uint64_t seed) {
  TORCH_CHECK(clip_len > 0, "data.Loader: option 'cut_paste.clip_len' must be > 0, got ", clip_len);
  return [clip_len, seed](Batch& batch) {
    auto it = batch.tensors.find("video");
    TORCH_CHECK(it != batch.tensors.end(), "data.Loader: option 'cut_paste' needs the video");
    const at::Tensor& video = it->second;
    const int64_t b = video.size(0), t = video.size(1);
    TORCH_CHECK(t % clip_len == 0 && t / clip_len >= 2, "data.Loader: option 'cut_paste.clip_len' (", clip_len,
                ") must divide num_frames (", t, ") into at least 2 clips");
    if (b < 2) {
      batch.tensors["clip_mask"] = at::ones({b, t / clip_len}, at::kBool);
      batch.tensors["Wv"] = at::ones({b, b}, at::kFloat);
      batch.tensors["Wc"] = at::ones({b, b}, at::kFloat);
      return;
    }
    const CutPasteResult r = cut_and_paste(
        video, clip_len, mix_seed(seed, static_cast<uint64_t>(batch.epoch), static_cast<uint64_t>(batch.index),
                                  0x637574));
    it->second = r.mixed;
    batch.tensors["clip_mask"] = r.clip_mask;
    batch.tensors["Wv"] = r.w_video;
    batch.tensors["Wc"] = r.w_text;
  };
}

}  // namespace kinema::data
