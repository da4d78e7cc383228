#include "core/data/preprocess.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "core/data/synth_encode.h"
#include "core/data/video_reader.h"

namespace kinema::data {

namespace fs = std::filesystem;

namespace {

const std::set<std::string>& video_extensions() {
  static const std::set<std::string> ext = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm",
                                            ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts"};
  return ext;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_video(const fs::path& p) { return video_extensions().count(lower(p.extension().string())) > 0; }

// The output of a video: same relative path, extension .mp4 (the container
// written).
fs::path output_of(const fs::path& out_dir, const fs::path& relative) {
  fs::path out = out_dir / relative;
  out.replace_extension(".mp4");
  return out;
}

// Frames per batch handed from the reader to the writer: bounds memory for
// long videos (64 frames of 480p RGB are ~60 MB).
constexpr size_t kBatchFrames = 64;

void convert(const fs::path& in, const fs::path& out, const PreprocessOptions& o) {
  DecodeOptions probe_options;
  probe_options.resize.out_h = probe_options.resize.out_w = 0;
  VideoReader probe(in.string(), probe_options);
  const VideoInfo info = probe.info();
  if (info.num_frames <= 0 || info.fps <= 0 || info.width <= 0 || info.height <= 0) {
    throw VideoError(in.string(), "no decodable video stream (frames " + std::to_string(info.num_frames) +
                                      ", fps " + std::to_string(info.fps) + ")");
  }
  // Shorter side scaled to short_side (or kept), the longer one in proportion,
  // both rounded down to even sizes (4:2:0 chroma needs them).
  const int64_t short_in = std::min(info.width, info.height);
  const int64_t target = o.short_side > 0 ? o.short_side : short_in;
  const double scale = static_cast<double>(target) / short_in;
  const int64_t scaled_w = info.width <= info.height ? target : std::llround(info.width * scale);
  const int64_t scaled_h = info.width <= info.height ? std::llround(info.height * scale) : target;
  const int64_t out_w = scaled_w / 2 * 2, out_h = scaled_h / 2 * 2;
  if (out_w < 2 || out_h < 2) {
    throw VideoError(in.string(), "output size " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                                      " is too small");
  }
  DecodeOptions decode;
  decode.resize.out_w = out_w;
  decode.resize.out_h = out_h;
  decode.resize.short_side = target;
  VideoReader reader(in.string(), decode);
  const double out_fps = o.fps > 0 ? o.fps : info.fps;
  const std::vector<int64_t> indices = resample_indices(info.num_frames, info.fps, out_fps);

  synth::EncodeOptions enc;
  enc.codec = o.codec;
  enc.crf = o.crf;
  enc.preset = o.preset;
  enc.gop = std::max<int64_t>(1, std::llround(o.keyframe_s * out_fps));
  fs::path part = out;
  part += ".part";
  fs::create_directories(out.parent_path());
  try {
    synth::Mp4Writer writer(part.string(), out_w, out_h, out_fps, enc);
    for (size_t begin = 0; begin < indices.size(); begin += kBatchFrames) {
      const size_t end = std::min(indices.size(), begin + kBatchFrames);
      const std::vector<int64_t> batch(indices.begin() + begin, indices.begin() + end);
      // [T, 3, H, W] -> packed RGB rows [T, H, W, 3]
      const at::Tensor frames = reader.read_frames(batch).permute({0, 2, 3, 1}).contiguous();
      const uint8_t* data = frames.data_ptr<uint8_t>();
      for (int64_t t = 0; t < frames.size(0); ++t) writer.write(data + t * out_h * out_w * 3, out_w * 3);
    }
    writer.finish();
  } catch (...) {
    std::error_code ignored;
    fs::remove(part, ignored);
    throw;
  }
  fs::rename(part, out);
}

}  // namespace

std::vector<int64_t> resample_indices(int64_t num_frames, double src_fps, double out_fps) {
  TORCH_CHECK(num_frames > 0 && src_fps > 0 && out_fps > 0, "kinema::data::resample_indices: need ",
              "positive frame count and rates, got ", num_frames, ", ", src_fps, ", ", out_fps);
  const double duration = num_frames / src_fps;
  // Output frames whose time k / out_fps falls inside the source; a small
  // tolerance keeps k = duration * out_fps exactly out.
  const int64_t count = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(duration * out_fps - 1e-9)));
  std::vector<int64_t> indices(count);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = static_cast<int64_t>(std::floor(k * src_fps / out_fps + 1e-9));
    indices[k] = std::min(num_frames - 1, i);
  }
  return indices;
}

