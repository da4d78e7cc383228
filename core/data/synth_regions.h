#pragma once
// Per-frame boxes (exact or detector-like) and region features for
// `kinema synth`, and a byte-deterministic .npz writer.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/data/synth_scene.h"

namespace kinema::data::synth {

struct DetBox {
  float x1, y1, x2, y2;
  int shape;       // class id (index into shape_names())
  int colour;      // -1 for a false box
  int object;      // index into scene.objects, -1 for a false box
  float score;
};

struct DetectionNoise {
  double jitter = 0, miss_rate = 0, false_rate = 0;
};

// Boxes of frame `index`: exact (score 1) when `noise` is all zero, else
// jittered, some missed, sometimes a false one. Deterministic in `seed`.
std::vector<DetBox> frame_boxes(const Scene& scene, int64_t index, const DetectionNoise& noise,
                                uint64_t seed);

// Region features [boxes.size(), dim] of frame `index`: ReLU of a fixed random
// projection of (shape, colour, box geometry, motion) plus Gaussian noise.
at::Tensor region_features(const Scene& scene, int64_t index, const std::vector<DetBox>& boxes,
                           int64_t dim, double noise, uint64_t seed);

// numpy.savez layout (stored members) with fixed timestamps, so equal arrays
// give equal bytes.
void save_npz_deterministic(const std::string& path, const std::map<std::string, at::Tensor>& arrays);

}  // namespace kinema::data::synth
