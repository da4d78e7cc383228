#include "core/data/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "core/data/synth_encode.h"
#include "core/data/synth_regions.h"
#include "core/data/synth_scene.h"
#include "core/data/video_sampling.h"
#include "core/data/vocab_builder.h"

namespace kinema::data::synth {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct VideoRecord {
  std::string id, page_dir, caption;
  Scene scene;
  std::vector<HardNegative> negatives;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  TORCH_CHECK(f, "kinema::data::synth: cannot write '", path.string(), "'");
  f << text;
  TORCH_CHECK(f.good(), "kinema::data::synth: writing '", path.string(), "' failed");
}

double round2(double v) { return std::round(v * 100) / 100; }

// The per-frame JSON of boxes (ground truth or detections).
json boxes_json(const VideoRecord& r, const DetectionNoise& noise, uint64_t seed) {
  const Scene& s = r.scene;
  json frames = json::array();
  for (int64_t i = 0; i < s.num_frames; ++i) {
    json boxes = json::array(), labels = json::array(), ids = json::array(),
         attrs = json::array(), scores = json::array();
    for (const DetBox& b : frame_boxes(s, i, noise, seed)) {
      boxes.push_back({round2(b.x1), round2(b.y1), round2(b.x2), round2(b.y2)});
      labels.push_back(shape_names()[b.shape]);
      ids.push_back(b.shape);
      attrs.push_back(b.colour >= 0 ? colour_names()[b.colour] : "");
      scores.push_back(round2(b.score));
    }
    frames.push_back({{"frame_index", i}, {"time", i / s.fps}, {"image_w", s.width},
                      {"image_h", s.height}, {"boxes", boxes}, {"labels", labels},
                      {"label_ids", ids}, {"attributes", attrs}, {"scores", scores}});
  }
  json objects = json::array();
  for (const Object& o : s.objects)
    objects.push_back({{"shape", shape_names()[o.shape]},
                       {"colour", colour_names()[o.colour]},
                       {"action", action_phrases()[o.action]}});
  return {{"video_id", r.id}, {"width", s.width}, {"height", s.height}, {"fps", s.fps},
          {"num_frames", s.num_frames}, {"classes", shape_names()}, {"objects", objects},
          {"frames", frames}};
}

std::string iso_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::floor(seconds));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "PT%02lldH%02lldM%02lldS", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

// RFC 4180: quote when needed, double the quotes inside.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void check_options(const SynthOptions& o) {
  TORCH_CHECK(!o.out_dir.empty(), "kinema::data::synth: option 'out_dir' is required");
  TORCH_CHECK(o.num_train >= 0 && o.num_test >= 0 && o.num_train + o.num_test > 0,
              "kinema::data::synth: options 'num_train'/'num_test' must be >= 0 and not both 0");
  TORCH_CHECK(o.gop_s > 0, "kinema::data::synth: option 'gop_s' must be > 0, got ", o.gop_s);
  TORCH_CHECK(o.region_frames >= 0 && o.region_frames <= kMaxSampledFrames,
              "kinema::data::synth: option 'region_frames' must be in 0..", kMaxSampledFrames);
  TORCH_CHECK(o.region_dim >= 1, "kinema::data::synth: option 'region_dim' must be >= 1");
  TORCH_CHECK(o.miss_rate >= 0 && o.miss_rate <= 1 && o.false_rate >= 0 && o.false_rate <= 1 &&
                  o.box_jitter >= 0,
              "kinema::data::synth: detection noise rates must be in [0, 1] and jitter >= 0");
  TORCH_CHECK(o.negatives_per_kind >= 0,
              "kinema::data::synth: option 'negatives_per_kind' must be >= 0");
}

