// Bad annotation and detection input ends in an error naming the file, line
// and field; paths from annotations stay below their roots; MSR-VTT videos are
// found flat or one folder down; detections are read in their public layouts;
// evaluation loaders never substitute samples; kinema synth writes only into a
// folder it may write.
#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>

#include "core/data/detections.h"
#include "core/data/formats.h"
#include "core/data/loader.h"
#include "core/data/synth.h"
#include "core/io/npz.h"
#include "test_data_util.h"

using namespace kinema::data;
using kinema::data::testing::error_of;
using kinema::data::testing::fixture;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("kinema_validation_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& text) const {
    const fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

const char* kHeader = "videoid,contentUrl,duration,page_dir,name\n";

}  // namespace

TEST_CASE("validation: a CSV with a NUL byte or invalid UTF-8 names the file and line") {
  TempDir dir("csv");
  const std::string nul = dir.file("nul.csv", std::string(kHeader) + "1,u,PT1S,d,ok\n2,u,PT1S,d,bad" +
                                                  std::string(1, '\0') + "x\n");
  const std::string e1 = error_of([&] { read_webvid_csv(nul); });
  CHECK(e1.find(nul + ":3: NUL byte") != std::string::npos);
  const std::string latin1 = dir.file("latin1.csv", std::string(kHeader) + "1,u,PT1S,d,caf\xE9\n");
  const std::string e2 = error_of([&] { read_webvid_csv(latin1); });
  CHECK(e2.find(latin1 + ":2: invalid UTF-8 (byte 0xE9)") != std::string::npos);
  // an overlong encoding of '/' is not UTF-8 either; real multi-byte text is
  const std::string overlong = dir.file("overlong.csv", std::string(kHeader) + "1,u,PT1S,d,\xC0\xAF\n");
  CHECK(error_of([&] { read_webvid_csv(overlong); }).find("invalid UTF-8 (byte 0xC0)") != std::string::npos);
  const auto ok = read_webvid_csv(dir.file("utf8.csv", std::string(kHeader) + "1,u,PT1S,d,caf\xC3\xA9 \xE2\x9C\x93\n"));
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].captions[0] == "caf\xC3\xA9 \xE2\x9C\x93");
}

TEST_CASE("validation: CSV video ids and page_dirs stay inside video_root unless allowed") {
  TempDir dir("confine");
  ReadOptions options;
  options.video_root = "/data/videos";
  const std::string up = dir.file("up.csv", std::string(kHeader) + "1,u,PT1S,d,fine\n../../etc/passwd,u,PT1S,d,x\n");
  CHECK(error_of([&] { read_webvid_csv(up, options); })
            .find(up + ":3: videoid '../../etc/passwd' has a '..' component") != std::string::npos);
  const std::string abs = dir.file("abs.csv", std::string(kHeader) + "1,u,PT1S,/etc,x\n");
  CHECK(error_of([&] { read_webvid_csv(abs, options); }).find(abs + ":2: page_dir '/etc' is an absolute path") !=
        std::string::npos);
  const std::string tsv = dir.file("meta.tsv", "a caption\tdir/../../x\n");
  CHECK(error_of([&] { read_caption_tsv(tsv, options); }).find(tsv + ":1: video path 'dir/../../x'") !=
        std::string::npos);
  // a name merely containing dots is fine; the explicit option lets paths out
  CHECK(read_webvid_csv(dir.file("dots.csv", std::string(kHeader) + "a..b,u,PT1S,..d,x\n"), options).size() == 1);
  options.allow_outside_root = true;
  const auto out = read_webvid_csv(up, options);
  REQUIRE(out.size() == 2);
  CHECK(out[1].video_path == "/data/videos/d/../../etc/passwd.mp4");
}

TEST_CASE("validation: a video listed twice in a WebVid CSV is refused") {
  TempDir dir("dup");
  const std::string p = dir.file("dup.csv", std::string(kHeader) + "1,u,PT1S,d,a\n2,u,PT1S,d,b\n1,u,PT1S,d,c\n");
  CHECK(error_of([&] { read_webvid_csv(p); }).find(p + ":4: video 'd/1' is listed twice (first on line 2)") !=
        std::string::npos);
}

