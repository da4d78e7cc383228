// `kinema synth`: determinism, the files it promises, captions and hard negatives.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/data/synth.h"
#include "core/data/synth_scene.h"
#include "core/data/video_reader.h"
#include "core/io/npz.h"

using namespace kinema::data;
namespace fs = std::filesystem;

namespace {

synth::SynthOptions small(const fs::path& dir, int threads) {
  synth::SynthOptions o;
  o.out_dir = dir.string();
  o.num_train = 3;
  o.num_test = 2;
  o.width = o.height = 32;
  o.fps = 5;
  o.min_duration_s = 2;
  o.max_duration_s = 3;
  o.region_frames = 2;
  o.region_dim = 16;
  o.seed = 5;
  o.threads = threads;
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = slurp(e.path());
  return files;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  return w;
}

}  // namespace

TEST_CASE("synth: the same seed gives byte-identical files, whatever the thread count") {
  const fs::path base = fs::temp_directory_path() / "kinema_test_synth";
  fs::remove_all(base);
  const auto a = synth::generate(small(base / "a", 1));
  synth::generate(small(base / "b", 2));
  CHECK((a.encoder == "libx264" || a.encoder == "mpeg4"));
  CHECK(a.videos == 5);
  const auto ta = tree(base / "a"), tb = tree(base / "b");
  CHECK(ta.size() == tb.size());
  CHECK(ta == tb);
  auto o = small(base / "c", 1);
  o.seed = 6;
  synth::generate(o);
  CHECK(tree(base / "c").at("train.csv") != ta.at("train.csv"));

  // The promised files, readable by independent code paths.
  CHECK(ta.at("train.csv").rfind("videoid,contentUrl,duration,page_dir,name\n", 0) == 0);
  std::istringstream meta(ta.at("train_meta.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(meta, line)) {
    auto m = nlohmann::json::parse(line);
    const std::string id = m["videoid"];
    VideoReader r((base / "a" / "videos" / "train" / (id + ".mp4")).string());
    CHECK(r.info().num_frames == m["num_frames"].get<int64_t>());
    CHECK(r.info().width == 32);
    auto ann = nlohmann::json::parse(ta.at("annotations/" + id + ".json"));
    CHECK(ann["frames"].size() == m["num_frames"].get<size_t>());
    CHECK(ann["frames"][0]["boxes"].size() == m["objects"].size());
    CHECK(m["nouns"].size() == m["objects"].size());
    std::vector<fs::path> frames;
    for (const auto& e : fs::directory_iterator(base / "a" / "regions" / "train" / id))
      frames.push_back(e.path());
    CHECK(frames.size() == 2);  // region_frames
    REQUIRE(!frames.empty());
    auto regions = kinema::io::load_npz(frames.front().string());
    CHECK(regions.at("x").size(1) == 16);
    CHECK(regions.at("bbox").size(0) == regions.at("num_bbox").item<int64_t>());
    ++n;
  }
  CHECK(n == 3);
  fs::remove_all(base);
}

TEST_CASE("synth: captions name every object and action; negatives change one noun or verb") {
  synth::SceneOptions so;
  so.min_objects = so.max_objects = 3;
  int nouns = 0, verbs = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto scene = synth::make_scene(so, seed);
    const std::string cap = synth::caption(scene);
    CHECK(scene.objects.size() == 3);
    for (const auto& ob : scene.objects) {
      CHECK(cap.find(synth::object_phrase(ob) + " " + synth::action_phrases()[ob.action]) !=
            std::string::npos);
      CHECK(!(ob.shape == 0 && ob.action == 5));  // no spinning circles
    }
    const auto pos = synth::caption_pos(scene);
    CHECK(pos.nouns.size() == 3);
    for (const auto& neg : synth::hard_negatives(scene, 2, seed)) {
      CHECK(neg.caption != cap);
      const auto a = words(cap), b = words(neg.caption);
      if (neg.kind == "noun") {
        ++nouns;
        REQUIRE(a.size() == b.size());
        int diff = 0;
        for (size_t i = 0; i < a.size(); ++i)
          if (a[i] != b[i]) {
            ++diff;
            const auto& shapes = synth::shape_names();
            CHECK(std::find(shapes.begin(), shapes.end(), b[i]) != shapes.end());
          }
        CHECK(diff == 1);
      } else {
        ++verbs;
        CHECK(neg.kind == "verb");
        // Same objects (every noun phrase kept), one verb different.
        for (const auto& np : pos.noun_phrases) CHECK(neg.caption.find(np) != std::string::npos);
        int changed = 0;
        for (const auto& ob : scene.objects)
          changed += neg.caption.find(synth::object_phrase(ob) + " " +
                                      synth::action_phrases()[ob.action]) == std::string::npos;
        CHECK(changed == 1);
      }
    }
  }
  CHECK(nouns == 40);
  CHECK(verbs == 40);
}

TEST_CASE("synth: boxes follow the motion the caption names") {
  synth::SceneOptions so;
  so.min_objects = so.max_objects = 1;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const auto s = synth::make_scene(so, seed);
    const auto& ob = s.objects[0];
    const auto b0 = synth::box_of(s, ob, 0), b1 = synth::box_of(s, ob, s.duration_s);
    const float dx = (b1[0] + b1[2]) / 2 - (b0[0] + b0[2]) / 2;
    const float dy = (b1[1] + b1[3]) / 2 - (b0[1] + b0[3]) / 2;
    const float dw = (b1[2] - b1[0]) - (b0[2] - b0[0]);
    switch (ob.action) {
      case 0: CHECK(dx < -10); break;  // moves left
      case 1: CHECK(dx > 10); break;
      case 2: CHECK(dy < -10); break;  // moves up (y grows downwards)
      case 3: CHECK(dy > 10); break;
      case 6: CHECK(dw > 5); break;    // grows
      case 7: CHECK(dw < -5); break;   // shrinks
      default: break;
    }
  }
  CHECK_THROWS_WITH_AS(synth::generate({}), doctest::Contains("out_dir"), c10::Error);
}