// The encoder's rate control uses floating point: with flush-to-zero set on
// one thread (some libraries do that at load) and not on another, the same
// video would encode differently depending on which thread made it. Every
// video is encoded under the default SSE control word.
class DefaultFloatMode {
 public:
#if defined(__SSE__)
  DefaultFloatMode() : saved_(_mm_getcsr()) { _mm_setcsr(0x1f80); }
  ~DefaultFloatMode() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

// Everything about one video: mp4, annotations, detections, region features.
void make_video(const SynthOptions& o, VideoRecord& r, const fs::path& root,
                const std::string& encoder, std::atomic<int64_t>& frames) {
  const DefaultFloatMode float_mode;
  const Scene& s = r.scene;
  const fs::path video = root / "videos" / r.page_dir / (r.id + ".mp4");
  {
    EncodeOptions eo;
    eo.codec = encoder;
    eo.gop = std::max<int64_t>(1, std::llround(o.gop_s * o.fps));
    eo.preset = o.preset;
    eo.crf = o.crf;
    Mp4Writer writer(video.string(), s.width, s.height, s.fps, eo);
    const int64_t stride = s.width * 3;
    std::vector<uint8_t> rgb(static_cast<size_t>(stride * s.height));
    for (int64_t i = 0; i < s.num_frames; ++i) {
      render_frame(s, i, o.pixel_noise, rgb.data(), stride);
      writer.write(rgb.data(), stride);
    }
    writer.finish();
  }
  frames += s.num_frames;
  const uint64_t det_seed = mix_seed(s.seed, 0xde7ec7);
  write_text(root / "annotations" / (r.id + ".json"), boxes_json(r, {}, det_seed).dump() + "\n");
  const DetectionNoise noise{o.box_jitter, o.miss_rate, o.false_rate};
  write_text(root / "detections" / (r.id + ".json"), boxes_json(r, noise, det_seed).dump() + "\n");
  if (o.region_frames > 0) {
    const fs::path dir = root / "regions" / r.page_dir / r.id;
    fs::create_directories(dir);
    SamplingOptions so;
    so.num_frames = o.region_frames;
    for (int64_t f : sample_frame_indices(s.num_frames, s.fps, so, 0)) {
      const auto boxes = frame_boxes(s, f, noise, det_seed);
      const int64_t n = static_cast<int64_t>(boxes.size());
      at::Tensor bbox = at::empty({n, 4}, at::kFloat), cls = at::empty({n}, at::kLong),
                 conf = at::empty({n}, at::kFloat);
      for (int64_t k = 0; k < n; ++k) {
        const DetBox& b = boxes[k];
        float* p = bbox.data_ptr<float>() + 4 * k;
        p[0] = b.x1, p[1] = b.y1, p[2] = b.x2, p[3] = b.y2;
        cls.data_ptr<int64_t>()[k] = b.shape;
        conf.data_ptr<float>()[k] = b.score;
      }
      char name[32];
      std::snprintf(name, sizeof(name), "frame_%06lld.npz", static_cast<long long>(f));
      save_npz_deterministic(
          (dir / name).string(),
          {{"x", region_features(s, f, boxes, o.region_dim, o.feature_noise, det_seed)},
           {"bbox", bbox},
           {"num_bbox", at::scalar_tensor(n, at::kLong)},
           {"image_h", at::scalar_tensor(s.height, at::kLong)},
           {"image_w", at::scalar_tensor(s.width, at::kLong)},
           {"cls", cls},
           {"conf", conf}});
    }
  }
}

json meta_json(const VideoRecord& r) {
  const Scene& s = r.scene;
  const CaptionPos pos = caption_pos(s);
  json objects = json::array();
  for (const Object& o : s.objects)
    objects.push_back({{"shape", shape_names()[o.shape]},
                       {"colour", colour_names()[o.colour]},
                       {"action", action_phrases()[o.action]},
                       {"verb", action_verbs()[o.action]}});
  return {{"videoid", r.id},          {"page_dir", r.page_dir},   {"caption", r.caption},
          {"tags", pos.tags},         {"nouns", pos.nouns},       {"verbs", pos.verbs},
          {"noun_phrases", pos.noun_phrases}, {"objects", objects}, {"duration", s.duration_s},
          {"num_frames", s.num_frames}, {"fps", s.fps},           {"width", s.width},
          {"height", s.height}};
}

}  // namespace

