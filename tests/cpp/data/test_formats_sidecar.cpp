// Side files of read_annotations: per-video detections JSON and the metadata
// JSONL with precomputed parts of speech and tags.
#include <doctest/doctest.h>

#include <c10/util/Exception.h>

#include <filesystem>
#include <fstream>

#include "core/data/detections.h"
#include "core/data/formats.h"

using namespace kinema::data;

namespace {

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

}  // namespace

TEST_CASE("detections_root and meta attach boxes, class counts, parts and tags") {
  const auto dir = std::filesystem::temp_directory_path() / "kinema_test_sidecar";
  std::filesystem::remove_all(dir);
  write(dir / "train.csv",
        "videoid,contentUrl,duration,page_dir,name\n"
        "v1,u,PT00H00M03S,train,a red circle jumps\n"
        "v2,u,PT00H00M03S,train,a blue square spins\n");
  write(dir / "det" / "v1.json",
        R"({"classes": ["circle", "square"], "frames": [
             {"frame_index": 0, "image_w": 64, "image_h": 48, "boxes": [[1, 2, 30, 40]], "labels": ["square"],
              "scores": [0.5]},
             {"frame_index": 7, "image_w": 64, "image_h": 48, "boxes": [], "labels": []}]})");
  write(dir / "meta.jsonl",
        R"({"videoid": "v2", "caption": "a blue square spins", "nouns": ["square"], "verbs": ["spins"], "noun_phrases": ["a blue square"], "tags": ["square"]})"
        "\n"
        R"({"videoid": "v9", "nouns": ["ghost"]})"
        "\n");
  AnnotationSource src;
  src.format = "webvid";
  src.path = (dir / "train.csv").string();
  ReadOptions o;
  o.detections_root = (dir / "det").string();
  o.meta = (dir / "meta.jsonl").string();
  const auto samples = read_annotations(src, o);
  REQUIRE(samples.size() == 2);
  // The boxes stay in their file until a loader worker reads them.
  CHECK(samples[0].frames.empty());
  REQUIRE(samples[0].boxes_path == (dir / "det" / "v1.json").string());
  const auto boxes = read_frame_boxes_json(samples[0].boxes_path);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].boxes[0].label == 1);
  CHECK(boxes[0].boxes[0].score == doctest::Approx(0.5));
  CHECK(boxes[1].frame_index == 7);
  CHECK(samples[0].extra.at("num_classes") == "2");
  CHECK(samples[0].parts.empty());  // no meta record
  CHECK(samples[1].boxes_path.empty());  // no detections file: no boxes, no error
  CHECK(samples[1].frames.empty());
  CHECK(samples[1].extra.count("num_classes") == 0);
  REQUIRE(samples[1].parts.size() == 1);
  CHECK(samples[1].parts[0].nouns == std::vector<std::string>{"square"});
  CHECK(samples[1].parts[0].verbs == std::vector<std::string>{"spins"});
  CHECK(samples[1].parts[0].noun_phrases == std::vector<std::string>{"a blue square"});
  CHECK(samples[1].tags == std::vector<std::string>{"square"});

  // A malformed meta line raises with its line, or is counted under Skip.
  write(dir / "bad.jsonl", "{\"videoid\": \"v1\", \"nouns\": [\"a\"]}\n{\"videoid\": \"v2\", \"nouns\": 3}\n");
  o.detections_root.clear();
  o.meta = (dir / "bad.jsonl").string();
  CHECK_THROWS_WITH_AS(read_annotations(src, o), doctest::Contains("bad.jsonl:2"), c10::Error);
  int64_t skipped = 0;
  o.on_error = OnError::Skip;
  o.skipped = &skipped;
  const auto kept = read_annotations(src, o);
  CHECK(skipped == 1);
  CHECK(kept[0].parts.at(0).nouns == std::vector<std::string>{"a"});
  std::filesystem::remove_all(dir);
}
