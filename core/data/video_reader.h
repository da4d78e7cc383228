#pragma once
// Sparse frame decoding with the FFmpeg libraries. One VideoReader decodes one
// file on the calling thread (decoder thread_count = 1): the loader gets its
// parallelism from decoding several clips at once, which scales better than
// threading inside one small decode.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/data/video_sampling.h"
#include "core/data/video_transform.h"

namespace kinema::data {

// Every failure to open or decode a video: the message names the file.
class VideoError : public std::runtime_error {
 public:
  VideoError(const std::string& path, const std::string& what);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct VideoInfo {
  double duration_s = 0;
  int64_t num_frames = 0;
  double fps = 0;
  int64_t width = 0, height = 0;
  std::string codec;      // e.g. "h264"
  std::string container;  // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  bool scanned = false;   // frame count/duration came from a packet scan
};

struct DecodeOptions {
  ResizeCrop resize;
  // Wall-clock budget for opening the file and for each read_frames call;
  // blocking FFmpeg I/O is interrupted when it runs out.
  double timeout_s = 20.0;
  // Skip decoding non-reference frames that are not targets (they cannot
  // affect any other frame, so the output is unchanged).
  bool skip_nonref = true;
  // Without a keyframe index, seek only when the next target is this far ahead.
  double seek_ahead_s = 2.0;
};

// Counters of the work done, for benchmarks and tests.
struct DecodeStats {
  int64_t packets = 0, frames_decoded = 0, seeks = 0;
};

class VideoReader {
 public:
  // Opens the file and reads its stream info; throws VideoError.
  explicit VideoReader(const std::string& path, DecodeOptions options = {});
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  const std::string& path() const;
  const DecodeStats& stats() const;

  // Frames at the given presentation-order indices (any order, repeats
  // allowed) as uint8 [T, 3, H, W] RGB after resize + crop (one crop window per
  // call, drawn from crop_seed when random). Throws VideoError.
  at::Tensor read_frames(const std::vector<int64_t>& indices, uint64_t crop_seed = 0);

  // sample_frame_indices on this video, then read_frames.
  at::Tensor sample(const SamplingOptions& sampling, uint64_t seed, double start_s = -1,
                    double end_s = -1);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot helper: open, sample, decode.
at::Tensor read_video(const std::string& path, const SamplingOptions& sampling,
                      const DecodeOptions& options = {}, uint64_t seed = 0, double start_s = -1,
                      double end_s = -1);

}  // namespace kinema::data
