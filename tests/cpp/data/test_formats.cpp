// Annotation readers against small real-layout files in tests/fixtures.
#include "core/data/formats.h"

#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <string>
#include "test_data_util.h"

using namespace kinema::data;
using kinema::data::testing::error_of;
using kinema::data::testing::fixture;

namespace {

}  // namespace

TEST_CASE("formats: WebVid CSV with RFC 4180 quoting") {
  ReadOptions options;
  options.video_root = "/data/webvid/videos";
  options.region_root = "/data/webvid/regions";
  const auto samples = read_webvid_csv(fixture("formats_webvid.csv"), options);
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].id == "1053841541");
  CHECK(samples[0].video_path == "/data/webvid/videos/035501_035550/1053841541.mp4");
  CHECK(samples[0].region_path == "/data/webvid/regions/035501_035550/1053841541");
  REQUIRE(samples[0].captions.size() == 1);
  CHECK(samples[0].captions[0] ==
        "Travel blogger shooting a story on top of mountains, young man holds camera in forest");
  CHECK(samples[0].extra.at("duration") == "PT00H00M17S");
  // Doubled quotes and an embedded newline inside a quoted field.
  CHECK(samples[1].captions[0] == "Aerial shot of a \"red\" boat, sailing\nover calm water");
  CHECK(samples[2].captions[0] == "Plain caption without quotes");
  CHECK(samples[2].video_path == "/data/webvid/videos/000001_000050/5679.mp4");
}

TEST_CASE("formats: WebVid CSV with CRLF line ends") {
  const auto samples = read_webvid_csv(fixture("formats_webvid_crlf.csv"));
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].captions[0] == "crlf, quoted");
  CHECK(samples[1].captions[0] == "crlf plain");
  CHECK(samples[1].video_path == "000001_000050/8.mp4");
  CHECK(samples[1].region_path.empty());
  const auto cr_eof = read_webvid_csv(fixture("formats_webvid_cr_eof.csv"));
  REQUIRE(cr_eof.size() == 1);
  CHECK(cr_eof[0].captions[0] == "ends with CR at EOF");
}

TEST_CASE("formats: malformed WebVid rows raise with file:line, or are skipped and counted") {
  const std::string path = fixture("formats_webvid_bad.csv");
  const std::string msg = error_of([&] { read_webvid_csv(path); });
  CHECK(msg.find(path + ":3:") != std::string::npos);
  CHECK(msg.find("closing quote") != std::string::npos);

  int64_t skipped = 0;
  ReadOptions options;
  options.on_error = OnError::Skip;
  options.skipped = &skipped;
  const auto samples = read_webvid_csv(path, options);
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].id == "1");
  CHECK(samples[1].id == "4");
  CHECK(skipped == 2);

  // A header without the caption column is a whole-file error.
  const std::string noname = fixture("formats_webvid_noname.csv");
  const std::string header_msg = error_of([&] { read_webvid_csv(noname); });
  CHECK(header_msg.find(noname + ":1:") != std::string::npos);
  CHECK(header_msg.find("'name'") != std::string::npos);
  CHECK(error_of([&] { read_webvid_csv(fixture("formats_no_such_file.csv")); }).find("cannot open") !=
        std::string::npos);
}

TEST_CASE("formats: OA-Trans / DemoVLP caption TSV") {
  const std::string path = fixture("formats_captions.tsv");
  const std::string msg = error_of([&] { read_caption_tsv(path); });
  CHECK(msg.find(path + ":3:") != std::string::npos);
  CHECK(msg.find("2 tab-separated columns") != std::string::npos);

  int64_t skipped = 0;
  ReadOptions options;
  options.video_root = "/v/train";
  options.on_error = OnError::Skip;
  options.skipped = &skipped;
  const auto samples = read_caption_tsv(path, options);
  REQUIRE(samples.size() == 3);
  CHECK(skipped == 1);
  CHECK(samples[0].captions[0] == "A man is cutting a tomato");
  CHECK(samples[0].video_path == "/v/train/000001_000050/1001.mp4");
  CHECK(samples[0].id == "000001_000050/1001");
  CHECK(samples[1].captions[0] == "Quoted\tcaption, with \"quotes\"");
  CHECK(samples[2].id == "000051_000100/1003");

  const auto with_header = read_caption_tsv(path, options, /*has_header=*/true);
  CHECK(with_header.size() == 2);
}

