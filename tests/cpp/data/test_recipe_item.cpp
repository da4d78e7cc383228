// The vision parts of the recipe item: nearest detection frame, boxes
// normalised through the crop, top-k detections per sampled frame, region
// tensors from .npz files, the anchor choice, cut-and-paste as a batch
// function, and option errors.
#include <doctest/doctest.h>

#include <c10/util/Exception.h>

#include <filesystem>

#include "core/data/detections.h"
#include "core/data/recipe_item.h"
#include "core/data/vision_item.h"
#include "core/io/npz.h"

using namespace kinema::data;

namespace {

FrameBoxes frame_at(int64_t index, std::vector<Box> boxes, int64_t w = 100, int64_t h = 100) {
  FrameBoxes f;
  f.frame_index = index;
  f.image_w = w;
  f.image_h = h;
  f.boxes = std::move(boxes);
  return f;
}

Box box(float x1, float y1, float x2, float y2, int64_t label, float score) {
  Box b;
  b.x1 = x1, b.y1 = y1, b.x2 = x2, b.y2 = y2, b.label = label, b.score = score;
  return b;
}

}  // namespace

TEST_CASE("nearest detection frame: by frame index, then time, then list order; ties earlier") {
  const std::vector<FrameBoxes> by_index = {frame_at(0, {}), frame_at(10, {}), frame_at(20, {})};
  CHECK(nearest_frame(by_index, 4, 25) == 0);
  CHECK(nearest_frame(by_index, 5, 25) == 0);  // tie
  CHECK(nearest_frame(by_index, 6, 25) == 1);
  CHECK(nearest_frame(by_index, 100, 25) == 2);
  std::vector<FrameBoxes> by_time = {frame_at(-1, {}), frame_at(-1, {}), frame_at(-1, {})};
  for (int i = 0; i < 3; ++i) by_time[i].time_s = i;  // frames 0, 10, 20 at 10 fps
  CHECK(nearest_frame(by_time, 14, 10) == 1);
  CHECK(nearest_frame(by_time, 16, 10) == 2);
  CHECK(nearest_frame(by_time, 16, 0) == 2);  // no fps: list position 2 is nearest to 16
  CHECK(nearest_frame({}, 3, 10) == -1);
}

TEST_CASE("boxes are normalised to the output crop (hand-computed)") {
  // 160x120 video -> shorter side 64 -> 85x64 (160*64/120 = 85.33), centre crop x0 = 10.
  FrameGeometry g;
  g.video_w = 160;
  g.video_h = 120;
  ResizeCrop rc;
  rc.out_w = rc.out_h = 64;
  g.crop = crop_window(160, 120, rc, 0);
  REQUIRE(g.crop.scaled_w == 85);
  REQUIRE(g.crop.x0 == 10);
  REQUIRE(g.crop.y0 == 0);
  Box out;
  REQUIRE(normalise_box(box(40, 30, 120, 90, 3, 0.9f), 0, 0, g, out));
  CHECK(out.x1 == doctest::Approx((0.25 * 85 - 10) / 64));
  CHECK(out.x2 == doctest::Approx((0.75 * 85 - 10) / 64));
  CHECK(out.y1 == doctest::Approx(0.25));
  CHECK(out.y2 == doctest::Approx(0.75));
  CHECK(out.label == 3);
  // Boxes of a detector run at another resolution (320x240) land at the same place.
  REQUIRE(normalise_box(box(80, 60, 240, 180, 3, 0.9f), 320, 240, g, out));
  CHECK(out.x1 == doctest::Approx((0.25 * 85 - 10) / 64));
  // Partly outside: clamped; wholly outside the crop: dropped.
  REQUIRE(normalise_box(box(0, 0, 80, 60, 1, 1), 0, 0, g, out));
  CHECK(out.x1 == 0.0f);
  CHECK(out.x2 == doctest::Approx((0.5 * 85 - 10) / 64));
  CHECK_FALSE(normalise_box(box(0, 0, 10, 60, 1, 1), 0, 0, g, out));
  // No crop known (video = false): plain normalisation by the image size.
  FrameGeometry plain;
  REQUIRE(normalise_box(box(10, 20, 30, 40, 1, 1), 100, 200, plain, out));
  CHECK(out.x1 == doctest::Approx(0.1));
  CHECK(out.y2 == doctest::Approx(0.2));
  CHECK_THROWS_WITH_AS(normalise_box(box(10, 20, 30, 40, 1, 1), 0, 0, plain, out),
                       doctest::Contains("image size"), c10::Error);
}