PreprocessSummary preprocess(const PreprocessOptions& o, const PreprocessProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  TORCH_CHECK(!o.in_dir.empty() && fs::is_directory(o.in_dir), "kinema preprocess: input directory '",
              o.in_dir, "' does not exist or is not a directory");
  TORCH_CHECK(!o.out_dir.empty(), "kinema preprocess: give an output directory");
  TORCH_CHECK(o.short_side >= 0, "kinema preprocess: argument 'short-side' must be >= 0, got ", o.short_side);
  TORCH_CHECK(o.fps >= 0 && std::isfinite(o.fps), "kinema preprocess: argument 'fps' must be >= 0, got ", o.fps);
  TORCH_CHECK(o.keyframe_s > 0 && std::isfinite(o.keyframe_s),
              "kinema preprocess: argument 'keyframe-interval' must be > 0 seconds, got ", o.keyframe_s);
  TORCH_CHECK(o.jobs >= 0, "kinema preprocess: argument 'jobs' must be >= 0, got ", o.jobs);
  synth::resolve_encoder(o.codec);  // an unknown codec fails before any work
  const fs::path in_dir = fs::canonical(o.in_dir);
  fs::create_directories(o.out_dir);
  const fs::path out_dir = fs::canonical(o.out_dir);
  // An output inside the input would be walked as input.
  const auto rel = out_dir.lexically_relative(in_dir);
  TORCH_CHECK(rel.empty() || *rel.begin() == "..", "kinema preprocess: output directory '", o.out_dir,
              "' is inside the input directory '", o.in_dir, "'");

  PreprocessSummary summary;
  std::vector<fs::path> todo;
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(in_dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().lexically_relative(in_dir));
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& relative : files) {
    if (is_video(relative)) {
      ++summary.videos;
      if (fs::exists(output_of(out_dir, relative))) {
        ++summary.skipped;
      } else {
        todo.push_back(relative);
      }
    } else {
      // Annotations and the like, copied unless already there and unchanged.
      const fs::path out = out_dir / relative;
      if (!fs::exists(out) || fs::file_size(out) != fs::file_size(in_dir / relative)) {
        fs::create_directories(out.parent_path());
        fs::copy_file(in_dir / relative, out, fs::copy_options::overwrite_existing);
        ++summary.copied;
      }
    }
  }

  const int jobs = std::max(1, std::min<int>(o.jobs > 0 ? o.jobs : static_cast<int>(std::thread::hardware_concurrency()),
                                             static_cast<int>(std::max<size_t>(1, todo.size()))));
  std::atomic<size_t> next{0};
  std::mutex mutex;  // guards summary and progress
  int64_t done = 0;
  auto worker = [&] {
    for (size_t k = next++; k < todo.size(); k = next++) {
      const fs::path& relative = todo[k];
      std::string error;
      try {
        convert(in_dir / relative, output_of(out_dir, relative), o);
      } catch (const std::exception& e) {
        error = e.what();
        const size_t newline = error.find('\n');  // c10 appends a C++ backtrace
        if (newline != std::string::npos) error.resize(newline);
      }
      const std::lock_guard<std::mutex> lock(mutex);
      if (error.empty()) {
        ++summary.converted;
      } else {
        summary.failures.push_back({relative.string(), error});
      }
      ++done;
      if (progress) progress(done, static_cast<int64_t>(todo.size()), static_cast<int64_t>(summary.failures.size()));
    }
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  std::sort(summary.failures.begin(), summary.failures.end(),
            [](const PreprocessFailure& a, const PreprocessFailure& b) { return a.path < b.path; });
  const fs::path list = out_dir / "preprocess_failures.tsv";
  if (summary.failures.empty()) {
    std::error_code ignored;
    fs::remove(list, ignored);  // a clean rerun clears the list of an earlier run
  } else {
    fs::path part = list;
    part += ".part";
    {
      std::ofstream f(part);
      for (const auto& failure : summary.failures) f << failure.path << "\t" << failure.error << "\n";
      TORCH_CHECK(f.good(), "kinema preprocess: could not write ", part.string());
    }
    fs::rename(part, list);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace kinema::data
