#include "core/data/synth_regions.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include <zip.h>

#include "core/data/video_sampling.h"
#include "core/io/npz.h"

namespace kinema::data::synth {

namespace {

constexpr uint64_t kProjectionSeed = 0x6b696e656d61ULL;  // fixed: features comparable across seeds
constexpr int kDescriptor = 8 + 8 + 4 + 5 + 1;

double normal(SplitMix64& rng) {
  const double u1 = std::max(rng.uniform01(), 1e-300), u2 = rng.uniform01();
  return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// The projection matrix [dim, kDescriptor], built once per dim.
const std::vector<float>& projection(int64_t dim) {
  static std::mutex mu;
  static std::map<int64_t, std::vector<float>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = cache[dim];
  if (p.empty()) {
    SplitMix64 rng(kProjectionSeed);
    p.resize(static_cast<size_t>(dim) * kDescriptor);
    for (auto& v : p) v = static_cast<float>(normal(rng) / std::sqrt(kDescriptor / 2.0));
  }
  return p;
}

}  // namespace

std::vector<DetBox> frame_boxes(const Scene& s, int64_t index, const DetectionNoise& n,
                                uint64_t seed) {
  const double t = index / s.fps;
  std::vector<DetBox> out;
  SplitMix64 rng(mix_seed(seed, static_cast<uint64_t>(index), 0xde7));
  const bool noisy = n.jitter > 0 || n.miss_rate > 0 || n.false_rate > 0;
  for (size_t i = 0; i < s.objects.size(); ++i) {
    const Object& o = s.objects[i];
    auto b = box_of(s, o, t);
    DetBox d{b[0], b[1], b[2], b[3], o.shape, o.colour, static_cast<int>(i), 1.0f};
    if (noisy) {
      if (rng.uniform01() < n.miss_rate) continue;
      const double bw = b[2] - b[0], bh = b[3] - b[1];
      auto jit = [&](float v, double size, double hi) {
        return static_cast<float>(std::clamp(v + n.jitter * size * normal(rng), 0.0, hi));
      };
      d.x1 = jit(b[0], bw, s.width);
      d.y1 = jit(b[1], bh, s.height);
      d.x2 = std::max(d.x1 + 1.0f, jit(b[2], bw, s.width));
      d.y2 = std::max(d.y1 + 1.0f, jit(b[3], bh, s.height));
      d.score = static_cast<float>(0.6 + 0.4 * rng.uniform01());
    }
    out.push_back(d);
  }
  if (noisy && rng.uniform01() < n.false_rate) {
    const double w = (0.1 + 0.2 * rng.uniform01()) * s.width;
    const double h = (0.1 + 0.2 * rng.uniform01()) * s.height;
    const double x = rng.uniform01() * (s.width - w), y = rng.uniform01() * (s.height - h);
    out.push_back({static_cast<float>(x), static_cast<float>(y), static_cast<float>(x + w),
                   static_cast<float>(y + h),
                   static_cast<int>(rng.uniform_int(0, shape_names().size() - 1)), -1, -1,
                   static_cast<float>(0.3 + 0.3 * rng.uniform01())});
  }
  return out;
}

at::Tensor region_features(const Scene& s, int64_t index, const std::vector<DetBox>& boxes,
                           int64_t dim, double noise, uint64_t seed) {
  const auto& P = projection(dim);
  at::Tensor out = at::zeros({static_cast<int64_t>(boxes.size()), dim}, at::kFloat);
  float* o = out.data_ptr<float>();
  const double t = index / s.fps, dt = 0.5;
  SplitMix64 rng(mix_seed(seed, static_cast<uint64_t>(index), 0xfea7));
  for (size_t k = 0; k < boxes.size(); ++k) {
    const DetBox& b = boxes[k];
    float d[kDescriptor] = {0};
    d[b.shape] = 1;
    if (b.colour >= 0) d[8 + b.colour] = 1;
    d[16] = (b.x1 + b.x2) / 2 / s.width;
    d[17] = (b.y1 + b.y2) / 2 / s.height;
    d[18] = (b.x2 - b.x1) / s.width;
    d[19] = (b.y2 - b.y1) / s.height;
    if (b.object >= 0) {
      // Motion over one second around t: what distinguishes the actions.
      const Object& ob = s.objects[b.object];
      const Pose a = pose_at(s, ob, std::max(0.0, t - dt)), c = pose_at(s, ob, t + dt);
      d[20] = static_cast<float>(4 * (c.cx - a.cx) / s.width);
      d[21] = static_cast<float>(4 * (c.cy - a.cy) / s.height);
      d[22] = static_cast<float>(4 * (c.radius / a.radius - 1));
      d[23] = static_cast<float>(std::sin(c.angle - a.angle));
      d[24] = static_cast<float>(std::abs(std::sin(3.14159265358979 * t / 1.2)));
    }
    d[25] = 1;  // bias
    for (int64_t j = 0; j < dim; ++j) {
      double v = 0;
      for (int q = 0; q < kDescriptor; ++q) v += P[j * kDescriptor + q] * d[q];
      v += noise * normal(rng);
      o[k * dim + j] = static_cast<float>(std::max(0.0, v));
    }
  }
  return out;
}

void save_npz_deterministic(const std::string& path,
                            const std::map<std::string, at::Tensor>& arrays) {
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& [name, t] : arrays)
    members.emplace_back(name + ".npy", kinema::io::serialize_npy(t, path + ":" + name));
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  TORCH_CHECK(z, "kinema::data::synth: cannot create '", path, "' (libzip error ", err, ")");
  for (const auto& [name, bytes] : members) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    const zip_int64_t i = src ? zip_file_add(z, name.c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (i < 0) {
      if (src) zip_source_free(src);
      const std::string msg = zip_strerror(z);
      zip_discard(z);
      TORCH_CHECK(false, "kinema::data::synth: '", path, "': adding '", name, "': ", msg);
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i), ZIP_CM_STORE, 0);
    // 1980-01-01, the earliest DOS time: no wall clock in the bytes.
    zip_file_set_mtime(z, static_cast<zip_uint64_t>(i), 315532800, 0);
  }
  if (zip_close(z) != 0) {
    const std::string msg = zip_strerror(z);
    zip_discard(z);
    TORCH_CHECK(false, "kinema::data::synth: writing '", path, "' failed: ", msg);
  }
}

}  // namespace kinema::data::synth
