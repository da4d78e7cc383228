#pragma once
// `kinema preprocess`: re-encodes a dataset's videos for training, mirroring
// the input tree. Each video is decoded with the loader's exact-frame reader
// (VideoReader), optionally resized (shorter side) and resampled in time
// (frame rate), and written as H.264 .mp4 (Mp4Writer) with a keyframe every
// `keyframe_s` seconds, so the loader's seeks land close to the frames it
// samples. Other files (annotations) are copied, so a WebVid or MSR-VTT tree
// in gives the same tree out.
//
// Resumable: an output is written to "<name>.part" and renamed when complete,
// so an existing output is a finished one and is skipped on the next run
// (leftover .part files are overwritten). Corrupt or unreadable inputs are
// listed (returned, and written to <out_dir>/preprocess_failures.tsv), never
// fatal to the rest of the run.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kinema::data {

struct PreprocessOptions {
  std::string in_dir, out_dir;
  int64_t short_side = 0;   // shorter side of the output in pixels; 0 keeps the source size
  double fps = 0;           // output frame rate; 0 keeps the source rate
  double keyframe_s = 1.0;  // seconds between keyframes
  int jobs = 0;             // videos converted in parallel; 0 = hardware threads
  std::string codec = "auto";
  int crf = 18;             // libx264 quality (lower = closer to the source)
  std::string preset = "veryfast";
};

struct PreprocessFailure {
  std::string path;  // input, relative to in_dir
  std::string error;
};

struct PreprocessSummary {
  int64_t videos = 0;     // video files found
  int64_t converted = 0;  // written by this run
  int64_t skipped = 0;    // already done by an earlier run
  int64_t copied = 0;     // other files copied
  std::vector<PreprocessFailure> failures;
  double seconds = 0;
};

// Called after each video with (done, total, failed so far); from any thread,
// never concurrently.
using PreprocessProgress = std::function<void(int64_t, int64_t, int64_t)>;

// Output frame indices: for each output time k / out_fps, the last source
// frame at or before it (src_fps, num_frames from the source).
std::vector<int64_t> resample_indices(int64_t num_frames, double src_fps, double out_fps);

PreprocessSummary preprocess(const PreprocessOptions& options, const PreprocessProgress& progress = {});

}  // namespace kinema::data
