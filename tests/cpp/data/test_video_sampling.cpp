// Frame-index sampling, crop geometry and normalisation, against hand-computed values.
#include <doctest/doctest.h>

#include <set>

#include "core/data/video_sampling.h"
#include "core/data/video_transform.h"

using namespace kinema::data;

namespace {
SamplingOptions with(FrameSampling s, int64_t T) {
  SamplingOptions o;
  o.strategy = s;
  o.num_frames = T;
  return o;
}
}  // namespace

TEST_CASE("sampling: uniform takes the middle frame of T equal segments") {
  // n=10, T=4: floor((2k+1)*10/8) = 1, 3, 6, 8
  CHECK(sample_frame_indices(10, 25, with(FrameSampling::Uniform, 4), 0) ==
        std::vector<int64_t>{1, 3, 6, 8});
  // clip [1 s, 3 s) of a 10 fps video = frames [10, 30): 10 + floor((2k+1)*20/8)
  CHECK(sample_frame_indices(100, 10, with(FrameSampling::Uniform, 4), 0, 1.0, 3.0) ==
        std::vector<int64_t>{12, 17, 22, 27});
  // more frames wanted than the video has: repeats, in order
  CHECK(sample_frame_indices(3, 10, with(FrameSampling::Uniform, 6), 0) ==
        std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(sample_frame_indices(7, 10, with(FrameSampling::Uniform, 1), 0) == std::vector<int64_t>{3});
}

TEST_CASE("sampling: rand draws one frame inside each segment, seeded") {
  const int64_t lo[] = {0, 2, 5, 7}, hi[] = {2, 5, 7, 10};  // segments of n=10, T=4
  std::set<std::vector<int64_t>> seen;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto idx = sample_frame_indices(10, 25, with(FrameSampling::Rand, 4), seed);
    REQUIRE(idx.size() == 4);
    for (int k = 0; k < 4; ++k) {
      CHECK(idx[k] >= lo[k]);
      CHECK(idx[k] < hi[k]);
    }
    CHECK(idx == sample_frame_indices(10, 25, with(FrameSampling::Rand, 4), seed));
    seen.insert(idx);
  }
  CHECK(seen.size() > 5);  // the seed matters
}

TEST_CASE("sampling: headtail splits the draws between the two halves") {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto idx = sample_frame_indices(20, 25, with(FrameSampling::HeadTail, 4), seed);
    REQUIRE(idx.size() == 4);
    CHECK(idx[0] < idx[1]);  // distinct, sorted
    CHECK(idx[1] < 10);
    CHECK(idx[2] >= 10);
    CHECK(idx[2] < idx[3]);
    CHECK(idx[3] < 20);
  }
}

TEST_CASE("sampling: fixed fps centres T frames spaced 1/fps apart") {
  SamplingOptions o = with(FrameSampling::FixedFps, 4);
  o.fps = 2;
  // 10 s video, 2 s window centred at offset 4 s: t = 4.25, 4.75, 5.25, 5.75
  CHECK(sample_frame_indices(100, 10, o, 0) == std::vector<int64_t>{42, 47, 52, 57});
  o.fps = 0.5;  // the window (8 s) exceeds the 3 s clip: clamp to its last frame
  CHECK(sample_frame_indices(30, 10, o, 0) == std::vector<int64_t>{10, 29, 29, 29});
}

TEST_CASE("sampling: explicit times") {
  SamplingOptions o;
  o.strategy = FrameSampling::Times;
  o.times = {0, 0.55, 2.0, 100};
  CHECK(sample_frame_indices(30, 10, o, 0) == std::vector<int64_t>{0, 5, 20, 29});
  o.times = {-1};
  CHECK_THROWS_WITH_AS(sample_frame_indices(30, 10, o, 0), doctest::Contains("time -1"),
                       c10::Error);
}

TEST_CASE("sampling: bad arguments are named") {
  CHECK_THROWS_WITH_AS(sample_frame_indices(10, 25, with(FrameSampling::Uniform, 0), 0),
                       doctest::Contains("T=0"), c10::Error);
  CHECK_THROWS_WITH_AS(sample_frame_indices(10, 25, with(FrameSampling::Uniform, 65), 0),
                       doctest::Contains("T=65"), c10::Error);
  CHECK_THROWS_WITH_AS(sample_frame_indices(0, 25, with(FrameSampling::Uniform, 4), 0),
                       doctest::Contains("no frames"), c10::Error);
  CHECK_THROWS_WITH_AS(parse_frame_sampling("middle"), doctest::Contains("'middle'"), c10::Error);
  CHECK((parse_frame_sampling("headtail") == FrameSampling::HeadTail));
}

TEST_CASE("crop window: shorter side, then centre or random crop") {
  ResizeCrop rc;
  rc.out_h = rc.out_w = 32;
  CropWindow w = crop_window(64, 48, rc, 0);
  CHECK(w.scaled_w == 43);  // 64 * 32/48 = 42.67
  CHECK(w.scaled_h == 32);
  CHECK(w.x0 == 5);
  CHECK(w.y0 == 0);
  rc.out_h = rc.out_w = 224;
  w = crop_window(1280, 720, rc, 0);
  CHECK(w.scaled_w == 398);
  CHECK(w.scaled_h == 224);
  CHECK(w.x0 == 87);
  rc.short_side = 256;
  rc.random_crop = true;
  std::set<int64_t> xs;
  for (uint64_t s = 0; s < 16; ++s) {
    w = crop_window(1280, 720, rc, s);
    CHECK(w.scaled_h == 256);
    CHECK(w.x0 + 224 <= w.scaled_w);
    CHECK(w.y0 + 224 <= 256);
    xs.insert(w.x0);
  }
  CHECK(xs.size() > 4);
  rc.out_h = 0;  // keep the source size
  w = crop_window(64, 48, rc, 0);
  CHECK((w.out_w == 64 && w.out_h == 48 && w.x0 == 0));
}

TEST_CASE("normalize_video: CLIP and ImageNet statistics per channel") {
  at::Tensor x = at::full({2, 3, 1, 1}, 255, at::kByte);
  x.select(1, 1).fill_(0);
  at::Tensor y = normalize_video(x, VideoNorm::Clip);
  CHECK((y.scalar_type() == at::kFloat));
  CHECK(y[0][0][0][0].item<float>() == doctest::Approx((1 - 0.48145466) / 0.26862954));
  CHECK(y[1][1][0][0].item<float>() == doctest::Approx(-0.4578275 / 0.26130258));
  y = normalize_video(x, VideoNorm::ImageNet);
  CHECK(y[0][2][0][0].item<float>() == doctest::Approx((1 - 0.406) / 0.225));
  CHECK(normalize_video(x, VideoNorm::None)[0][0][0][0].item<float>() == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(normalize_video(x.to(at::kFloat), VideoNorm::Clip),
                       doctest::Contains("uint8"), c10::Error);
  CHECK_THROWS_WITH_AS(parse_video_norm("coco"), doctest::Contains("'coco'"), c10::Error);
}
