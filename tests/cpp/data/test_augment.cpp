// S-ViLM cut-and-paste and OA-Trans object-guided masking: invariants,
// hand-computed masks, pixel provenance and determinism under a seed.
#include "core/data/augment_cutpaste.h"
#include "core/data/augment_oatrans.h"

#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <set>
#include <string>
#include "test_data_util.h"

using namespace kinema::data;
using kinema::data::testing::error_of;
using kinema::data::testing::fixture;

namespace {

// videos[b, f, c, y, x] = 1000*b + f: every pixel names its video and frame.
at::Tensor labelled_videos(int64_t batch, int64_t frames) {
  at::Tensor v = at::empty({batch, frames, 2, 3, 3}, at::kLong);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) v[b][f].fill_(1000 * b + f);
  return v;
}

Box make_box(float x1, float y1, float x2, float y2, int64_t label, std::string name, float score) {
  Box b;
  b.x1 = x1;
  b.y1 = y1;
  b.x2 = x2;
  b.y2 = y2;
  b.label = label;
  b.name = std::move(name);
  b.score = score;
  return b;
}

}  // namespace

TEST_CASE("cut_and_paste: invariants and pixel provenance over many seeds") {
  for (const int64_t batch : {2, 3, 5}) {
    for (const int64_t frames : {8, 10}) {  // Nt = 4 (even) and 5 (odd) with clip_len 2
      const int64_t clip_len = 2, nt = frames / clip_len;
      const at::Tensor videos = labelled_videos(batch, frames);
      for (uint64_t seed = 0; seed < 40; ++seed) {
        const auto r = cut_and_paste(videos, clip_len, seed);
        REQUIRE(r.mixed.sizes() == videos.sizes());
        REQUIRE(r.clip_mask.sizes() == at::IntArrayRef{batch, nt});
        for (int64_t i = 0; i < batch; ++i) {
          const int64_t p = r.background[i].item<int64_t>();
          const int64_t s = r.start[i].item<int64_t>(), d = r.length[i].item<int64_t>();
          CHECK(p != i);
          CHECK(p >= 0);
          CHECK(p < batch);
          CHECK(d >= (nt + 1) / 2);
          CHECK(d <= nt - 1);
          CHECK(s >= 0);
          CHECK(s + d <= nt);
          CHECK(r.clip_mask[i].sum().item<int64_t>() == d);
          CHECK(r.beta[i].item<float>() == doctest::Approx(double(d) / nt));
          for (int64_t j = 0; j < nt; ++j) CHECK(r.clip_mask[i][j].item<bool>() == (j >= s && j < s + d));
          for (int64_t f = 0; f < frames; ++f) {
            const int64_t source = r.clip_mask[i][f / clip_len].item<bool>() ? i : p;
            CHECK(at::equal(r.mixed[i][f], videos[source][f]));
          }
          CHECK(r.w_video[i][i].item<float>() == doctest::Approx(r.beta[i].item<float>()));
          CHECK(r.w_video[i][p].item<float>() == doctest::Approx(1 - r.beta[i].item<float>()));
        }
        CHECK(at::allclose(r.w_video.sum(1), at::ones({batch})));
        CHECK(at::equal(r.w_text, r.w_video.t()));
        CHECK((r.w_video > 0).sum().item<int64_t>() == 2 * batch);
      }
    }
  }
}

TEST_CASE("cut_and_paste: determinism under a seed and coverage of the draws") {
  const at::Tensor videos = labelled_videos(3, 8);
  const auto a = cut_and_paste(videos, 2, uint64_t{7});
  const auto b = cut_and_paste(videos, 2, uint64_t{7});
  CHECK(at::equal(a.mixed, b.mixed));
  CHECK(at::equal(a.background, b.background));
  CHECK(at::equal(a.start, b.start));
  CHECK(at::equal(a.length, b.length));
  // Both derangements of 3, both lengths {2,3} and every start appear.
  std::set<std::vector<int64_t>> derangements;
  std::set<int64_t> lengths, starts;
  bool differs = false;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto r = cut_and_paste(videos, 2, seed);
    derangements.insert({r.background[0].item<int64_t>(), r.background[1].item<int64_t>(),
                         r.background[2].item<int64_t>()});
    lengths.insert(r.length[0].item<int64_t>());
    starts.insert(r.start[0].item<int64_t>());
    differs = differs || !at::equal(r.mixed, a.mixed);
  }
  CHECK(derangements == std::set<std::vector<int64_t>>{{1, 2, 0}, {2, 0, 1}});
  CHECK(lengths == std::set<int64_t>{2, 3});
  CHECK(starts == std::set<int64_t>{0, 1, 2});
  CHECK(differs);

  // The same plan applied to another stream mixes it identically.
  std::mt19937_64 rng(3);
  const auto plan = sample_cut_paste_plan(3, 4, rng);
  const auto r1 = apply_cut_paste(videos, 2, plan);
  const auto r2 = apply_cut_paste(videos.to(at::kFloat), 2, plan);
  CHECK(at::equal(r1.mixed.to(at::kFloat), r2.mixed));
}

