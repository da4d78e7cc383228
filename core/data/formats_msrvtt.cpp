// MSR-VTT annotations in the two layouts the anchors read: CLIP4Clip's
// MSRVTT_data.json + split CSVs, and Frozen-in-Time's MSR_VTT.json + id lists.
#include "core/data/formats_detail.h"

#include <unordered_map>

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

Sample video_sample(const std::string& id, std::vector<std::string> captions,
                    const ReadOptions& options) {
  Sample s;
  s.id = id;
  s.video_path = join_path(options.video_root, id + options.video_ext);
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

  // Split of each video (only needed to filter by json_split).
  std::unordered_map<std::string, std::string> split_of;
  if (!json_split.empty()) {
    const json& videos = json_array(doc, "videos", data_json);
    for (size_t i = 0; i < videos.size(); ++i) {
      guarded(options, [&] {
        const std::string where = "videos[" + std::to_string(i) + "]";
        split_of[detail::json_string(videos[i], "video_id", data_json, 0, where)] =
            detail::json_string(videos[i], "split", data_json, 0, where);
      });
    }
  }

  CaptionIndex index;
  for (size_t i = 0; i < sentences.size(); ++i) {
    guarded(options, [&] {
      const std::string where = "sentences[" + std::to_string(i) + "]";
      const std::string id = detail::json_string(sentences[i], "video_id", data_json, 0, where);
      index.add(id, detail::json_string(sentences[i], "caption", data_json, 0, where));
    });
  }

  std::vector<Sample> samples;
  if (split_csv.empty()) {
    for (const std::string& id : index.order) {
      if (!json_split.empty()) {
        const auto it = split_of.find(id);
        if (it == split_of.end() || it->second != json_split) continue;
      }
      samples.push_back(video_sample(id, index.captions[id], options));
    }
    return samples;
  }

  const auto records = detail::split_records(detail::read_file(split_csv), ',');
  TORCH_CHECK(!records.empty(), split_csv, ": empty file (expected a header with video_id)");
  const auto& header = records.front();
  if (!header.error.empty()) fail_at(split_csv, header.line, "bad header: " + header.error);
  const int64_t col_video = detail::column_index(header, "video_id");
  const int64_t col_sentence = detail::column_index(header, "sentence");
  const int64_t col_key = detail::column_index(header, "key");
  if (col_video < 0) fail_at(split_csv, header.line, "header has no 'video_id' column");
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& rec = records[r];
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(split_csv, rec.line, rec.error);
      if (rec.fields.size() != header.fields.size()) {
        fail_at(split_csv, rec.line, "expected " + std::to_string(header.fields.size()) +
                                         " columns, found " + std::to_string(rec.fields.size()));
      }
      const std::string& id = rec.fields[col_video];
      if (col_sentence >= 0) {
        // JSFusion 1k-A test: one query per row, the row's own sentence.
        Sample s = video_sample(id, {rec.fields[col_sentence]}, options);
        if (col_key >= 0) s.extra["key"] = rec.fields[col_key];
        samples.push_back(std::move(s));
        return;
      }
      const auto it = index.captions.find(id);
      if (it == index.captions.end()) {
        fail_at(split_csv, rec.line, "video '" + id + "' has no sentence in " + data_json);
      }
      samples.push_back(video_sample(id, it->second, options));
    });
  }
  return samples;
}

std::vector<Sample> read_msrvtt_coco(const std::string& annotation_json,
                                     const std::string& split_list, const ReadOptions& options) {
  const json doc = detail::parse_json(detail::read_file(annotation_json), annotation_json);
  const json& annotations = json_array(doc, "annotations", annotation_json);
  CaptionIndex index;
  for (size_t i = 0; i < annotations.size(); ++i) {
    guarded(options, [&] {
      const std::string where = "annotations[" + std::to_string(i) + "]";
      const std::string id = detail::json_string(annotations[i], "image_id", annotation_json, 0, where);
      index.add(id, detail::json_string(annotations[i], "caption", annotation_json, 0, where));
    });
  }

  std::vector<Sample> samples;
  if (split_list.empty()) {
    for (const std::string& id : index.order) samples.push_back(video_sample(id, index.captions[id], options));
    return samples;
  }
  // One id per line (pandas read_csv(names=['videoid'])): first field of each record.
  const auto records = detail::split_records(detail::read_file(split_list), ',');
  for (const auto& rec : records) {
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(split_list, rec.line, rec.error);
      if (rec.fields.size() != 1) fail_at(split_list, rec.line, "expected one video id per line");
      const std::string& id = rec.fields[0];
      const auto it = index.captions.find(id);
      if (it == index.captions.end()) {
        fail_at(split_list, rec.line, "video '" + id + "' has no caption in " + annotation_json);
      }
      samples.push_back(video_sample(id, it->second, options));
    });
  }
  return samples;
}

}  // namespace kinema::data