TEST_CASE("validation: malformed MSR-VTT JSON names the field") {
  TempDir dir("msrvtt");
  const std::string not_list = dir.file("a.json", R"({"videos": {"video0": 1}, "sentences": []})");
  CHECK(error_of([&] { read_msrvtt(not_list); }).find(not_list + ": expected a top-level 'videos' array") !=
        std::string::npos);
  const std::string numeric = dir.file("b.json", R"({"sentences": [{"video_id": "video0", "caption": 42}]})");
  CHECK(error_of([&] { read_msrvtt(numeric); }).find("sentences[0]: 'caption' must be a string, got number 42") !=
        std::string::npos);
  const std::string dup = dir.file("c.json", R"({"videos": [{"video_id": "video0", "split": "train"},
      {"video_id": "video0", "split": "test"}], "sentences": [{"video_id": "video0", "caption": "a"}]})");
  CHECK(error_of([&] { read_msrvtt(dup); }).find("videos[1]: video_id 'video0' is listed twice") != std::string::npos);
  const std::string escape = dir.file("d.json", R"({"sentences": [{"video_id": "../video0", "caption": "a"}]})");
  CHECK(error_of([&] { read_msrvtt(escape); }).find("sentences[0].video_id '../video0' has a '..' component") !=
        std::string::npos);
  const std::string good = dir.file("e.json", R"({"sentences": [{"video_id": "video0", "caption": "a"},
      {"video_id": "video1", "caption": "b"}]})");
  const std::string split = dir.file("split.csv", "key,vid_key,video_id,sentence\nret0,msr0,video0,a\nret1,msr1,video0,b\n");
  CHECK(error_of([&] { read_msrvtt(good, split); }).find(split + ":3: video 'video0' is listed twice") !=
        std::string::npos);
  const std::string coco = dir.file("coco.json", R"({"annotations": [{"image_id": "video0", "caption": 7}]})");
  CHECK(error_of([&] { read_msrvtt_coco(coco); }).find("annotations[0]: 'caption' must be a string") !=
        std::string::npos);
}

TEST_CASE("validation: MSR-VTT videos are found flat or one folder below video_root") {
  TempDir dir("msrvtt_videos");
  const std::string json = dir.file("MSRVTT_data.json", R"({"sentences": [{"video_id": "video0", "caption": "a"},
      {"video_id": "video7", "caption": "b"}, {"video_id": "video9", "caption": "c"}]})");
  dir.file("videos/video0.mp4", "x");
  dir.file("videos/TestVideo/video7.mp4", "x");
  ReadOptions options;
  options.video_root = (dir.path / "videos").string();
  const auto samples = read_msrvtt(json, "", options);
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].video_path == (dir.path / "videos/video0.mp4").string());
  CHECK(samples[1].video_path == (dir.path / "videos/TestVideo/video7.mp4").string());
  CHECK(samples[2].video_path == (dir.path / "videos/video9.mp4").string());  // missing: reported by its reader
}

TEST_CASE("validation: detections with a zero image size or a bad frame index name the file and field") {
  TempDir dir("det");
  const std::string zero = dir.file("zero.json", R"({"frames": [{"frame_index": 0, "image_w": 0, "image_h": 10,
      "boxes": [[0, 0, 1, 1]]}]})");
  CHECK(error_of([&] { read_frame_boxes_json(zero); })
            .find(zero + ": frames[0]: 'image_w' must be a positive whole number of pixels, got 0") != std::string::npos);
  const std::string negative = dir.file("neg.json", R"({"frames": [{"frame_index": -3, "boxes": []}]})");
  CHECK(error_of([&] { read_frame_boxes_json(negative); })
            .find("frames[0]: 'frame_index' must be a frame number in 0..2^31-1, got -3") != std::string::npos);
  const std::string huge = dir.file("huge.json", R"({"frames": [{"frame_index": 1e300, "boxes": []}]})");
  CHECK(error_of([&] { read_frame_boxes_json(huge); }).find("'frame_index' must be a frame number") != std::string::npos);
  const std::string inf_box = dir.file("box.json", R"([{"frame": 2, "objects": [{"class": "dog", "rect": [0, 0, 1e39, 1]}]}])");
  CHECK(error_of([&] { read_video_detections(inf_box); }).find("[0] objects[0].rect must be a finite number") !=
        std::string::npos);
  const std::string vinvl_zero = dir.file("vz.json", R"({"objects": [], "image_w": 0})");
  CHECK(error_of([&] { read_vinvl(vinvl_zero); }).find("'image_w' must be a positive whole number") != std::string::npos);
}