TEST_CASE("detections at the sampled frames: nearest frame, top-k by score, padded invalid") {
  const std::vector<FrameBoxes> dets = {
      frame_at(0, {box(0, 0, 50, 50, 1, 0.5f), box(50, 50, 100, 100, 2, 0.9f), box(10, 10, 20, 20, 4, 0.1f)}),
      frame_at(20, {box(0, 0, 100, 50, 3, 0.7f)})};
  FrameGeometry g;
  g.video_w = g.video_h = 100;
  const DetectionTensors d = detections_at_frames(dets, {2, 18, 9}, 10, g, 2, false);
  CHECK(d.boxes.sizes() == at::IntArrayRef({3, 2, 4}));
  CHECK((d.classes.scalar_type() == at::kLong));
  // Frame 2 -> detections of frame 0, most confident first.
  CHECK(d.classes[0][0].item<int64_t>() == 2);
  CHECK(d.classes[0][1].item<int64_t>() == 1);
  CHECK(d.scores[0][0].item<float>() == doctest::Approx(0.9));
  CHECK(at::allclose(d.boxes[0][0], at::tensor({0.5f, 0.5f, 1.0f, 1.0f})));
  // Frame 18 -> frame 20: one box, then padding.
  CHECK(d.classes[1][0].item<int64_t>() == 3);
  CHECK(d.classes[1][1].item<int64_t>() == -1);
  CHECK(at::allclose(d.boxes[1][0], at::tensor({0.0f, 0.0f, 1.0f, 0.5f})));
  CHECK(d.boxes[1][1].abs().sum().item<float>() == 0.0f);
  // Frame 9 is nearer to 0 than to 20.
  CHECK(d.classes[2][0].item<int64_t>() == 2);
  // No detections at all: every row invalid, no error.
  const DetectionTensors none = detections_at_frames({}, {0, 5}, 10, g, 3, false);
  CHECK(none.classes.eq(-1).all().item<bool>());
  CHECK(none.boxes.sizes() == at::IntArrayRef({2, 3, 4}));
  CHECK(none.scores.sum().item<float>() == 0.0f);
}

