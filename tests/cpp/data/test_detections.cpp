// Detections, the Visual Genome vocabulary, top-K padding, the 7-d location
// feature and region-feature extraction against torchvision's roi_align.
#include "core/data/detections.h"
#include "core/data/detections_pickle.h"
#include "core/data/extract_regions.h"
#include "core/data/formats_detail.h"
#include "core/data/vg_vocab.h"
#include "core/data/video_reader.h"
#include "core/io/npz.h"

#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include "test_data_util.h"

using namespace kinema::data;
using kinema::data::testing::error_of;
using kinema::data::testing::fixture;

namespace {

bool close(const at::Tensor& a, const at::Tensor& b, double atol = 1e-5) {
  return a.sizes() == b.sizes() && at::allclose(a.to(at::kDouble), b.to(at::kDouble), 1e-5, atol);
}

}  // namespace

TEST_CASE("vg_vocab: the built-in 1600 classes equal the committed data file") {
  const std::string committed = kinema::data::detail::read_file(std::string(KINEMA_SOURCE_DIR) + "/core/data/vg_objects_1600.txt");
  CHECK(vg_objects_1600_text() == committed);
  const VgVocab& vocab = VgVocab::objects_1600();
  REQUIRE(vocab.size() == 1600);
  CHECK(vocab.name(0) == "yolk");
  CHECK(vocab.name(50) == "man");
  CHECK(vocab.name(1599) == "buoy");
  CHECK(vocab.id("man") == 50);
  CHECK(vocab.id("Fridge") == vocab.id("refrigerator"));  // synonyms and case
  CHECK(vocab.synonyms(vocab.id("tv")) == std::vector<std::string>{"television", "tv"});
  CHECK(vocab.id("spaceship") == -1);
  CHECK(error_of([&] { vocab.name(1600); }).find("out of range") != std::string::npos);
  CHECK(error_of([] { VgVocab::from_text("a\n\nb\n", "v.txt"); }).find("v.txt:2:") != std::string::npos);
}

TEST_CASE("detections: bottom-up-attention npz frame") {
  const auto det = read_butd_npz(fixture("formats_butd_frame.npz"));
  CHECK(det.boxes.image_w == 320);
  CHECK(det.boxes.image_h == 240);
  REQUIRE(det.boxes.boxes.size() == 4);  // num_bbox, not the 5 stored rows
  CHECK(det.features.sizes() == at::IntArrayRef{4, 6});
  CHECK(det.boxes.boxes[1].name == "buoy");
  CHECK(det.boxes.boxes[1].label == 1599);
  CHECK(det.boxes.boxes[1].score == doctest::Approx(0.95));
  CHECK(det.boxes.boxes[0].x2 == doctest::Approx(110));
  CHECK(det.boxes.boxes[2].name == "yolk");

  // cls_prob [N,1601]: background column ignored, argmax over the objects.
  const auto prob = read_butd_npz(fixture("formats_butd_clsprob.npz"));
  REQUIRE(prob.boxes.boxes.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(prob.boxes.boxes[i].label == det.boxes.boxes[i].label);
    CHECK(prob.boxes.boxes[i].score == doctest::Approx(det.boxes.boxes[i].score));
  }

  // bottom-up-attention.pytorch's layout: ids and confidences in a pickled 'info' dict.
  const auto info = read_butd_npz(fixture("formats_butd_info.npz"));
  REQUIRE(info.boxes.boxes.size() == 4);
  CHECK(info.boxes.image_w == 320);
  CHECK(close(info.features, det.features));
  for (size_t i = 0; i < 4; ++i) {
    CHECK(info.boxes.boxes[i].label == det.boxes.boxes[i].label);
    CHECK(info.boxes.boxes[i].score == doctest::Approx(det.boxes.boxes[i].score));
  }
  const auto raw = load_npz_with_pickled_dicts(fixture("formats_butd_info.npz"));
  CHECK(raw.at("info.num_boxes").item<int64_t>() == 4);
  CHECK((raw.at("info.objects_id").scalar_type() == at::kLong));
  CHECK(error_of([] { unpickle_numpy_dict(std::string("\x80\x03}q\x00X\x05\x00\x00", 9), "p.npz:info.npy"); })
            .find("unexpected end of data") != std::string::npos);
  CHECK(error_of([] { unpickle_numpy_dict(std::string("\x80\x03" "cos\nsystem\n" "q\x00" ")R.", 18), "evil"); })
            .find("'os.system'") != std::string::npos);
}

TEST_CASE("detections: VinVL JSON and predictions.tsv") {
  const auto frames = read_vinvl(fixture("formats_vinvl.json"));
  REQUIRE(frames.size() == 1);
  const auto& f = frames[0];
  CHECK(f.image_w == 640);
  REQUIRE(f.boxes.size() == 4);
  CHECK(f.boxes[0].label == 50);
  CHECK(f.boxes[0].y2 == doctest::Approx(180.25));
  CHECK(f.boxes[2].label == VgVocab::objects_1600().id("fire hydrant"));
  CHECK(f.boxes[3].label == -1);
  CHECK(f.boxes[3].name == "spaceship");

  const std::string tsv = fixture("formats_vinvl_predictions.tsv");
  const std::string msg = error_of([&] { read_vinvl(tsv); });
  CHECK(msg.find(tsv + ":3:") != std::string::npos);
  CHECK(msg.find("rect") != std::string::npos);
}

