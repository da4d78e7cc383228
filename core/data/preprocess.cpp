#include "core/data/preprocess.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "core/data/synth_encode.h"
#include "core/data/video_reader.h"

namespace kinema::data {

namespace fs = std::filesystem;
using nlohmann::json;

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
// written; an .MP4 keeps its spelling, which the annotations may use).
fs::path output_of(const fs::path& out_dir, const fs::path& relative) {
  fs::path out = out_dir / relative;
  if (lower(relative.extension().string()) != ".mp4") out.replace_extension(".mp4");
  return out;
}

// `inner` equals `outer` or lies below it (both absolute and normalised).
bool within(const fs::path& inner, const fs::path& outer) {
  const fs::path rel = inner.lexically_relative(outer);
  return !rel.empty() && *rel.begin() != "..";
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
  // A higher rate than the source's would only repeat frames.
  const double out_fps = o.fps > 0 ? std::min(o.fps, info.fps) : info.fps;
  const std::vector<int64_t> indices = resample_indices(info.num_frames, info.fps, out_fps);
  const int64_t n = static_cast<int64_t>(indices.size());

  synth::EncodeOptions enc;
  enc.codec = o.codec;
  enc.crf = o.crf;
  enc.preset = o.preset;
  std::vector<char> forced(static_cast<size_t>(n), 0);
  if (o.keyframe_s > 0) {
    enc.gop = std::max<int64_t>(1, std::llround(o.keyframe_s * out_fps));
  } else {
    // Only the sampling's keyframes: the interval never fires by itself.
    enc.gop = std::min<int64_t>(n + 1, 1 << 20);
    for (int64_t k : sampling_keyframes(n, o.frames)) forced[static_cast<size_t>(k)] = 1;
  }
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
      for (int64_t t = 0; t < frames.size(0); ++t) {
        writer.write(data + t * out_h * out_w * 3, out_w * 3, forced[begin + static_cast<size_t>(t)] != 0);
      }
    }
    writer.finish();
  } catch (...) {
    std::error_code ignored;
    fs::remove(part, ignored);
    throw;
  }
  fs::rename(part, out);
}

// A file copied through "<name>.part" (a killed run never leaves a short
// copy under the real name), with the source's modification time so a later
// run sees it as up to date.
void copy_with_mtime(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::path part = to;
  part += ".part";
  fs::copy_file(from, part, fs::copy_options::overwrite_existing);
  fs::last_write_time(part, fs::last_write_time(from));
  fs::rename(part, to);
}

bool up_to_date(const fs::path& from, const fs::path& to) {
  std::error_code e;
  if (!fs::is_regular_file(to, e)) return false;
  return fs::file_size(to) == fs::file_size(from) && fs::last_write_time(to) == fs::last_write_time(from);
}

// The settings that decide an output's bytes (jobs and paths do not).
json settings_of(const PreprocessOptions& o) {
  return json{{"short_side", o.short_side},
              {"fps", o.fps},
              {"keyframes", o.keyframe_s > 0 ? json{{"interval_s", o.keyframe_s}}
                                              : json{{"matched_to_frames", o.frames}}},
              {"codec", synth::resolve_encoder(o.codec)},
              {"crf", o.crf},
              {"preset", o.preset}};
}

void write_atomically(const fs::path& path, const std::string& text) {
  fs::path part = path;
  part += ".part";
  {
    std::ofstream f(part, std::ios::binary);
    f << text;
    f.flush();
    TORCH_CHECK(f.good(), "kinema preprocess: could not write '", part.string(), "'");
  }
  fs::rename(part, path);
}

// Refuses a folder another run filled with other settings, or one that holds
// files of its own; records the settings of this run.
void claim_output(const fs::path& out_dir, const PreprocessOptions& o) {
  const fs::path manifest = out_dir / kPreprocessManifest;
  const json settings = settings_of(o);
  if (fs::exists(manifest)) {
    std::ifstream f(manifest, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    json earlier;
    try {
      earlier = json::parse(text.str()).at("settings");
    } catch (const std::exception& e) {
      TORCH_CHECK(false, "kinema preprocess: '", manifest.string(), "' is not a preprocess record: ", e.what());
    }
    TORCH_CHECK(earlier == settings, "kinema preprocess: '", out_dir.string(), "' was made with other settings (",
                earlier.dump(), "; this run: ", settings.dump(),
                "): give the same flags to resume it, or choose another --out");
    return;
  }
  TORCH_CHECK(fs::is_empty(out_dir), "kinema preprocess: output directory '", out_dir.string(),
              "' is not empty and was not made by kinema preprocess (no ", kPreprocessManifest,
              "): choose a new or empty --out");
  write_atomically(manifest, json{{"tool", "kinema preprocess"}, {"settings", settings}}.dump(2) + "\n");
}

}  // namespace

