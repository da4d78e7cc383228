#pragma once
// Which frames of a video (or of a clip inside it) a training sample sees.
// Pure index arithmetic: no decoding happens here, so every strategy is
// testable by hand and the decoder receives a sorted list of targets.
#include <cstdint>
#include <string>
#include <vector>

namespace kinema::data {

enum class FrameSampling {
  Uniform,   // middle frame of T equal segments
  Rand,      // one random frame per segment (seeded)
  HeadTail,  // T/2 random frames from the first half, the rest from the second
  FixedFps,  // T frames spaced 1/fps seconds apart, centred in the clip
  Times,     // an explicit list of times in seconds
};

// Parses "uniform", "rand", "headtail", "fps", "times" (errors name the value).
FrameSampling parse_frame_sampling(const std::string& name);
const char* frame_sampling_name(FrameSampling s);

struct SamplingOptions {
  FrameSampling strategy = FrameSampling::Uniform;
  int64_t num_frames = 8;     // T, 1..64 (ignored for Times: T = times.size())
  double fps = 1.0;           // FixedFps: frames per second to sample at
  std::vector<double> times;  // Times: seconds from the start of the video
};

constexpr int64_t kMaxSampledFrames = 64;

// Frame indices (in presentation order, one per output slot, not necessarily
// distinct) for a video of `video_frames` frames at `video_fps`. The clip
// [start_s, end_s) restricts the choice (negative = whole video). `seed` drives
// Rand and HeadTail; the other strategies ignore it.
std::vector<int64_t> sample_frame_indices(int64_t video_frames, double video_fps,
                                          const SamplingOptions& options, uint64_t seed,
                                          double start_s = -1, double end_s = -1);

// A small portable RNG (splitmix64) so that orders and crops are identical on
// every platform and standard library.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next();
  // Uniform integer in [lo, hi] (inclusive); hi >= lo.
  int64_t uniform_int(int64_t lo, int64_t hi);
  double uniform01();  // [0, 1)
};

// Mixes several values into one seed (order-sensitive).
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0);

}  // namespace kinema::data