TEST_CASE("cut_and_paste: bad input is rejected with the argument named") {
  CHECK(error_of([] { cut_and_paste(labelled_videos(1, 8), 2, uint64_t{0}); }).find("at least 2 videos") !=
        std::string::npos);
  CHECK(error_of([] { cut_and_paste(labelled_videos(3, 8), 3, uint64_t{0}); }).find("clip_len") !=
        std::string::npos);
  CHECK(error_of([] { cut_and_paste(labelled_videos(3, 4), 4, uint64_t{0}); }).find("at least 2 clips") !=
        std::string::npos);
}

TEST_CASE("object_guided_mask: patch grid from boxes, hand-computed") {
  const std::vector<Box> boxes = {make_box(10, 20, 40, 33, 0, "a", 1)};
  const at::Tensor m = patch_mask_from_boxes(boxes, 64, 64, 16);
  at::Tensor expected = at::zeros({4, 4}, at::kBool);
  expected.slice(0, 1, 3).slice(1, 0, 3).fill_(true);  // rows 1-2, cols 0-2
  CHECK(at::equal(m, expected));
  // A box on patch borders touches only the patches it covers with positive area.
  const at::Tensor exact = patch_mask_from_boxes({make_box(16, 16, 32, 32, 0, "a", 1)}, 64, 64, 16);
  CHECK(exact.sum().item<int64_t>() == 1);
  CHECK(exact[1][1].item<bool>());
  CHECK(error_of([] { patch_mask_from_boxes({}, 60, 64, 16); }).find("16-pixel patches") != std::string::npos);
}

TEST_CASE("object_guided_mask: masking, unique tags, rescaling and halving") {
  const at::Tensor frames = at::arange(2 * 3 * 64 * 64, at::kFloat).view({2, 3, 64, 64}) + 1;
  std::vector<FrameBoxes> det(2);
  det[0].image_w = 128;  // detections in a 128x128 image: halved onto the 64x64 tensor
  det[0].image_h = 128;
  det[0].boxes = {make_box(20, 40, 80, 66, 51, "man", 0.7f), make_box(0, 0, 16, 16, 3, "person", 0.9f),
                  make_box(100, 100, 120, 120, 51, "man", 0.5f)};  // second 'man': dropped as a duplicate
  ObjectMaskOptions options;
  options.drop_ratio = 0;
  options.shift_prob = 0;
  const auto r = object_guided_mask(frames, det, 0, options, uint64_t{1});
  CHECK(r.anchor == 0);
  CHECK(r.tags == "person man");
  REQUIRE(r.boxes.size() == 2);
  CHECK(r.boxes[1].x1 == doctest::Approx(10));
  CHECK(r.boxes[1].y2 == doctest::Approx(33));
  const at::Tensor expected_mask =
      patch_mask_from_boxes({make_box(0, 0, 8, 8, 0, "", 1), make_box(10, 20, 40, 33, 0, "", 1)}, 64, 64, 16);
  CHECK(at::equal(r.patch_mask, expected_mask));
  const at::Tensor keep = expected_mask.repeat_interleave(16, 0).repeat_interleave(16, 1);
  CHECK(at::equal(r.frame, at::where(keep, frames[0], at::zeros({}, at::kFloat))));

  // A box over most of the frame shrinks to its central half.
  det[1].boxes = {make_box(0, 0, 64, 64, 7, "room", 0.8f)};
  const auto big = object_guided_mask(frames, det, 1, options, uint64_t{1});
  CHECK(big.boxes[0].x1 == doctest::Approx(16));
  CHECK(big.boxes[0].x2 == doctest::Approx(48));
  CHECK(big.patch_mask.sum().item<int64_t>() == 4);
  CHECK(big.patch_mask[1][1].item<bool>());
  CHECK(big.patch_mask[2][2].item<bool>());

  // No boxes: the whole frame is kept and there are no tags.
  std::vector<FrameBoxes> none(2);
  const auto empty = object_guided_mask(frames, none, 1, options, uint64_t{1});
  CHECK(empty.patch_mask.all().item<bool>());
  CHECK(at::equal(empty.frame, frames[1]));
  CHECK(empty.tags.empty());
}