void apply_training_config(const std::string& config_json, PreprocessOptions& options, bool keep_short_side,
                           bool keep_frames) {
  std::ifstream f(config_json, std::ios::binary);
  TORCH_CHECK(f, "kinema preprocess: cannot open the config '", config_json, "'");
  std::stringstream text;
  text << f.rdbuf();
  json cfg;
  try {
    cfg = json::parse(text.str());
  } catch (const json::parse_error& e) {
    TORCH_CHECK(false, "kinema preprocess: '", config_json, "' is not valid JSON: ", e.what());
  }
  TORCH_CHECK(cfg.is_object(), "kinema preprocess: '", config_json, "' must hold a JSON object");
  auto positive = [&](const char* key) -> int64_t {
    const auto it = cfg.find(key);
    TORCH_CHECK(it != cfg.end(), "kinema preprocess: '", config_json, "' has no key '", key, "'");
    TORCH_CHECK(it->is_number() && it->get<double>() >= 1 && std::floor(it->get<double>()) == it->get<double>(),
                "kinema preprocess: '", config_json, "': '", key, "' must be a positive integer, got ", it->dump());
    return it->get<int64_t>();
  };
  // The loader resizes the shorter side to image_size and crops the centre:
  // frames stored at that size lose nothing it would keep.
  if (!keep_short_side) options.short_side = positive("image_size");
  if (!keep_frames) options.frames = positive("frames");
}

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

std::vector<int64_t> sampling_keyframes(int64_t num_frames, int64_t segments) {
  TORCH_CHECK(num_frames > 0 && segments > 0, "kinema::data::sampling_keyframes: need positive frame and ",
              "segment counts, got ", num_frames, ", ", segments);
  std::vector<int64_t> keys;
  for (int64_t j = 0; j < 2 * segments; ++j) {
    const int64_t k = (j * num_frames) / (2 * segments);
    if (keys.empty() || keys.back() != k) keys.push_back(k);
  }
  return keys;
}

PreprocessSummary preprocess(const PreprocessOptions& o, const PreprocessProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  TORCH_CHECK(!o.in_dir.empty() && fs::is_directory(o.in_dir), "kinema preprocess: input directory '",
              o.in_dir, "' does not exist or is not a directory");
  TORCH_CHECK(!o.out_dir.empty(), "kinema preprocess: give an output directory (--out)");
  TORCH_CHECK(o.short_side >= 0, "kinema preprocess: argument 'short-side' must be >= 0, got ", o.short_side);
  TORCH_CHECK(o.fps >= 0 && std::isfinite(o.fps), "kinema preprocess: argument 'fps' must be >= 0, got ", o.fps);
  TORCH_CHECK(o.keyframe_s >= 0 && std::isfinite(o.keyframe_s),
              "kinema preprocess: argument 'keyframe-interval' must be >= 0 seconds, got ", o.keyframe_s);
  TORCH_CHECK(o.frames >= 1, "kinema preprocess: argument 'frames' must be >= 1, got ", o.frames);
  TORCH_CHECK(o.jobs >= 0, "kinema preprocess: argument 'jobs' must be >= 0, got ", o.jobs);
  synth::resolve_encoder(o.codec);  // an unknown codec fails before any work
  const fs::path in_dir = fs::canonical(o.in_dir);
  // Checked before anything is created: the output may not be, or lie inside,
  // the input (it would be walked as input) nor contain it (a mirrored path
  // could then land on an input file).
  const fs::path out_dir_abs = fs::weakly_canonical(fs::absolute(o.out_dir));
  TORCH_CHECK(!within(out_dir_abs, in_dir), "kinema preprocess: output directory '", o.out_dir,
              "' is (inside) the input directory '", o.in_dir, "'");
  TORCH_CHECK(!within(in_dir, out_dir_abs), "kinema preprocess: output directory '", o.out_dir,
              "' contains the input directory '", o.in_dir, "'");
  fs::create_directories(out_dir_abs);
  const fs::path out_dir = fs::canonical(out_dir_abs);
  claim_output(out_dir, o);

  PreprocessSummary summary;
  std::vector<fs::path> todo;
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(in_dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().lexically_relative(in_dir));
  }
  std::sort(files.begin(), files.end());
  std::map<fs::path, fs::path> output_taken;  // output -> the input that writes it
  for (const fs::path& relative : files) {
    if (is_video(relative)) {
      ++summary.videos;
      if (lower(relative.extension().string()) != ".mp4") summary.renamed.push_back(relative.string());
      const auto taken = output_taken.emplace(output_of(out_dir, relative), relative);
      if (!taken.second) {  // e.g. a.avi beside a.mp4
        summary.failures.push_back({relative.string(), "its output '" + output_of(out_dir, relative).string() +
                                                           "' is already that of '" + taken.first->second.string() +
                                                           "'"});
      } else if (fs::exists(output_of(out_dir, relative))) {
        ++summary.skipped;
      } else {
        todo.push_back(relative);
      }
    } else if (relative == kPreprocessManifest || relative == kPreprocessFailures) {
      continue;  // the records of the run that made the input, not data
    } else if (!up_to_date(in_dir / relative, out_dir / relative)) {
      copy_with_mtime(in_dir / relative, out_dir / relative);
      ++summary.copied;
    }
  }

  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int jobs = std::max(1, std::min<int>(o.jobs > 0 ? o.jobs : hardware,
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
        std::replace(error.begin(), error.end(), '\t', ' ');  // one TSV field
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
  const fs::path list = out_dir / kPreprocessFailures;
  if (summary.failures.empty()) {
    std::error_code ignored;
    fs::remove(list, ignored);  // a clean rerun clears the list of an earlier run
  } else {
    std::string text;
    for (const auto& failure : summary.failures) text += failure.path + "\t" + failure.error + "\n";
    write_atomically(list, text);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace kinema::data
