#include "core/data/vision_item.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include <c10/util/Exception.h>

#include "core/data/detections.h"

namespace kinema::data {

int64_t nearest_frame(const std::vector<FrameBoxes>& frames, double frame_index, double fps) {
  int64_t best = -1;
  double best_distance = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameBoxes& f = frames[i];
    const double position = f.frame_index >= 0                ? static_cast<double>(f.frame_index)
                            : (f.time_s >= 0 && fps > 0) ? f.time_s * fps
                                                         : static_cast<double>(i);
    const double distance = std::abs(position - frame_index);
    if (distance < best_distance) {  // strict: ties keep the earlier frame
      best_distance = distance;
      best = static_cast<int64_t>(i);
    }
  }
  return best;
}

bool normalise_box(const Box& box, int64_t image_w, int64_t image_h, const FrameGeometry& g, Box& out) {
  const double iw = image_w > 0 ? image_w : g.video_w, ih = image_h > 0 ? image_h : g.video_h;
  TORCH_CHECK(iw > 0 && ih > 0, "kinema::data::normalise_box: a detection frame has no image size and "
              "the video size is unknown (video = false?)");
  double x1 = box.x1 / iw, y1 = box.y1 / ih, x2 = box.x2 / iw, y2 = box.y2 / ih;
  const CropWindow& c = g.crop;
  if (c.out_w > 0 && c.out_h > 0) {
    // Normalised source -> resized pixels -> crop pixels -> normalised crop.
    x1 = (x1 * c.scaled_w - c.x0) / c.out_w;
    x2 = (x2 * c.scaled_w - c.x0) / c.out_w;
    y1 = (y1 * c.scaled_h - c.y0) / c.out_h;
    y2 = (y2 * c.scaled_h - c.y0) / c.out_h;
  }
  auto clamp01 = [](double v) { return std::min(1.0, std::max(0.0, v)); };
  x1 = clamp01(x1), x2 = clamp01(x2), y1 = clamp01(y1), y2 = clamp01(y2);
  if (!(x2 > x1 && y2 > y1)) return false;
  out = box;
  out.x1 = static_cast<float>(x1);
  out.y1 = static_cast<float>(y1);
  out.x2 = static_cast<float>(x2);
  out.y2 = static_cast<float>(y2);
  return true;
}

DetectionTensors detections_at_frames(const std::vector<FrameBoxes>& frames,
                                      const std::vector<int64_t>& frame_indices, double fps,
                                      const FrameGeometry& geometry, int64_t k, bool unique_labels) {
  TORCH_CHECK(k > 0, "data.Loader: option 'detections.k' must be > 0, got ", k);
  std::vector<FrameBoxes> chosen;
  for (const int64_t t : frame_indices) {
    FrameBoxes out;
    out.image_w = out.image_h = 1;  // boxes below are normalised
    const int64_t f = nearest_frame(frames, static_cast<double>(t), fps);
    if (f >= 0) {
      const FrameBoxes& src = frames[f];
      for (const Box& b : src.boxes) {
        Box n;
        if (normalise_box(b, src.image_w, src.image_h, geometry, n)) out.boxes.push_back(n);
      }
    }
    chosen.push_back(std::move(out));
  }
  const PaddedDetections p = pad_top_k(chosen, k, unique_labels);
  return {p.boxes, p.labels, p.scores};
}

std::vector<int64_t> pick_list_positions(int64_t list_size, int64_t count, FrameSampling strategy,
                                         uint64_t seed) {
  TORCH_CHECK(list_size > 0 && count > 0, "kinema::data::pick_list_positions: need list_size > 0 and "
              "count > 0, got ", list_size, " and ", count);
  SamplingOptions s;
  s.strategy = strategy == FrameSampling::Rand || strategy == FrameSampling::HeadTail ? strategy
                                                                                       : FrameSampling::Uniform;
  s.num_frames = count;
  // One "frame" per second: positions are indices into the list.
  return sample_frame_indices(list_size, 1.0, s, seed);
}

RegionTensors region_tensors(const std::string& dir, int64_t frames, int64_t k, int64_t dim,
                             FrameSampling strategy, uint64_t seed) {
  TORCH_CHECK(frames > 0, "data.Loader: option 'regions.frames' must be > 0, got ", frames);
  TORCH_CHECK(k > 0, "data.Loader: option 'regions.k' must be > 0, got ", k);
  TORCH_CHECK(dim >= 0, "data.Loader: option 'regions.dim' must be >= 0, got ", dim);
  std::vector<std::pair<int64_t, std::string>> files;
  if (!dir.empty() && std::filesystem::is_directory(dir)) files = list_region_frames(dir);
  std::vector<FrameDetections> used;
  std::vector<std::string> used_paths;
  const int64_t available = static_cast<int64_t>(files.size());
  if (available > 0) {
    std::vector<int64_t> positions(available);
    for (int64_t i = 0; i < available; ++i) positions[i] = i;
    if (available > frames) positions = pick_list_positions(available, frames, strategy, seed);
    for (const int64_t p : positions) {
      used.push_back(read_butd_npz(files[p].second));
      used_paths.push_back(files[p].second);
    }
  }
  TORCH_CHECK(!used.empty() || dim > 0, "kinema::data: no region files in '", dir,
              "' (give option 'regions.dim' to pad such samples with invalid regions)");
  const int64_t n = frames * k;
  RegionTensors out;
  out.locations = at::zeros({n, 7}, at::kFloat);
  out.region_mask = at::zeros({n}, at::kBool);
  out.frame_index = at::arange(frames, at::kLong).repeat_interleave(k);
  if (used.empty()) {
    out.features = at::zeros({n, dim}, at::kFloat);
    return out;
  }
  for (size_t f = 0; f < used.size(); ++f)
    TORCH_CHECK(used[f].features.defined(), "kinema::data: region file '", used_paths[f],
                "' has no features 'x'");
  const PaddedDetections p = pad_top_k(used, k, false);
  const int64_t d = p.features.size(2);
  TORCH_CHECK(dim == 0 || d == dim, "kinema::data: region features in '", dir, "' have size ", d,
              " but option 'regions.dim' is ", dim);
  const int64_t m = static_cast<int64_t>(used.size()) * k;
  out.features = at::zeros({n, d}, at::kFloat);
  out.features.narrow(0, 0, m).copy_(p.features.reshape({m, d}));
  out.locations.narrow(0, 0, m).copy_(p.location.reshape({m, 7}));
  out.region_mask.narrow(0, 0, m).copy_(p.valid.reshape({m}));
  return out;
}

}  // namespace kinema::data