TEST_CASE("validation: a video's detections are read in the public layouts") {
  TempDir dir("layouts");
  // a VinVL-style JSON list of frames with their numbers
  const std::string list = dir.file("v1.json", R"([{"frame": 4, "image_w": 64, "image_h": 48,
      "objects": [{"class": "dog", "rect": [1, 2, 30, 40], "conf": 0.9}]},
    {"frame": 9, "objects": [{"class": "ball", "rect": [5, 5, 9, 9], "conf": 0.5}]}])");
  const auto frames = read_video_detections(list);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].frame_index == 4);
  CHECK(frames[0].image_w == 64);
  CHECK(frames[0].boxes[0].name == "dog");
  CHECK(frames[0].boxes[0].label == VgVocab::objects_1600().id("dog"));
  CHECK(frames[0].boxes[0].score == doctest::Approx(0.9));
  CHECK(frames[1].frame_index == 9);
  // VinVL predictions.tsv: the key's trailing number is the frame
  const std::string tsv = dir.file("v2.tsv", "v2/frame_000003.jpg\t{\"objects\": [{\"class\": \"cat\", \"rect\": [0, 0, 2, 2]}]}\n"
                                            "v2/frame_000011.jpg\t{\"objects\": []}\n");
  const auto tsv_frames = read_video_detections(tsv);
  REQUIRE(tsv_frames.size() == 2);
  CHECK(tsv_frames[0].frame_index == 3);
  CHECK(tsv_frames[1].frame_index == 11);
  CHECK(tsv_frames[0].boxes[0].name == "cat");
  // bottom-up-attention frames in a folder
  fs::create_directories(dir.path / "v3");
  for (int64_t f : {0, 6}) {
    std::map<std::string, at::Tensor> arrays;
    arrays["bbox"] = at::tensor({1.f, 2.f, 11.f, 12.f}).reshape({1, 4});
    arrays["num_bbox"] = at::tensor({int64_t{1}});
    arrays["image_h"] = at::tensor({int64_t{50}});
    arrays["image_w"] = at::tensor({int64_t{60}});
    arrays["objects_id"] = at::tensor({int64_t{3}});
    arrays["objects_conf"] = at::tensor({0.75f});
    kinema::io::save_npz((dir.path / "v3" / ("frame_" + std::to_string(f) + ".npz")).string(), arrays);
  }
  const auto butd = read_video_detections((dir.path / "v3").string());
  REQUIRE(butd.size() == 2);
  CHECK(butd[1].frame_index == 6);
  CHECK(butd[1].image_w == 60);
  CHECK(butd[1].boxes[0].label == 3);
  CHECK(butd[1].boxes[0].x2 == doctest::Approx(11));
  // the annotation readers find each layout under detections_root by the video id
  const std::string csv = dir.file("ann.csv", std::string(kHeader) + "v1,u,PT1S,d,a\nv2,u,PT1S,d,b\nv3,u,PT1S,d,c\n"
                                                                    "v4,u,PT1S,d,d\n");
  ReadOptions options;
  options.detections_root = dir.path.string();
  AnnotationSource source;
  source.format = "webvid";
  source.path = csv;
  const auto samples = read_annotations(source, options);
  REQUIRE(samples.size() == 4);
  CHECK(samples[0].boxes_path == list);
  CHECK(samples[1].boxes_path == tsv);
  CHECK(samples[2].boxes_path == (dir.path / "v3").string());
  CHECK(samples[3].boxes_path.empty());
  CHECK(samples[0].extra.at("num_classes") == "1600");
}

TEST_CASE("validation: an evaluation loader raises naming the sample, or drops it and says so") {
  std::vector<Sample> ds(5);
  for (int i = 0; i < 5; ++i) {
    ds[i].id = "v" + std::to_string(i);
    ds[i].video_path = "/videos/v" + std::to_string(i) + ".mp4";
  }
  const ItemFn item = [](const Sample& s, uint64_t) {
    if (s.id == "v1" || s.id == "v3") throw std::runtime_error("cannot open '" + s.video_path + "'");
    Item it;
    it.tensors["x"] = at::zeros({1});
    it.strings["id"] = s.id;
    return it;
  };
  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 2;
  o.shuffle = false;
  o.on_item_error = ItemErrors::Raise;
  {
    Loader raising(ds, item, o);
    const std::string e = error_of([&] {
      while (raising.next_batch()) {
      }
    });
    CHECK(e.find("sample 1 ('v1', /videos/v1.mp4) cannot be read: cannot open '/videos/v1.mp4'") != std::string::npos);
  }
  o.on_item_error = ItemErrors::Drop;
  Loader dropping(ds, item, o);
  std::vector<std::string> ids, dropped;
  while (auto b = dropping.next_batch()) {
    for (const auto& id : b->strings["id"]) ids.push_back(id);
    for (const auto& id : b->dropped_ids) dropped.push_back(id);
    CHECK(b->indices.size() + b->dropped_ids.size() == (b->index < 2 ? 2u : 1u));
    for (const auto& err : b->dropped_errors) CHECK(err.find("cannot open") != std::string::npos);
  }
  CHECK(ids == std::vector<std::string>{"v0", "v2", "v4"});  // nothing twice, nothing substituted
  CHECK(dropped == std::vector<std::string>{"v1", "v3"});
}

TEST_CASE("validation: kinema synth never writes into a folder it did not make") {
  TempDir dir("synth");
  const std::string user_file = dir.file("my_data/results_train.csv", "videoid,name\n1,mine\n");
  synth::SynthOptions o;
  o.out_dir = (dir.path / "my_data").string();
  o.num_train = 1;
  o.num_test = 1;
  const std::string e = error_of([&] { synth::generate(o); });
  CHECK(e.find("refusing to write into '" + o.out_dir + "': it is not empty and kinema did not make it") !=
        std::string::npos);
  CHECK(!fs::exists(dir.path / "my_data" / "train.csv"));
  std::ifstream in(user_file);
  std::string first;
  std::getline(in, first);
  CHECK(first == "videoid,name");
}