SynthSummary generate(const SynthOptions& o) {
  check_options(o);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string encoder = resolve_encoder(o.codec);
  const fs::path root(o.out_dir);
  SceneOptions so;
  so.width = o.width;
  so.height = o.height;
  so.fps = o.fps;
  so.min_duration_s = o.min_duration_s;
  so.max_duration_s = o.max_duration_s;
  so.min_objects = o.min_objects;
  so.max_objects = o.max_objects;

  // Scenes first (cheap, sequential, validates the options), then the heavy
  // per-video work in parallel: each video depends only on its own seed.
  std::vector<VideoRecord> records;
  for (int split = 0; split < 2; ++split) {
    const int64_t count = split == 0 ? o.num_train : o.num_test;
    const std::string page_dir = split == 0 ? "train" : "test";
    for (int64_t i = 0; i < count; ++i) {
      VideoRecord r;
      r.id = std::to_string((split + 1) * 1000000 + i);
      r.page_dir = page_dir;
      r.scene = make_scene(so, mix_seed(o.seed, split, static_cast<uint64_t>(i)));
      r.caption = caption(r.scene);
      if (split == 1)
        r.negatives = hard_negatives(r.scene, o.negatives_per_kind, mix_seed(r.scene.seed, 0x6e6567));
      records.push_back(std::move(r));
    }
  }
  // Never into someone else's files: out_dir must be new, empty or made by kinema synth
  // (synth.json, or the marker of an interrupted run).
  const fs::path marker = root / kIncompleteMarker;
  if (fs::exists(root)) {
    TORCH_CHECK(fs::is_directory(root), "kinema::data::synth: '", root.string(), "' exists and is not a folder");
    TORCH_CHECK(fs::is_empty(root) || fs::exists(root / "synth.json") || fs::exists(marker),
                "kinema::data::synth: refusing to write into '", root.string(), "': it is not empty and kinema "
                "did not make it (no synth.json); give an empty or new folder");
  }
  fs::create_directories(root);
  write_text(marker, "kinema synth is writing this folder\n");
  for (const char* d : {"videos/train", "videos/test", "annotations", "detections"}) {
    std::error_code ec;
    fs::create_directories(root / d, ec);
    TORCH_CHECK(!ec, "kinema::data::synth: cannot create '", (root / d).string(), "': ",
                ec.message());
  }

  std::atomic<int64_t> next{0}, frames{0};
  std::exception_ptr error;
  std::mutex error_mu;
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int nthreads = std::clamp(o.threads > 0 ? o.threads : hw, 1, 8);
  auto work = [&] {
    for (int64_t i; (i = next++) < static_cast<int64_t>(records.size());) {
      try {
        make_video(o, records[i], root, encoder, frames);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next = static_cast<int64_t>(records.size());  // stop the others early
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nthreads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  // Tables in record order, so the bytes do not depend on thread timing.
  std::string csv[2] = {"videoid,contentUrl,duration,page_dir,name\n",
                        "videoid,contentUrl,duration,page_dir,name\n"};
  std::string meta[2], negatives;
  for (const VideoRecord& r : records) {
    const int split = r.page_dir == "train" ? 0 : 1;
    csv[split] += r.id + ",videos/" + r.page_dir + "/" + r.id + ".mp4," +
                  iso_duration(r.scene.duration_s) + "," + r.page_dir + "," +
                  csv_field(r.caption) + "\n";
    meta[split] += meta_json(r).dump() + "\n";
    if (split == 1) {
      json negs = json::array();
      for (const HardNegative& n : r.negatives)
        negs.push_back({{"caption", n.caption}, {"kind", n.kind}});
      negatives += json{{"videoid", r.id}, {"positive", r.caption}, {"negatives", negs}}.dump() +
                   "\n";
    }
  }
  SynthSummary sum;
  sum.out_dir = o.out_dir;
  sum.encoder = encoder;
  sum.videos = static_cast<int64_t>(records.size());
  sum.frames = frames;
  const std::pair<std::string, std::string> tables[] = {
      {"train.csv", csv[0]},           {"test.csv", csv[1]},
      {"train_meta.jsonl", meta[0]},   {"test_meta.jsonl", meta[1]},
      {"test_hard_negatives.jsonl", negatives}};
  for (const auto& [name, text] : tables) {
    write_text(root / name, text);
    sum.files.push_back((root / name).string());
  }
  // Every caption the benchmark can show a model: train, test and the hard negatives.
  std::vector<std::string> captions;
  for (const VideoRecord& r : records) {
    captions.push_back(r.caption);
    for (const HardNegative& n : r.negatives) captions.push_back(n.caption);
  }
  write_vocab((root / "vocab.txt").string(), build_word_vocab(captions));
  sum.files.push_back((root / "vocab.txt").string());
  json opts = {{"num_train", o.num_train},       {"num_test", o.num_test},
               {"width", o.width},               {"height", o.height},
               {"fps", o.fps},                   {"min_duration_s", o.min_duration_s},
               {"max_duration_s", o.max_duration_s}, {"min_objects", o.min_objects},
               {"max_objects", o.max_objects},   {"gop_s", o.gop_s},
               {"codec", o.codec},               {"preset", o.preset},
               {"crf", o.crf},                   {"pixel_noise", o.pixel_noise},
               {"box_jitter", o.box_jitter},     {"miss_rate", o.miss_rate},
               {"false_rate", o.false_rate},     {"region_frames", o.region_frames},
               {"region_dim", o.region_dim},     {"feature_noise", o.feature_noise},
               {"negatives_per_kind", o.negatives_per_kind}, {"seed", o.seed}};
  json info = {{"options", opts},       {"encoder", encoder},
               {"videos", sum.videos},  {"frames", sum.frames},
               {"shapes", shape_names()}, {"colours", colour_names()},
               {"actions", action_phrases()}};
  write_text(root / "synth.json", info.dump(2) + "\n");
  sum.files.push_back((root / "synth.json").string());
  fs::remove(marker);
  sum.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace kinema::data::synth