TEST_CASE("region tensors: top-k of the chosen files, 7-d locations, frame order, padding") {
  const auto dir = std::filesystem::temp_directory_path() / "kinema_test_regions";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int64_t d = 4;
  for (int f = 0; f < 3; ++f) {
    // Frame f: two boxes, the second more confident; features hold 10*f + box.
    at::Tensor x = at::stack({at::full({d}, 10.0f * f), at::full({d}, 10.0f * f + 1)});
    at::Tensor bbox = at::tensor({0.0f, 0.0f, 50.0f, 20.0f, 10.0f, 10.0f, 110.0f, 60.0f}).reshape({2, 4});
    char name[64];
    std::snprintf(name, sizeof(name), "frame_%06d.npz", f * 10);
    kinema::io::save_npz((dir / name).string(),
                         {{"x", x}, {"bbox", bbox}, {"num_bbox", at::scalar_tensor(2, at::kLong)},
                          {"image_h", at::scalar_tensor(100, at::kLong)},
                          {"image_w", at::scalar_tensor(200, at::kLong)},
                          {"cls", at::tensor({1, 2}, at::kLong)},
                          {"conf", at::tensor({0.3f, 0.8f})}});
  }
  // frames = 4 > 3 files: all three used, the fourth padded; k = 3 > 2 boxes.
  const RegionTensors r = region_tensors(dir.string(), 4, 3, 0, FrameSampling::Uniform, 0);
  CHECK(r.features.sizes() == at::IntArrayRef({12, d}));
  CHECK(r.locations.sizes() == at::IntArrayRef({12, 7}));
  CHECK(r.frame_index.equal(at::tensor({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3}, at::kLong)));
  CHECK(r.region_mask.equal(at::tensor({1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0}, at::kLong).to(at::kBool)));
  CHECK(r.features[0][0].item<float>() == 1.0f);   // frame 0's more confident box first
  CHECK(r.features[1][0].item<float>() == 0.0f);
  CHECK(r.features[6][0].item<float>() == 21.0f);  // frame 2
  CHECK(r.features[9].abs().sum().item<float>() == 0.0f);
  // Location of box (10,10,110,60) in 200x100: x1/W, y1/H, x2/W, y2/H, w/W, h/H, area.
  CHECK(at::allclose(r.locations[0], at::tensor({0.05f, 0.1f, 0.55f, 0.6f, 0.5f, 0.5f, 0.25f})));
  // frames = 2 < 3 files: uniform picks positions (2k+1)*3/4 = 0 and 2.
  const RegionTensors two = region_tensors(dir.string(), 2, 2, 0, FrameSampling::Uniform, 0);
  CHECK(two.features[0][0].item<float>() == 1.0f);
  CHECK(two.features[2][0].item<float>() == 21.0f);
  // A sample without region files: all invalid with dim, an error naming the option without.
  const RegionTensors empty = region_tensors((dir / "missing").string(), 2, 3, 5, FrameSampling::Uniform, 0);
  CHECK(empty.features.sizes() == at::IntArrayRef({6, 5}));
  CHECK_FALSE(empty.region_mask.any().item<bool>());
  CHECK_THROWS_WITH_AS(region_tensors((dir / "missing").string(), 2, 3, 0, FrameSampling::Uniform, 0),
                       doctest::Contains("regions.dim"), c10::Error);
  CHECK_THROWS_WITH_AS(region_tensors(dir.string(), 2, 3, 7, FrameSampling::Uniform, 0),
                       doctest::Contains("regions.dim"), c10::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("anchor choice: detection frame nearest to the clip centre, shifted by the coin") {
  const std::vector<FrameBoxes> dets = {frame_at(0, {}), frame_at(8, {}), frame_at(16, {})};
  std::mt19937_64 rng(1);
  CHECK(choose_anchor(dets, {2, 6, 10, 14}, 10, 0.0, rng) == std::pair<int64_t, int64_t>{1, 8});
  // Always shifted: to a neighbour of frame 1.
  for (uint64_t seed = 0; seed < 8; ++seed) {
    std::mt19937_64 r(seed);
    const auto a = choose_anchor(dets, {2, 6, 10, 14}, 10, 1.0, r);
    CHECK((a.first == 0 || a.first == 2));
    CHECK(a.second == dets[a.first].frame_index);
  }
  CHECK(choose_anchor({}, {2, 6, 10, 14}, 10, 0.5, rng) == std::pair<int64_t, int64_t>{-1, 10});
}

TEST_CASE("cut-and-paste batch function: mixed videos agree with clip_mask and Wv") {
  const int64_t b = 4, t = 6, clip_len = 2, nt = 3;
  // Video i is filled with i everywhere, so every clip tells its source.
  const at::Tensor video = at::arange(b, at::kFloat).reshape({b, 1, 1, 1, 1}).expand({b, t, 3, 2, 2}).contiguous();
  Batch batch;
  batch.tensors["video"] = video;
  batch.epoch = 1;
  batch.index = 2;
  make_cut_paste_batch_fn(clip_len, 9)(batch);
  const at::Tensor mixed = batch.tensors.at("video"), mask = batch.tensors.at("clip_mask");
  const at::Tensor wv = batch.tensors.at("Wv"), wc = batch.tensors.at("Wc");
  CHECK(mask.sizes() == at::IntArrayRef({b, nt}));
  CHECK((mask.scalar_type() == at::kBool));
  CHECK(wc.equal(wv.t()));
  CHECK(at::allclose(wv.sum(1), at::ones({b})));
  for (int64_t i = 0; i < b; ++i) {
    const double beta = mask[i].sum().item<double>() / nt;
    CHECK(wv[i][i].item<float>() == doctest::Approx(beta));
    CHECK(beta >= 2.0 / 3 - 1e-9);  // d in [ceil(Nt/2), Nt-1] = [2, 2]
    CHECK(beta < 1);
    int64_t background = -1;
    for (int64_t j = 0; j < b; ++j)
      if (j != i && wv[i][j].item<float>() > 0) background = j;
    REQUIRE(background >= 0);
    CHECK(wv[i][background].item<float>() == doctest::Approx(1 - beta));
    for (int64_t c = 0; c < nt; ++c) {
      const float expected = mask[i][c].item<bool>() ? static_cast<float>(i) : static_cast<float>(background);
      CHECK(mixed[i].narrow(0, c * clip_len, clip_len).eq(expected).all().item<bool>());
    }
  }
  // Same batch position and seed -> same mixing.
  Batch again;
  again.tensors["video"] = video;
  again.epoch = 1;
  again.index = 2;
  make_cut_paste_batch_fn(clip_len, 9)(again);
  CHECK(again.tensors.at("clip_mask").equal(mask));
  // One video: left as is.
  Batch one;
  one.tensors["video"] = video.narrow(0, 0, 1);
  make_cut_paste_batch_fn(clip_len, 9)(one);
  CHECK(one.tensors.at("clip_mask").all().item<bool>());
  CHECK(one.tensors.at("Wv").item<float>() == 1.0f);
  // Errors name the option.
  CHECK_THROWS_WITH_AS(make_cut_paste_batch_fn(0, 1), doctest::Contains("cut_paste.clip_len"), c10::Error);
  Batch odd;
  odd.tensors["video"] = video.narrow(1, 0, 5);
  CHECK_THROWS_WITH_AS(make_cut_paste_batch_fn(2, 1)(odd), doctest::Contains("cut_paste.clip_len"), c10::Error);
}

TEST_CASE("recipe options are checked by name") {
  RecipeItemOptions o;
  o.decode_video = false;
  o.anchor = ObjectMaskOptions{};
  CHECK_THROWS_WITH_AS(make_recipe_item_fn(o), doctest::Contains("option 'anchor'"), c10::Error);
  RecipeItemOptions r;
  r.regions = RegionItemOptions{};
  r.regions->k = 0;
  CHECK_THROWS_WITH_AS(make_recipe_item_fn(r), doctest::Contains("option 'regions.k'"), c10::Error);
  RecipeItemOptions a;
  a.anchor = ObjectMaskOptions{};
  a.anchor->patch_size = 48;  // does not divide 224
  CHECK_THROWS_WITH_AS(make_recipe_item_fn(a), doctest::Contains("anchor.patch_size"), c10::Error);
}

TEST_CASE("a recipe item without video: detections from the list, regions padded") {
  RecipeItemOptions o;
  o.decode_video = false;
  o.video.sampling.num_frames = 2;
  o.detections = DetectionItemOptions{3, false};
  o.regions = RegionItemOptions{2, 2, 6};
  const ItemFn fn = make_recipe_item_fn(o);
  Sample s;
  s.id = "v";
  s.captions = {"a caption"};
  s.frames = {frame_at(0, {box(0, 0, 50, 50, 1, 0.5f)}), frame_at(5, {}), frame_at(9, {box(50, 0, 100, 100, 2, 1)})};
  const Item item = fn(s, 3);
  CHECK(item.tensors.count("video") == 0);
  CHECK(item.strings.at("caption") == "a caption");
  // Uniform over 3 list entries with 2 picks: positions 0 and 2.
  CHECK(item.tensors.at("classes").equal(at::tensor({1, -1, -1, 2, -1, -1}, at::kLong).reshape({2, 3})));
  CHECK(at::allclose(item.tensors.at("boxes")[1][0], at::tensor({0.5f, 0.0f, 1.0f, 1.0f})));
  CHECK(item.tensors.at("features").sizes() == at::IntArrayRef({4, 6}));
  CHECK_FALSE(item.tensors.at("region_mask").any().item<bool>());
  // A sample without detections: all-invalid rows.
  Sample bare = s;
  bare.frames.clear();
  CHECK(fn(bare, 3).tensors.at("classes").eq(-1).all().item<bool>());
}

TEST_CASE("masked anchor patches are zeroed after normalisation") {
  Batch batch;
  batch.tensors["anchor"] = at::full({2, 3, 4, 4}, -1.5f);
  // Patches of 2x2 on a 4x4 frame: row-major [top-left, top-right, bottom-left, bottom-right].
  batch.tensors["patch_mask"] = at::tensor({1, 0, 0, 1, 0, 0, 0, 0}, at::kLong).to(at::kBool).reshape({2, 1, 4});
  zero_masked_anchor_patches(batch, 2);
  const at::Tensor a = batch.tensors.at("anchor");
  CHECK(a[0].narrow(1, 0, 2).narrow(2, 0, 2).eq(-1.5f).all().item<bool>());  // kept
  CHECK(a[0].narrow(1, 0, 2).narrow(2, 2, 2).eq(0.0f).all().item<bool>());   // masked
  CHECK(a[0].narrow(1, 2, 2).narrow(2, 2, 2).eq(-1.5f).all().item<bool>());  // kept
  CHECK(a[1].eq(0.0f).all().item<bool>());
  batch.tensors["patch_mask"] = at::ones({2, 1, 3}, at::kBool);
  CHECK_THROWS_WITH_AS(zero_masked_anchor_patches(batch, 2), doctest::Contains("patch_mask"), c10::Error);
}