TEST_CASE("formats: MSR-VTT CLIP4Clip layout") {
  const std::string data = fixture("formats_msrvtt_data.json");
  ReadOptions options;
  options.video_root = "/msrvtt/videos";

  const auto all = read_msrvtt(data, "", options);
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == "video0");
  CHECK(all[0].captions == std::vector<std::string>{"a car is shown",
                                                    "a man drives a vehicle through the countryside"});
  CHECK(all[0].video_path == "/msrvtt/videos/video0.mp4");

  const auto test_split = read_msrvtt(data, "", options, "test");
  REQUIRE(test_split.size() == 1);
  CHECK(test_split[0].id == "video7010");

  const auto train = read_msrvtt(data, fixture("formats_msrvtt_train.csv"), options);
  REQUIRE(train.size() == 2);
  CHECK(train[0].id == "video1");  // CSV order
  CHECK(train[1].captions.size() == 2);

  const auto jsfusion = read_msrvtt(data, fixture("formats_msrvtt_jsfusion.csv"), options);
  REQUIRE(jsfusion.size() == 2);
  CHECK(jsfusion[0].id == "video7010");
  CHECK(jsfusion[0].captions == std::vector<std::string>{"a woman, singing on a stage"});
  CHECK(jsfusion[0].extra.at("key") == "ret0");
  CHECK(jsfusion[1].captions == std::vector<std::string>{"a car is shown"});

  const std::string missing = fixture("formats_msrvtt_train_missing.csv");
  const std::string msg = error_of([&] { read_msrvtt(data, missing, options); });
  CHECK(msg.find(missing + ":3:") != std::string::npos);
  CHECK(msg.find("video999") != std::string::npos);

  const std::string bad = fixture("formats_msrvtt_bad.json");
  const std::string bad_msg = error_of([&] { read_msrvtt(bad); });
  CHECK(bad_msg.find(bad + ":4:") != std::string::npos);
  CHECK(bad_msg.find("invalid JSON") != std::string::npos);
}

TEST_CASE("formats: MSR-VTT Frozen-in-Time layout") {
  const std::string json = fixture("formats_msr_vtt_coco.json");
  const auto all = read_msrvtt_coco(json);
  REQUIRE(all.size() == 2);
  CHECK(all[0].captions == std::vector<std::string>{"a car is shown", "a man drives a vehicle"});
  const auto train = read_msrvtt_coco(json, fixture("formats_msrvtt_train_list.txt"));
  REQUIRE(train.size() == 2);
  CHECK(train[0].id == "video1");
  CHECK(train[0].captions == std::vector<std::string>{"a group is dancing"});
}

TEST_CASE("formats: ALPRO retrieval JSONL") {
  const auto samples = read_alpro_retrieval(fixture("formats_alpro_ret.jsonl"));
  REQUIRE(samples.size() == 3);  // the blank line is ignored
  CHECK(samples[0].captions == std::vector<std::string>{"a cartoon character is talking"});
  CHECK(samples[0].extra.at("retrieval_key") == "ret0");
  CHECK(samples[1].captions == std::vector<std::string>{"a man is singing", "someone sings, loudly"});
  CHECK(samples[2].id == "video7022");

  const std::string bad = fixture("formats_alpro_ret_bad.jsonl");
  const std::string msg = error_of([&] { read_alpro_retrieval(bad); });
  CHECK(msg.find(bad + ":2:") != std::string::npos);
  int64_t skipped = 0;
  ReadOptions options;
  options.on_error = OnError::Skip;
  options.skipped = &skipped;
  const auto kept = read_alpro_retrieval(bad, options);
  REQUIRE(kept.size() == 2);
  CHECK(kept[1].id == "video4");
  CHECK(skipped == 2);
  CHECK(msg.find("invalid JSON") != std::string::npos);
}

TEST_CASE("formats: ALPRO QA and multiple choice") {
  const auto ans2label = read_ans2label(fixture("formats_ans2label.json"));
  CHECK(ans2label.at("woman") == 2);
  const auto qa = read_alpro_qa(fixture("formats_alpro_qa.jsonl"), ans2label);
  REQUIRE(qa.size() == 3);
  CHECK(qa[0].id == "video7010");
  CHECK(qa[0].question == "who is singing?");
  CHECK(qa[0].answer_label == 0);
  CHECK(qa[0].extra.at("answer_type") == "what");
  CHECK(qa[1].id == "tumblr_no73q2fm0I1uuf348o1_250");
  CHECK(qa[1].answer_label == 1);
  CHECK(qa[2].answer == "zebra");
  CHECK(qa[2].answer_label == -1);

  const std::string mc_path = fixture("formats_alpro_mc.jsonl");
  const std::string msg = error_of([&] { read_alpro_mc(mc_path); });
  CHECK(msg.find(mc_path + ":3:") != std::string::npos);
  CHECK(msg.find("out of range") != std::string::npos);
  ReadOptions options;
  options.on_error = OnError::Skip;
  const auto mc = read_alpro_mc(mc_path, options);
  REQUIRE(mc.size() == 2);
  CHECK(mc[0].answer_label == 1);
  CHECK(mc[0].answer == "a movie trailer shows scenes");
  CHECK(mc[0].options.size() == 3);
  CHECK(mc[0].extra.at("qid") == "mc0");
  CHECK(mc[1].answer_label == 0);
}

TEST_CASE("formats: read_annotations dispatches by format name") {
  AnnotationSource source;
  source.format = "msrvtt";
  source.path = fixture("formats_msrvtt_data.json");
  source.split = fixture("formats_msrvtt_train.csv");
  CHECK(read_annotations(source).size() == 2);
  source = AnnotationSource{};
  source.format = "alpro_qa";
  source.path = fixture("formats_alpro_qa.jsonl");
  CHECK(error_of([&] { read_annotations(source); }).find("'ans2label'") != std::string::npos);
  source.ans2label = fixture("formats_ans2label.json");
  const auto qa = read_annotations(source);
  REQUIRE(qa.size() == 3);
  CHECK(qa[1].answer_label == 1);
  source.format = "webvid2";
  CHECK(error_of([&] { read_annotations(source); }).find("unknown format 'webvid2'") != std::string::npos);
}