TEST_CASE("detections: plain frames JSON with names and ids") {
  const auto frames = read_frame_boxes_json(fixture("formats_frame_boxes.json"));
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].boxes[0].label == 50);
  CHECK(frames[0].boxes[1].name == "buoy");
  CHECK(frames[1].frame_index == 12);
  CHECK(frames[1].time_s == doctest::Approx(0.5));
  CHECK(frames[1].boxes[0].label == VgVocab::objects_1600().id("dog"));
  CHECK(frames[2].boxes.empty());
  const std::string bad = fixture("formats_frame_boxes_bad.json");
  const std::string msg = error_of([&] { read_frame_boxes_json(bad); });
  CHECK(msg.find(bad) != std::string::npos);
  CHECK(msg.find("1600") != std::string::npos);
}

TEST_CASE("detections: top-K with unique classes, padding and the 7-d location") {
  const auto det = read_butd_npz(fixture("formats_butd_frame.npz"));
  // Scores 0.6 (man), 0.95 (buoy), 0.2 (yolk), 0.8 (man).
  CHECK(top_k_indices(det.boxes, 3) == std::vector<int64_t>{1, 3, 0});
  CHECK(top_k_indices(det.boxes, 3, /*unique_labels=*/true) == std::vector<int64_t>{1, 3, 2});

  FrameDetections empty;  // a frame without detections still has [0,D] features
  empty.features = at::zeros({0, 6});
  const auto padded = pad_top_k(std::vector<FrameDetections>{det, empty}, 5);
  CHECK(padded.valid.sum().item<int64_t>() == 4);
  CHECK(padded.labels[0][0].item<int64_t>() == 1599);
  CHECK(padded.labels[0][4].item<int64_t>() == -1);
  REQUIRE(padded.features.defined());
  CHECK(padded.features.sizes() == at::IntArrayRef{2, 5, 6});
  CHECK(close(padded.features[0][1], det.features[3]));
  CHECK(padded.features[1].abs().sum().item<float>() == 0);
  // Box 3 = (100,50,300,200) in 320x240: w = 200/320, h = 150/240.
  const at::Tensor expected = at::tensor({100.f / 320, 50.f / 240, 300.f / 320, 200.f / 240, 200.f / 320,
                                          150.f / 240, (200.f / 320) * (150.f / 240)});
  CHECK(close(padded.location[0][1], expected));
  CHECK(padded.location[1].abs().sum().item<float>() == 0);
  CHECK(error_of([] { box_location_7d(at::zeros({3, 5}), 10, 10); }).find("[..., 4]") != std::string::npos);
  // Without features on every frame the padded features stay undefined.
  CHECK(!pad_top_k(std::vector<FrameDetections>{det, FrameDetections{}}, 2).features.defined());
}

TEST_CASE("extract_regions: TorchScript backbone + roi_align match torchvision, npz round trip") {
  auto ref = kinema::io::load_npz(fixture("formats_backbone_expected.npz"));
  const at::Tensor boxes = ref["boxes"], scores = ref["scores"], labels = ref["labels"];
  std::vector<FrameBoxes> frame_boxes(2);
  for (int64_t t = 0; t < 2; ++t) {
    frame_boxes[t].image_w = 96;
    frame_boxes[t].image_h = 64;
    for (int64_t i = 0; i < 4; ++i) {
      Box b;
      b.x1 = boxes[t][i][0].item<float>();
      b.y1 = boxes[t][i][1].item<float>();
      b.x2 = boxes[t][i][2].item<float>();
      b.y2 = boxes[t][i][3].item<float>();
      b.score = scores[t][i].item<float>();
      b.label = labels[t][i].item<int64_t>();
      frame_boxes[t].boxes.push_back(b);
    }
  }
  RegionBackbone backbone(fixture("formats_backbone.pt"));
  RegionExtractOptions options;
  options.max_boxes = 3;
  options.batch_frames = 1;  // two backbone calls
  const auto maps = extract_region_features(backbone, ref["frames"], frame_boxes, options);
  REQUIRE(maps.size() == 2);
  for (int64_t t = 0; t < 2; ++t) {
    CHECK(close(maps[t].at("x"), ref["expected_x"][t], 1e-5));
    CHECK(close(maps[t].at("bbox"), ref["expected_bbox"][t]));
    CHECK(at::equal(maps[t].at("objects_id"), ref["expected_ids"][t]));
    CHECK(maps[t].at("image_w").item<int64_t>() == 96);
  }

  const std::string dir = (std::filesystem::temp_directory_path() / "kinema_test_extract_regions").string();
  std::filesystem::remove_all(dir);
  CHECK(write_region_frames(dir, maps) == 2);
  CHECK(count_butd_frames(dir) == 2);
  const auto back = read_butd_frames(dir, {1});
  REQUIRE(back.size() == 1);
  CHECK(back[0].boxes.frame_index == 1);
  CHECK(close(back[0].features, ref["expected_x"][1]));
  CHECK(back[0].boxes.boxes[0].label == ref["expected_ids"][1][0].item<int64_t>());
  std::filesystem::remove_all(dir);

  CHECK(error_of([&] { RegionBackbone missing(fixture("formats_no_backbone.pt")); })
            .find("formats_no_backbone.pt") != std::string::npos);
  CHECK(error_of([&] { extract_region_features(backbone, ref["frames"].to(at::kFloat), frame_boxes); })
            .find("uint8") != std::string::npos);
}

