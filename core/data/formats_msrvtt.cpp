// MSR-VTT annotations in the two layouts the anchors read: CLIP4Clip's
// MSRVTT_data.json + split CSVs, and Frozen-in-Time's MSR_VTT.json + id lists.
#include "core/data/formats_detail.h"

#include <filesystem>
#include <unordered_map>
#include <unordered_set>

namespace kinema::data {

using detail::fail_at;
using detail::guarded;
using nlohmann::json;

namespace {

// Captions grouped by video id, videos in order of first appearance.
struct CaptionIndex {
  std::vector<std::string> order;
  std::unordered_map<std::string, std::vector<std::string>> captions;

  void add(const std::string& id, std::string caption) {
    auto [it, inserted] = captions.try_emplace(id);
    if (inserted) order.push_back(id);
    it->second.push_back(std::move(caption));
  }
};

// Where a video id's file is: {video_root}/{id}{ext}, or one folder below
// (MSR-VTT ships TrainValVideo/ and TestVideo/), found by one listing of the
// root's sub-folders, made on first need.
class VideoLocator {
 public:
  explicit VideoLocator(const ReadOptions& options) : options_(options) {}

  std::string path(const std::string& id) {
    const std::string flat = join_path(options_.video_root, id + options_.video_ext);
    if (options_.video_root.empty() || std::filesystem::exists(flat)) return flat;
    if (!indexed_) index();
    const auto it = nested_.find(id + options_.video_ext);
    return it == nested_.end() ? flat : it->second;  // a missing file is reported by whoever reads it
  }

 private:
  void index() {
    indexed_ = true;
    std::error_code ec;
    for (const auto& dir : std::filesystem::directory_iterator(options_.video_root, ec)) {
      if (!dir.is_directory(ec)) continue;
      for (const auto& file : std::filesystem::directory_iterator(dir.path(), ec)) {
        // the first sub-folder in name order wins a name found twice
        auto [it, fresh] = nested_.try_emplace(file.path().filename().string(), file.path().string());
        if (!fresh && file.path().string() < it->second) it->second = file.path().string();
      }
    }
  }

