#pragma once
// `kinema preprocess`: re-encodes a dataset's videos for training, mirroring
// the input tree. Each video is decoded with the loader's exact-frame reader
// (VideoReader), optionally resized (shorter side) and resampled in time
// (frame rate, never raised above the source's), and written as an .mp4
// (Mp4Writer: H.264 when libx264 is present) at the same relative path with
// the extension .mp4. Other files (annotations, side files) are copied, so a
// WebVid or MSR-VTT tree in gives the same tree out, readable by the same
// recipe flags with --data.root pointing at the output.
//
// Keyframes: by default they are matched to the loader's segment sampling
// (T = `frames` equal segments per video, "rand" picks one frame in each,
// "uniform" the middle one): a keyframe at the start and at the middle of each
// segment, so an evaluation frame is a keyframe and a training frame is at most
// half a segment after one. `keyframe_s` > 0 asks for a fixed interval instead.
//
// Resumable: a video is written to "<name>.part" and renamed when complete,
// so an existing output is a finished one and is skipped by the next run
// (leftover .part files are overwritten). The settings are recorded in
// <out_dir>/preprocess.json; a run into a folder made with other settings, or
// into a non-empty folder preprocess did not make, is refused. Corrupt or
// unreadable inputs are listed (returned, and written to
// <out_dir>/preprocess_failures.tsv), never fatal to the rest of the run.
// Nothing is written outside out_dir, which may not overlap in_dir.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kinema::data {

// The files preprocess writes at the top of out_dir besides the mirrored tree
// (inputs of these names at the top of in_dir are not copied).
inline constexpr const char* kPreprocessManifest = "preprocess.json";
inline constexpr const char* kPreprocessFailures = "preprocess_failures.tsv";

struct PreprocessOptions {
  std::string in_dir, out_dir;
  int64_t short_side = 0;   // shorter side of the output in pixels; 0 keeps the source size
  double fps = 0;           // output frame rate (capped at the source's); 0 keeps the source rate
  double keyframe_s = 0;    // seconds between keyframes; 0 = matched to `frames` (see above)
  int64_t frames = 8;       // T of the loader's sampling, for the matched keyframes
  int jobs = 0;             // videos converted in parallel; 0 = hardware threads
  std::string codec = "auto";
  int crf = 18;             // libx264 quality (lower = closer to the source)
  std::string preset = "veryfast";
};

// The model input of a training configuration (a run's config.json, or any
// JSON object with these keys): `image_size` becomes short_side and `frames`
// becomes frames, unless `keep_short_side` / `keep_frames` (set on the command
// line). Errors name the file and the key.
void apply_training_config(const std::string& config_json, PreprocessOptions& options, bool keep_short_side,
                           bool keep_frames);

struct PreprocessFailure {
  std::string path;  // input, relative to in_dir
  std::string error;
};

struct PreprocessSummary {
  int64_t videos = 0;     // video files found
  int64_t converted = 0;  // written by this run
  int64_t skipped = 0;    // already done by an earlier run
  int64_t copied = 0;     // other files copied (new or changed)
  std::vector<std::string> renamed;  // inputs whose extension was not .mp4 (relative paths)
  std::vector<PreprocessFailure> failures;
  double seconds = 0;
};

// Called after each video with (done, total, failed so far); from any thread,
// never concurrently.
using PreprocessProgress = std::function<void(int64_t, int64_t, int64_t)>;

// Output frame indices: for each output time k / out_fps, the last source
// frame at or before it (src_fps, num_frames from the source).
std::vector<int64_t> resample_indices(int64_t num_frames, double src_fps, double out_fps);

// The keyframes matched to a T-segment sampling of n frames: the start
// (k*n)/T and the middle ((2k+1)*n)/(2T) of every segment, i.e. (j*n)/(2T)
// for j < 2T, sorted and distinct.
std::vector<int64_t> sampling_keyframes(int64_t num_frames, int64_t segments);

// Throws c10::Error naming the argument or directory for bad options; a video
// that cannot be converted is listed in the summary instead.
PreprocessSummary preprocess(const PreprocessOptions& options, const PreprocessProgress& progress = {});

}  // namespace kinema::data
