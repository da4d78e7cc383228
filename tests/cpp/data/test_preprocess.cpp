// `kinema preprocess` (core/data/preprocess.h) on a small synthetic benchmark
// (a WebVid-layout tree: train.csv/test.csv, videos/<page_dir>/<id>.mp4,
// annotation JSON) with a corrupt video and a truncated one added: same tree
// out, sizes / rates / keyframes as asked, pixels close to the source,
// failures listed, a second run resumes, other settings refused. The CLI and
// the loader on the output: tests/lua/test_preprocess.lua.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include "core/data/preprocess.h"
#include "core/data/synth.h"
#include "core/data/video_reader.h"

using namespace kinema::data;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kinema_test_preprocess_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Frame indices of the keyframes (packet order = presentation order here: no
// B-frames in the synth encoder's or preprocess's output at these settings).
std::vector<int64_t> keyframes(const fs::path& path) {
  AVFormatContext* fc = nullptr;
  REQUIRE(avformat_open_input(&fc, path.string().c_str(), nullptr, nullptr) == 0);
  REQUIRE(avformat_find_stream_info(fc, nullptr) >= 0);
  const int stream = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  std::vector<std::pair<int64_t, bool>> packets;  // (pts, key)
  AVPacket* pkt = av_packet_alloc();
  while (av_read_frame(fc, pkt) >= 0) {
    if (pkt->stream_index == stream) packets.emplace_back(pkt->pts, (pkt->flags & AV_PKT_FLAG_KEY) != 0);
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  avformat_close_input(&fc);
  std::sort(packets.begin(), packets.end());
  std::vector<int64_t> keys;
  for (size_t i = 0; i < packets.size(); ++i)
    if (packets[i].second) keys.push_back(static_cast<int64_t>(i));
  return keys;
}

// A small synthetic WebVid tree (10 fps, 3 s videos, one test video) in root.
void synth_tree(const fs::path& root, int64_t num_train, int64_t width, int64_t height, int threads) {
  synth::SynthOptions so;
  so.out_dir = root.string();
  so.num_train = num_train;
  so.num_test = 1;
  so.width = width;
  so.height = height;
  so.fps = 10;
  so.min_duration_s = so.max_duration_s = 3;
  so.region_frames = 1;
  so.region_dim = 4;
  so.threads = threads;
  synth::generate(so);
}

}  // namespace

TEST_CASE("preprocess: WebVid-layout synthetic tree with corrupt files, resized, resampled, resumed") {
  const fs::path root = scratch("in"), out = scratch("out");
  synth_tree(root, 3, 96, 64, 2);
  // A file that is not a video at all, and a real video cut in half.
  { std::ofstream(root / "videos" / "train" / "corrupt.mp4") << "this is not an mp4 file"; }
  const fs::path first = *fs::directory_iterator(root / "videos" / "test");
  const std::string bytes = slurp(first);
  { std::ofstream(root / "videos" / "train" / "truncated.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 3); }
  // Two inputs that would share an output: the second (in sorted order) is listed.
  fs::copy_file(first, root / "videos" / "train" / "twin.mp4");
  fs::copy_file(first, root / "videos" / "train" / "twin.mkv");

  PreprocessOptions o;
  o.in_dir = root.string();
  o.out_dir = out.string();
  o.short_side = 32;
  o.fps = 5;
  o.keyframe_s = 2;
  o.jobs = 2;
  int64_t calls = 0, last_done = 0;
  const PreprocessSummary s = preprocess(o, [&](int64_t done, int64_t total, int64_t) {
    ++calls;
    last_done = done;
    CHECK(total == 7);
  });
  CHECK(s.videos == 8);
  CHECK(calls == 7);
  CHECK(last_done == 7);
  CHECK(s.skipped == 0);
  CHECK(s.renamed == std::vector<std::string>{"videos/train/twin.mkv"});
  // corrupt.mp4 always fails; the truncated copy fails at open or mid-decode;
  // twin.mp4 (sorted after twin.mkv) finds its output taken.
  REQUIRE(s.failures.size() >= 2);
  CHECK(s.failures[0].path == "videos/train/corrupt.mp4");
  CHECK(s.failures[0].error.find("corrupt.mp4") != std::string::npos);
  CHECK(s.failures.back().path == "videos/train/twin.mp4");
  CHECK(s.failures.back().error.find("is already that of 'videos/train/twin.mkv'") != std::string::npos);
  CHECK(s.converted + static_cast<int64_t>(s.failures.size()) == 8);
  CHECK(!fs::exists(out / "videos" / "train" / "corrupt.mp4"));
  CHECK(!fs::exists(out / "videos" / "train" / "corrupt.mp4.part"));
  CHECK(fs::exists(out / "videos" / "train" / "twin.mp4"));
  const std::string list = slurp(out / "preprocess_failures.tsv");
  CHECK(list.rfind("videos/train/corrupt.mp4\t", 0) == 0);
  CHECK(list.find("videos/train/twin.mp4\t") != std::string::npos);
  CHECK(slurp(out / "preprocess.json").find("\"interval_s\": 2.0") != std::string::npos);

  // Same tree: every annotation file copied byte for byte, every good video there.
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = e.path().lexically_relative(root);
    if (e.path().extension() == ".mp4" || e.path().extension() == ".mkv") {
      const std::string name = rel.filename().string();
      if (name == "corrupt.mp4" || name == "truncated.mp4" || name == "twin.mp4") continue;
      fs::path out_rel = rel;
      out_rel.replace_extension(".mp4");
      CAPTURE(rel.string());
      REQUIRE(fs::exists(out / out_rel));
      VideoReader dst((out / out_rel).string());
      // 96x64 -> shorter side 32: 48x32; 10 fps -> 5 fps, 3 s -> 15 frames.
      CHECK(dst.info().width == 48);
      CHECK(dst.info().height == 32);
      CHECK(dst.info().fps == doctest::Approx(5));
      CHECK(dst.info().num_frames == 15);
      // Keyframes every 2 s = 10 output frames.
      CHECK(keyframes(out / out_rel) == std::vector<int64_t>{0, 10});
      // Output frame k is source frame 2k, resized: compare with the source
      // decoded at that size (H.264 at crf 18: small differences only).
      DecodeOptions at_size;
      at_size.resize.out_w = 48;
      at_size.resize.out_h = 32;
      at_size.resize.short_side = 32;
      VideoReader src_small(e.path().string(), at_size);
      DecodeOptions as_is;
      as_is.resize.out_w = as_is.resize.out_h = 0;
      VideoReader dst_full((out / out_rel).string(), as_is);
      const at::Tensor a = src_small.read_frames({0, 6, 14, 28}).to(at::kFloat);
      const at::Tensor b = dst_full.read_frames({0, 3, 7, 14}).to(at::kFloat);
      CHECK((a - b).abs().mean().item<double>() < 4.0);
      // A different source frame is further away than the re-encoding error.
      const at::Tensor other = src_small.read_frames({5, 11, 19, 3}).to(at::kFloat);
      CHECK((other - b).abs().mean().item<double>() > (a - b).abs().mean().item<double>());
    } else {
      CAPTURE(rel.string());
      REQUIRE(fs::exists(out / rel));
      CHECK(slurp(out / rel) == slurp(e.path()));
    }
  }

  // Resume: everything converted is skipped; the failures are tried again and listed again.
  const PreprocessSummary again = preprocess(o);
  CHECK(again.skipped == s.converted);
  CHECK(again.converted == 0);
  CHECK(again.copied == 0);
  CHECK(again.failures.size() == s.failures.size());
  CHECK(fs::exists(out / "preprocess_failures.tsv"));

  // Other settings into the same folder: refused before any work, naming both.
  PreprocessOptions other = o;
  other.short_side = 48;
  CHECK_THROWS_WITH_AS(preprocess(other), doctest::Contains("was made with other settings"), c10::Error);
  other = o;
  other.keyframe_s = 0;
  CHECK_THROWS_WITH_AS(preprocess(other), doctest::Contains("\"matched_to_frames\":8"), c10::Error);

  // A video removed from the output (an interrupted run) is the only one redone.
  const fs::path redo = out / "videos" / "test" / first.filename();
  fs::remove(redo);
  { std::ofstream(fs::path(redo.string() + ".part")) << "left by a killed run"; }
  const PreprocessSummary third = preprocess(o);
  CHECK(third.converted == 1);
  CHECK(fs::exists(redo));
  CHECK(!fs::exists(redo.string() + ".part"));
  fs::remove_all(root);
  fs::remove_all(out);
}

TEST_CASE("preprocess: keyframes matched to the sampling, sizes from a training config") {
  const fs::path root = scratch("matched"), out = scratch("matched_out");
  synth_tree(root, 1, 64, 80, 1);
  const fs::path config = root.string() + "_config.json";
  { std::ofstream(config) << R"({"image_size": 40, "frames": 3, "train": {"lr": 1e-4}})"; }
  PreprocessOptions o;
  o.in_dir = root.string();
  o.out_dir = out.string();
  o.fps = 25;  // above the source's 10: capped
  o.jobs = 1;
  apply_training_config(config.string(), o, false, false);
  CHECK(o.short_side == 40);
  CHECK(o.frames == 3);
  const PreprocessSummary s = preprocess(o);
  CHECK(s.converted == 2);
  CHECK(s.failures.empty());
  CHECK(!fs::exists(out / "preprocess_failures.tsv"));
  for (const auto& e : fs::recursive_directory_iterator(out / "videos")) {
    if (!e.is_regular_file()) continue;
    CAPTURE(e.path().string());
    VideoReader v(e.path().string());
    // 64x80 portrait: width is the shorter side.
    CHECK(v.info().width == 40);
    CHECK(v.info().height == 50);
    CHECK(v.info().fps == doctest::Approx(10));
    CHECK(v.info().num_frames == 30);
    // 3 segments of 30 frames: starts 0, 10, 20 and middles 5, 15, 25.
    CHECK(keyframes(e.path()) == std::vector<int64_t>{0, 5, 10, 15, 20, 25});
  }
  // Flags set on the command line win over the config.
  PreprocessOptions kept;
  kept.short_side = 16;
  apply_training_config(config.string(), kept, true, false);
  CHECK(kept.short_side == 16);
  CHECK(kept.frames == 3);
  { std::ofstream(config) << R"({"image_size": 0.5, "frames": 3})"; }
  CHECK_THROWS_WITH_AS(apply_training_config(config.string(), kept, false, false),
                       doctest::Contains("'image_size' must be a positive integer, got 0.5"), c10::Error);
  { std::ofstream(config) << R"({"image_size": 224})"; }
  CHECK_THROWS_WITH_AS(apply_training_config(config.string(), kept, false, false),
                       doctest::Contains("has no key 'frames'"), c10::Error);
  { std::ofstream(config) << "{not json"; }
  CHECK_THROWS_WITH_AS(apply_training_config(config.string(), kept, false, false),
                       doctest::Contains("is not valid JSON"), c10::Error);
  fs::remove(config);
  fs::remove_all(root);
  fs::remove_all(out);
}

TEST_CASE("preprocess: sampling_keyframes are the segment starts and middles") {
  CHECK(sampling_keyframes(30, 3) == std::vector<int64_t>{0, 5, 10, 15, 20, 25});
  CHECK(sampling_keyframes(15, 3) == std::vector<int64_t>{0, 2, 5, 7, 10, 12});
  CHECK(sampling_keyframes(3, 8) == std::vector<int64_t>{0, 1, 2});  // fewer frames than segments
  CHECK(sampling_keyframes(1, 1) == std::vector<int64_t>{0});
  CHECK_THROWS_WITH_AS(sampling_keyframes(0, 8), doctest::Contains("positive"), c10::Error);
}

TEST_CASE("preprocess: argument errors name the argument; overlapping or foreign output refused") {
  const fs::path root = scratch("args");
  fs::create_directories(root);
  PreprocessOptions o;
  o.in_dir = root.string();
  o.out_dir = (root / "out").string();
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("is (inside) the input directory"), c10::Error);
  CHECK(!fs::exists(root / "out"));  // refused before anything was created
  o.out_dir = root.string();
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("is (inside) the input directory"), c10::Error);
  o.in_dir = (root / "in").string();
  fs::create_directories(o.in_dir);
  o.out_dir = root.string();
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("contains the input directory"), c10::Error);
  o.in_dir = root.string();
  o.out_dir = root.string() + "_out";
  fs::create_directories(o.out_dir);
  { std::ofstream(fs::path(o.out_dir) / "notes.txt") << "a user's file"; }
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("is not empty and was not made by kinema preprocess"),
                       c10::Error);
  fs::remove(fs::path(o.out_dir) / "notes.txt");
  o.keyframe_s = -1;
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("argument 'keyframe-interval'"), c10::Error);
  o.keyframe_s = 0;
  o.frames = 0;
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("argument 'frames'"), c10::Error);
  o.frames = 8;
  o.fps = -1;
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("argument 'fps'"), c10::Error);
  o.fps = 0;
  o.in_dir = (root / "missing").string();
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("does not exist"), c10::Error);
  fs::remove_all(root);
  fs::remove_all(root.string() + "_out");
}

TEST_CASE("preprocess: resample_indices keeps the last source frame at or before each output time") {
  CHECK(resample_indices(30, 10, 5) == std::vector<int64_t>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28});
  CHECK(resample_indices(4, 10, 20) == std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3, 3});
  CHECK(resample_indices(10, 30, 12) == std::vector<int64_t>{0, 2, 5, 7});
  CHECK(resample_indices(1, 25, 5) == std::vector<int64_t>{0});
  CHECK_THROWS_WITH_AS(resample_indices(0, 25, 5), doctest::Contains("positive"), c10::Error);
}