  const ReadOptions& options_;
  bool indexed_ = false;
  std::unordered_map<std::string, std::string> nested_;
};

Sample video_sample(const std::string& id, std::vector<std::string> captions, const ReadOptions& options,
                    VideoLocator& videos) {
  Sample s;
  s.id = id;
  s.video_path = videos.path(id);
  if (!options.region_root.empty()) s.region_path = join_path(options.region_root, id);
  s.captions = std::move(captions);
  return s;
}

const json& json_array(const json& doc, const char* key, const std::string& path) {
  if (!doc.is_object() || !doc.contains(key) || !doc[key].is_array()) {
    fail_at(path, 0, std::string("expected a top-level '") + key + "' array");
  }
  return doc[key];
}

}  // namespace

std::vector<Sample> read_msrvtt(const std::string& data_json, const std::string& split_csv,
                                const ReadOptions& options, const std::string& json_split) {
  const json doc = detail::parse_json(detail::read_file(data_json), data_json);
  const json& sentences = json_array(doc, "sentences", data_json);
  VideoLocator videos(options);

  // The video list: optional unless a JSON split is asked for, never malformed.
  std::unordered_map<std::string, std::string> split_of;
  if (!json_split.empty() || (doc.is_object() && doc.contains("videos"))) {
    const json& list = json_array(doc, "videos", data_json);
    for (size_t i = 0; i < list.size(); ++i) {
      guarded(options, [&] {
        const std::string where = "videos[" + std::to_string(i) + "]";
        const std::string id = detail::json_string(list[i], "video_id", data_json, 0, where);
        detail::check_inside_root(id, (where + ".video_id").c_str(), data_json, 0, options);
        const std::string split = list[i].contains("split") || !json_split.empty()
                                      ? detail::json_string(list[i], "split", data_json, 0, where, true)
                                      : "";
        if (!split_of.emplace(id, split).second) {
          fail_at(data_json, 0, where + ": video_id '" + id + "' is listed twice");
        }
      });
    }
  }

  CaptionIndex index;
  for (size_t i = 0; i < sentences.size(); ++i) {
    guarded(options, [&] {
      const std::string where = "sentences[" + std::to_string(i) + "]";
      const std::string id = detail::json_string(sentences[i], "video_id", data_json, 0, where);
      detail::check_inside_root(id, (where + ".video_id").c_str(), data_json, 0, options);
      index.add(id, detail::json_string(sentences[i], "caption", data_json, 0, where, true));
    });
  }

  std::vector<Sample> samples;
  if (split_csv.empty()) {
    for (const std::string& id : index.order) {
      if (!json_split.empty()) {
        const auto it = split_of.find(id);
        if (it == split_of.end() || it->second != json_split) continue;
      }
      samples.push_back(video_sample(id, index.captions[id], options, videos));
    }
    return samples;
  }

  const auto records = detail::split_records(detail::read_text(split_csv), ',');
  TORCH_CHECK(!records.empty(), split_csv, ": empty file (expected a header with video_id)");
  const auto& header = records.front();
  if (!header.error.empty()) fail_at(split_csv, header.line, "bad header: " + header.error);
  const int64_t col_video = detail::column_index(header, "video_id");
  const int64_t col_sentence = detail::column_index(header, "sentence");
  const int64_t col_key = detail::column_index(header, "key");
  if (col_video < 0) fail_at(split_csv, header.line, "header has no 'video_id' column");
  std::unordered_map<std::string, int64_t> listed;  // video id -> line
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& rec = records[r];
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(split_csv, rec.line, rec.error);
      if (rec.fields.size() != header.fields.size()) {
        fail_at(split_csv, rec.line, "expected " + std::to_string(header.fields.size()) +
                                         " columns, found " + std::to_string(rec.fields.size()));
      }
      const std::string& id = rec.fields[col_video];
      if (id.empty()) fail_at(split_csv, rec.line, "empty video_id");
      detail::check_inside_root(id, "video_id", split_csv, rec.line, options);
      const auto [seen, fresh] = listed.try_emplace(id, rec.line);
      if (!fresh) {
        fail_at(split_csv, rec.line, "video '" + id + "' is listed twice (first on line " +
                                         std::to_string(seen->second) + "); a gallery must hold each video once");
      }
      if (col_sentence >= 0) {
        // JSFusion 1k-A test: one query per row, the row's own sentence.
        Sample s = video_sample(id, {rec.fields[col_sentence]}, options, videos);
        if (col_key >= 0) s.extra["key"] = rec.fields[col_key];
        samples.push_back(std::move(s));
        return;
      }
      const auto it = index.captions.find(id);
      if (it == index.captions.end()) {
        fail_at(split_csv, rec.line, "video '" + id + "' has no sentence in " + data_json);
      }
      samples.push_back(video_sample(id, it->second, options, videos));
    });
  }
  return samples;
}

std::vector<Sample> read_msrvtt_coco(const std::string& annotation_json,
                                     const std::string& split_list, const ReadOptions& options) {
  const json doc = detail::parse_json(detail::read_file(annotation_json), annotation_json);
  const json& annotations = json_array(doc, "annotations", annotation_json);
  VideoLocator videos(options);
  CaptionIndex index;
  for (size_t i = 0; i < annotations.size(); ++i) {
    guarded(options, [&] {
      const std::string where = "annotations[" + std::to_string(i) + "]";
      const std::string id = detail::json_string(annotations[i], "image_id", annotation_json, 0, where);
      detail::check_inside_root(id, (where + ".image_id").c_str(), annotation_json, 0, options);
      index.add(id, detail::json_string(annotations[i], "caption", annotation_json, 0, where, true));
    });
  }

  std::vector<Sample> samples;
  if (split_list.empty()) {
    for (const std::string& id : index.order) samples.push_back(video_sample(id, index.captions[id], options, videos));
    return samples;
  }
  // One id per line (pandas read_csv(names=['videoid'])): first field of each record.
  const auto records = detail::split_records(detail::read_text(split_list), ',');
  std::unordered_set<std::string> listed;
  for (const auto& rec : records) {
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(split_list, rec.line, rec.error);
      if (rec.fields.size() != 1) fail_at(split_list, rec.line, "expected one video id per line");
      const std::string& id = rec.fields[0];
      if (!listed.insert(id).second) fail_at(split_list, rec.line, "video '" + id + "' is listed twice");
      const auto it = index.captions.find(id);
      if (it == index.captions.end()) {
        fail_at(split_list, rec.line, "video '" + id + "' has no caption in " + annotation_json);
      }
      samples.push_back(video_sample(id, it->second, options, videos));
    });
  }
  return samples;
}

}  // namespace kinema::data
