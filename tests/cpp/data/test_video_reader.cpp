// VideoReader against frames decoded independently by PyAV
// (tests/fixtures/make_video_fixture.py), and its errors on bad files.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/data/video_reader.h"
#include "core/io/npz.h"
#include "test_data_util.h"

using namespace kinema::data;
using kinema::data::testing::error_of;
using kinema::data::testing::fixture;
namespace fs = std::filesystem;

namespace {

// PyAV's [N, H, W, 3] -> ours [N, 3, H, W]
at::Tensor expected(const std::string& name) {
  return kinema::io::load_npy(fixture(name)).permute({0, 3, 1, 2}).contiguous();
}

DecodeOptions native() {
  DecodeOptions o;
  o.resize.out_h = o.resize.out_w = 0;
  return o;
}

int64_t max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kInt) - b.to(at::kInt)).abs().max().item<int64_t>();
}

fs::path temp_file(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "kinema_test_video";
  fs::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST_CASE("video: container info of mp4, mkv, avi and webm") {
  for (const char* name : {"video_tiny.mp4", "video_tiny.mkv", "video_tiny.avi", "video_tiny.webm"}) {
    CAPTURE(name);
    VideoReader r(fixture(name), native());
    CHECK(r.info().num_frames == 30);
    CHECK(r.info().fps == doctest::Approx(10.0));
    CHECK(r.info().duration_s == doctest::Approx(3.0).epsilon(0.05));
    CHECK(r.info().width == 64);
    CHECK(r.info().height == 48);
  }
  // Matroska and WebM carry no frame count: it comes from the packet scan.
  CHECK(VideoReader(fixture("video_tiny.webm"), native()).info().scanned);
  CHECK(!VideoReader(fixture("video_tiny.mp4"), native()).info().scanned);
}

TEST_CASE("video: H.264 frames equal PyAV's, with and without skipping non-reference frames") {
  const std::vector<int64_t> idx = {0, 4, 9, 10, 17, 29};
  const at::Tensor want = expected("video_tiny_mp4_frames.npy");
  for (bool skip : {true, false}) {
    for (const char* name : {"video_tiny.mp4", "video_tiny.mkv"}) {
      CAPTURE(name);
      CAPTURE(skip);
      DecodeOptions o = native();
      o.skip_nonref = skip;
      VideoReader r(fixture(name), o);
      at::Tensor got = r.read_frames(idx);
      CHECK(got.sizes() == want.sizes());
      CHECK(max_abs_diff(got, want) == 0);
    }
  }
}

TEST_CASE("video: sparse reads decode each needed frame once and seek only forward gaps") {
  VideoReader r(fixture("video_tiny.mp4"), native());
  // Targets out of order and repeated: slots keep the requested order.
  at::Tensor got = r.read_frames({29, 0, 10, 0});
  const at::Tensor want = expected("video_tiny_mp4_frames.npy");  // rows: 0 4 9 10 17 29
  CHECK(max_abs_diff(got[0], want[5]) == 0);
  CHECK(max_abs_diff(got[1], want[0]) == 0);
  CHECK(max_abs_diff(got[3], want[0]) == 0);
  CHECK(max_abs_diff(got[2], want[3]) == 0);
  // 3 distinct targets in 3 GOPs (keyframes at 0, 10, 20): seeks to 10 and 20
  // instead of decoding through, and never decodes all 30 frames.
  CHECK(r.stats().seeks == 2);
  CHECK(r.stats().frames_decoded < 30);
  // A second call on the same reader goes back: still exact.
  CHECK(max_abs_diff(r.read_frames({4, 17}), want.index({at::indexing::Slice(1, 5, 3)})) == 0);
}

TEST_CASE("video: MPEG-4 (avi) and VP8 (webm) frames equal PyAV's") {
  const std::vector<int64_t> idx = {0, 10, 29};
  CHECK(max_abs_diff(VideoReader(fixture("video_tiny.avi"), native()).read_frames(idx),
                     expected("video_tiny_avi_frames.npy")) == 0);
  CHECK(max_abs_diff(VideoReader(fixture("video_tiny.webm"), native()).read_frames(idx),
                     expected("video_tiny_webm_frames.npy")) == 0);
}

TEST_CASE("video: resize of the shorter side + centre crop equals PyAV's bilinear reformat") {
  DecodeOptions o;
  o.resize.out_h = o.resize.out_w = 32;
  VideoReader r(fixture("video_tiny.mp4"), o);
  at::Tensor got = r.read_frames({0, 4, 9, 10, 17, 29});
  CHECK(got.sizes() == at::IntArrayRef({6, 3, 32, 32}));
  CHECK(max_abs_diff(got, expected("video_tiny_mp4_resized.npy")) <= 1);
}

TEST_CASE("video: sample() uses the sampling strategy") {
  SamplingOptions s;
  s.num_frames = 3;  // uniform over 30 frames: 5, 15, 25
  at::Tensor got = read_video(fixture("video_tiny.mp4"), s, native());
  VideoReader r(fixture("video_tiny.mp4"), native());
  CHECK(max_abs_diff(got, r.read_frames({5, 15, 25})) == 0);
}

TEST_CASE("video: missing, corrupt and truncated files fail with the path") {
  const std::string missing = fixture("no_such_video.mp4");
  CHECK_THROWS_WITH_AS(VideoReader(missing, native()), doctest::Contains(missing.c_str()), VideoError);

  const fs::path garbage = temp_file("garbage.mp4");
  {
    std::ofstream f(garbage, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>((i * 7919) & 0xff));
  }
  CHECK_THROWS_WITH_AS(VideoReader(garbage.string(), native()),
                       doctest::Contains(garbage.string().c_str()), VideoError);

  // mp4 cut in the middle: its index (moov) is at the end, so opening fails.
  const fs::path cut = temp_file("truncated.mp4");
  fs::copy_file(fixture("video_tiny.mp4"), cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  CHECK_THROWS_WITH_AS(VideoReader(cut.string(), native()), doctest::Contains(cut.string().c_str()),
                       VideoError);

  // Matroska cut in the middle opens, but the frames past the cut are missing.
  const fs::path cut_mkv = temp_file("truncated.mkv");
  fs::copy_file(fixture("video_tiny.mkv"), cut_mkv, fs::copy_options::overwrite_existing);
  fs::resize_file(cut_mkv, fs::file_size(cut_mkv) / 3);
  bool failed = false;
  try {
    VideoReader r(cut_mkv.string(), native());
    // The scan counts what is there; asking for frame 29 cannot be satisfied
    // from a stream that stops early, or the count shrank with the file.
    if (r.info().num_frames >= 30) r.read_frames({29});
    else failed = r.info().num_frames < 30;
  } catch (const VideoError& e) {
    failed = std::string(e.what()).find(cut_mkv.string()) != std::string::npos;
  }
  CHECK(failed);
  CHECK_THROWS_WITH_AS(VideoReader(fixture("video_tiny.mp4"), native()).read_frames({}),
                       doctest::Contains("no frame indices"), VideoError);
}