TEST_CASE("detections: kinema synth layouts (own class list, cls/conf, frame_N.npz names)") {
  const auto frames = read_frame_boxes_json(fixture("formats_synth_boxes.json"));
  REQUIRE(frames.size() == 1);
  REQUIRE(frames[0].boxes.size() == 2);
  CHECK(frames[0].boxes[0].label == 3);  // "hexagon" in the file's own classes, not VG
  CHECK(frames[0].boxes[0].name == "hexagon");
  CHECK(frames[0].boxes[1].label == 1);
  CHECK(frames[0].boxes[0].x1 == doctest::Approx(1.5));

  const std::string dir = (std::filesystem::temp_directory_path() / "kinema_test_synth_regions").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::map<std::string, at::Tensor> arrays = {
      {"x", at::ones({2, 3})},
      {"bbox", at::tensor({0.f, 0.f, 4.f, 4.f, 1.f, 1.f, 2.f, 2.f}).view({2, 4})},
      {"num_bbox", at::scalar_tensor(2, at::kLong)},
      {"image_h", at::scalar_tensor(48, at::kLong)},
      {"image_w", at::scalar_tensor(64, at::kLong)},
      {"cls", at::tensor({2, 0}, at::kLong)},
      {"conf", at::tensor({0.5f, 0.25f})}};
  kinema::io::save_npz(dir + "/frame_000012.npz", arrays);
  kinema::io::save_npz(dir + "/frame_000003.npz", arrays);
  const auto listed = list_region_frames(dir);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].first == 3);
  CHECK(listed[1].first == 12);
  const VgVocab shapes = VgVocab::from_text("circle\nsquare\ntriangle\nhexagon\n");
  const auto det = read_butd_npz(listed[1].second, shapes);
  REQUIRE(det.boxes.boxes.size() == 2);
  CHECK(det.boxes.boxes[0].name == "triangle");
  CHECK(det.boxes.boxes[1].score == doctest::Approx(0.25));
  std::filesystem::remove_all(dir);
}

TEST_CASE("extract_regions: from a video file, frames named by frame_index") {
  RegionBackbone backbone(fixture("formats_backbone.pt"));
  std::vector<FrameBoxes> det(2);
  det[0].frame_index = 5;
  det[0].boxes = {[] { Box b; b.x1 = 4; b.y1 = 4; b.x2 = 30; b.y2 = 28; b.label = 3; b.score = 0.9f; return b; }()};
  det[1].frame_index = 1;
  det[1].boxes = {[] { Box b; b.x1 = 10; b.y1 = 2; b.x2 = 47; b.y2 = 31; b.label = 8; b.score = 0.5f; return b; }()};
  const std::string video = fixture("formats_video.mp4");
  const std::string dir = (std::filesystem::temp_directory_path() / "kinema_test_video_regions").string();
  std::filesystem::remove_all(dir);
  CHECK(extract_video_regions(backbone, video, det, dir) == 2);

  // Same frames decoded independently at the source size give the same features.
  DecodeOptions decode;
  decode.resize.out_h = 0;
  decode.resize.out_w = 0;
  VideoReader reader(video, decode);
  const at::Tensor frames = reader.read_frames({5, 1});
  REQUIRE(frames.sizes() == at::IntArrayRef{2, 3, 32, 48});
  const auto expected = extract_region_features(backbone, frames, det);
  const auto back = read_butd_frames(dir, {0, 1});
  for (int64_t t = 0; t < 2; ++t) {
    CHECK(close(back[t].features, expected[t].at("x")));
    CHECK(back[t].boxes.image_w == 48);
    CHECK(back[t].boxes.boxes[0].label == det[t].boxes[0].label);
  }
  std::filesystem::remove_all(dir);

  det[1].frame_index = 8;
  CHECK(error_of([&] { extract_video_regions(backbone, video, det, dir); }).find("past the 8 frames") !=
        std::string::npos);
  det[1].frame_index = -1;
  CHECK(error_of([&] { extract_video_regions(backbone, video, det, dir); }).find("no frame_index") !=
        std::string::npos);
}