TEST_CASE("object_guided_mask: dropping 20% of the boxes and shifting the anchor") {
  const at::Tensor frames = at::ones({3, 3, 32, 32}, at::kByte);
  std::vector<FrameBoxes> det(3);
  for (int64_t i = 0; i < 5; ++i) {
    det[1].boxes.push_back(make_box(0, 0, 8, 8, i, "c" + std::to_string(i), 1.0f - 0.1f * i));
  }
  det[0].boxes = {make_box(0, 0, 8, 8, 0, "only", 1)};
  det[2].boxes = {make_box(0, 0, 8, 8, 0, "last", 1)};
  ObjectMaskOptions options;
  options.patch_size = 8;
  options.shift_prob = 0;
  std::set<std::string> dropped;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const auto r = object_guided_mask(frames, det, 1, options, seed);
    REQUIRE(r.boxes.size() == 4);  // round(0.2 * 5) = 1 dropped
    for (int64_t i = 0; i < 5; ++i) {
      const std::string name = "c" + std::to_string(i);
      if (r.tags.find(name) == std::string::npos) dropped.insert(name);
    }
    // Kept boxes stay in confidence order.
    for (size_t j = 1; j < r.boxes.size(); ++j) CHECK(r.boxes[j - 1].score > r.boxes[j].score);
    // A single box is never dropped.
    CHECK(object_guided_mask(frames, det, 0, options, seed).tags == "only");
  }
  CHECK(dropped.size() == 5);  // every box is dropped under some seed

  options.shift_prob = 1;
  options.drop_ratio = 0;
  CHECK(object_guided_mask(frames, det, 0, options, uint64_t{0}).anchor == 1);
  CHECK(object_guided_mask(frames, det, 2, options, uint64_t{0}).anchor == 1);
  std::set<int64_t> anchors;
  for (uint64_t seed = 0; seed < 50; ++seed) anchors.insert(object_guided_mask(frames, det, 1, options, seed).anchor);
  CHECK(anchors == std::set<int64_t>{0, 2});

  // Determinism under a seed.
  options.shift_prob = 0.5;
  options.drop_ratio = 0.2;
  const auto a = object_guided_mask(frames, det, 1, options, uint64_t{11});
  const auto b = object_guided_mask(frames, det, 1, options, uint64_t{11});
  CHECK(a.anchor == b.anchor);
  CHECK(a.tags == b.tags);
  CHECK(at::equal(a.patch_mask, b.patch_mask));

  CHECK(error_of([&] { object_guided_mask(frames, det, 3, options, uint64_t{0}); }).find("anchor 3") !=
        std::string::npos);
}

TEST_CASE("object_guided_mask: the loader path (nearest detection frame, shift, one decoded frame)") {
  std::vector<FrameBoxes> det(4);
  const int64_t indices[] = {0, 10, 20, 30};
  for (int64_t i = 0; i < 4; ++i) {
    det[i].frame_index = indices[i];
    det[i].boxes = {make_box(0, 0, 8, 8, i, "c" + std::to_string(i), 1)};
  }
  CHECK(nearest_detection_frame(det, 12.0) == 1);
  CHECK(nearest_detection_frame(det, 15.0) == 1);  // tie -> earlier
  CHECK(nearest_detection_frame(det, 100.0) == 3);
  std::mt19937_64 rng(0);
  CHECK(shift_anchor(2, 4, 0.0, rng) == 2);

  // mask_anchor_frame on one frame == object_guided_mask over all frames when
  // the generator has made the same draws.
  const at::Tensor frames = at::rand({4, 3, 16, 16});
  ObjectMaskOptions options;
  options.patch_size = 8;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const auto all = object_guided_mask(frames, det, 1, options, seed);
    std::mt19937_64 r(seed);
    const int64_t anchor = shift_anchor(1, 4, options.shift_prob, r);
    const auto one = mask_anchor_frame(frames[anchor], det[anchor], options, r);
    CHECK(anchor == all.anchor);
    CHECK(one.anchor == -1);
    CHECK(one.tags == all.tags);
    CHECK(at::equal(one.frame, all.frame));
  }
  CHECK(error_of([&] { mask_anchor_frame(frames, det[0], options, uint64_t{0}); }).find("[C,H,W]") !=
        std::string::npos);
}
