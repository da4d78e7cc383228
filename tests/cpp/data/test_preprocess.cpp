// `kinema preprocess` (core/data/preprocess.h) on a small synthetic benchmark
// (a WebVid-layout tree: train.csv/test.csv, videos/<page_dir>/<id>.mp4,
// annotation JSON) with a corrupt video and a truncated one added: same tree
// out, sizes / rates / keyframes as asked, pixels close to the source,
// failures listed, a second run resumes.
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

}  // namespace

TEST_CASE("preprocess: WebVid-layout synthetic tree with corrupt files, resized, resampled, resumed") {
  const fs::path root = scratch("in"), out = scratch("out");
  synth::SynthOptions so;
  so.out_dir = root.string();
  so.num_train = 3;
  so.num_test = 1;
  so.width = 96;
  so.height = 64;
  so.fps = 10;
  so.min_duration_s = so.max_duration_s = 3;
  so.region_frames = 1;
  so.region_dim = 4;
  so.threads = 2;
  synth::generate(so);
  // A file that is not a video at all, and a real video cut in half.
  { std::ofstream(root / "videos" / "train" / "corrupt.mp4") << "this is not an mp4 file"; }
  const fs::path first = *fs::directory_iterator(root / "videos" / "test");
  const std::string bytes = slurp(first);
  { std::ofstream(root / "videos" / "train" / "truncated.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 3); }

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
    CHECK(total == 6);
  });
  CHECK(s.videos == 6);
  CHECK(calls == 6);
  CHECK(last_done == 6);
  CHECK(s.skipped == 0);
  // corrupt.mp4 always fails; the truncated copy fails at open or mid-decode.
  REQUIRE(s.failures.size() >= 1);
  CHECK(s.failures[0].path == "videos/train/corrupt.mp4");
  CHECK(s.failures[0].error.find("corrupt.mp4") != std::string::npos);
  CHECK(s.converted + static_cast<int64_t>(s.failures.size()) == 6);
  CHECK(!fs::exists(out / "videos" / "train" / "corrupt.mp4"));
  CHECK(!fs::exists(out / "videos" / "train" / "corrupt.mp4.part"));
  const std::string list = slurp(out / "preprocess_failures.tsv");
  CHECK(list.rfind("videos/train/corrupt.mp4\t", 0) == 0);

  // Same tree: every annotation file copied byte for byte, every good video there.
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = e.path().lexically_relative(root);
    if (e.path().extension() == ".mp4") {
      if (rel.filename() == "corrupt.mp4" || rel.filename() == "truncated.mp4") continue;
      CAPTURE(rel.string());
      REQUIRE(fs::exists(out / rel));
      VideoReader src(e.path().string()), dst((out / rel).string());
      // 96x64 -> shorter side 32: 48x32; 10 fps -> 5 fps, 3 s -> 15 frames.
      CHECK(dst.info().width == 48);
      CHECK(dst.info().height == 32);
      CHECK(dst.info().fps == doctest::Approx(5));
      CHECK(dst.info().num_frames == 15);
      // Keyframes every 2 s = 10 output frames.
      CHECK(keyframes(out / rel) == std::vector<int64_t>{0, 10});
      // Output frame k is source frame 2k, resized: compare with the source
      // decoded at that size (H.264 at crf 18: small differences only).
      DecodeOptions at_size;
      at_size.resize.out_w = 48;
      at_size.resize.out_h = 32;
      at_size.resize.short_side = 32;
      VideoReader src_small(e.path().string(), at_size);
      DecodeOptions as_is;
      as_is.resize.out_w = as_is.resize.out_h = 0;
      VideoReader dst_full((out / rel).string(), as_is);
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

TEST_CASE("preprocess: argument errors name the argument; output inside input refused") {
  const fs::path root = scratch("args");
  fs::create_directories(root);
  PreprocessOptions o;
  o.in_dir = root.string();
  o.out_dir = (root / "out").string();
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("is inside the input directory"), c10::Error);
  o.out_dir = root.string() + "_out";
  o.keyframe_s = 0;
  CHECK_THROWS_WITH_AS(preprocess(o), doctest::Contains("argument 'keyframe-interval'"), c10::Error);
  o.keyframe_s = 1;
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
