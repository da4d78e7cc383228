#include "core/data/video_sampling.h"

#include <algorithm>
#include <cmath>

#include <c10/util/Exception.h>

namespace kinema::data {

uint64_t SplitMix64::next() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int64_t SplitMix64::uniform_int(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  // Rejection sampling keeps the draw unbiased for any span.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t r;
  do {
    r = next();
  } while (r >= limit);
  return lo + static_cast<int64_t>(r % span);
}

double SplitMix64::uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  SplitMix64 g(a);
  uint64_t h = g.next();
  for (uint64_t v : {b, c, d}) {
    g.state = h ^ (v + 0x632be59bd9b4e019ULL);
    h = g.next();
  }
  return h;
}

FrameSampling parse_frame_sampling(const std::string& name) {
  if (name == "uniform") return FrameSampling::Uniform;
  if (name == "rand") return FrameSampling::Rand;
  if (name == "headtail") return FrameSampling::HeadTail;
  if (name == "fps") return FrameSampling::FixedFps;
  if (name == "times") return FrameSampling::Times;
  TORCH_CHECK(false, "kinema::data::sampling: unknown strategy '", name,
              "' (expected uniform, rand, headtail, fps or times)");
}

const char* frame_sampling_name(FrameSampling s) {
  switch (s) {
    case FrameSampling::Uniform: return "uniform";
    case FrameSampling::Rand: return "rand";
    case FrameSampling::HeadTail: return "headtail";
    case FrameSampling::FixedFps: return "fps";
    case FrameSampling::Times: return "times";
  }
  return "?";
}

namespace {

// `count` sorted draws from [lo, hi): distinct when the range allows it.
std::vector<int64_t> sorted_draws(SplitMix64& rng, int64_t lo, int64_t hi, int64_t count) {
  std::vector<int64_t> out;
  const int64_t n = std::max<int64_t>(hi - lo, 1);
  if (count <= n) {
    // Partial Fisher-Yates over the range: distinct values.
    std::vector<int64_t> pool(n);
    for (int64_t i = 0; i < n; ++i) pool[i] = lo + i;
    for (int64_t i = 0; i < count; ++i) {
      std::swap(pool[i], pool[rng.uniform_int(i, n - 1)]);
      out.push_back(pool[i]);
    }
  } else {
    for (int64_t i = 0; i < count; ++i) out.push_back(lo + rng.uniform_int(0, n - 1));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<int64_t> sample_frame_indices(int64_t video_frames, double video_fps,
                                          const SamplingOptions& o, uint64_t seed,
                                          double start_s, double end_s) {
  TORCH_CHECK(video_frames > 0, "kinema::data::sampling: video has no frames (video_frames=",
              video_frames, ")");
  TORCH_CHECK(video_fps > 0, "kinema::data::sampling: argument 'video_fps' must be > 0, got ",
              video_fps);
  const int64_t T = o.strategy == FrameSampling::Times ? static_cast<int64_t>(o.times.size())
                                                       : o.num_frames;
  TORCH_CHECK(T >= 1 && T <= kMaxSampledFrames, "kinema::data::sampling: number of frames T=", T,
              " must be in 1..", kMaxSampledFrames);

  // The clip as a frame range [lo, hi).
  int64_t lo = 0, hi = video_frames;
  if (start_s >= 0) lo = std::clamp<int64_t>(std::llround(start_s * video_fps), 0, video_frames - 1);
  if (end_s >= 0) hi = std::clamp<int64_t>(std::llround(end_s * video_fps), lo + 1, video_frames);
  const int64_t n = hi - lo;

  std::vector<int64_t> idx;
  idx.reserve(T);
  SplitMix64 rng(seed);
  switch (o.strategy) {
    case FrameSampling::Uniform:
      for (int64_t k = 0; k < T; ++k) idx.push_back(lo + ((2 * k + 1) * n) / (2 * T));
      break;
    case FrameSampling::Rand:
      for (int64_t k = 0; k < T; ++k) {
        const int64_t a = (k * n) / T;
        const int64_t b = std::max(a + 1, ((k + 1) * n) / T);  // exclusive
        idx.push_back(lo + std::min(rng.uniform_int(a, b - 1), n - 1));
      }
      break;
    case FrameSampling::HeadTail: {
      const int64_t mid = lo + n / 2;
      auto head = sorted_draws(rng, lo, std::max(mid, lo + 1), T / 2);
      auto tail = sorted_draws(rng, std::min(mid, hi - 1), hi, T - T / 2);
      idx = head;
      idx.insert(idx.end(), tail.begin(), tail.end());
      break;
    }
    case FrameSampling::FixedFps: {
      TORCH_CHECK(o.fps > 0, "kinema::data::sampling: argument 'fps' must be > 0, got ", o.fps);
      const double clip_s = n / video_fps, span_s = T / o.fps;
      const double offset = std::max(0.0, (clip_s - span_s) / 2);
      for (int64_t k = 0; k < T; ++k) {
        const double t = offset + (k + 0.5) / o.fps;
        idx.push_back(lo + std::clamp<int64_t>(static_cast<int64_t>(std::floor(t * video_fps)), 0,
                                               n - 1));
      }
      break;
    }
    case FrameSampling::Times:
      for (double t : o.times) {
        TORCH_CHECK(std::isfinite(t) && t >= 0, "kinema::data::sampling: time ", t,
                    " s must be finite and >= 0");
        idx.push_back(std::clamp<int64_t>(static_cast<int64_t>(std::floor(t * video_fps + 1e-9)),
                                          0, video_frames - 1));
      }
      break;
  }
  return idx;
}

}  // namespace kinema::data
