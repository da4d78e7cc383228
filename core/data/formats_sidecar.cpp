// Side files attached to any annotation format: per-video detections JSON and
// a metadata JSONL with precomputed parts of speech and tags (formats.h).
#include <filesystem>
#include <unordered_map>

#include "core/data/detections.h"
#include "core/data/formats_detail.h"

namespace kinema::data {

namespace {

using nlohmann::json;

std::vector<std::string> string_list(const json& record, const char* key, const std::string& path,
                                     int64_t line) {
  std::vector<std::string> out;
  if (!record.contains(key)) return out;
  const json& list = record[key];
  if (!list.is_array()) detail::fail_at(path, line, std::string("'") + key + "' must be a list of strings");
  for (const json& v : list) {
    if (!v.is_string()) detail::fail_at(path, line, std::string("'") + key + "' must be a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// The detections of a video: {root}/{id}.json, {id}.tsv or a folder {id}/ of
// .npz frames (detections.h: read_video_detections), or "" when none exists.
std::string find_detections(const std::string& root, const std::string& id) {
  for (const char* ext : {".json", ".tsv"}) {
    const std::string path = join_path(root, id + ext);
    if (std::filesystem::is_regular_file(path)) return path;
  }
  const std::string dir = join_path(root, id);
  return std::filesystem::is_directory(dir) ? dir : "";
}

// Records each sample's detections file; the loader's workers read it (a
// dataset's boxes can be far larger than its annotations). The class
// vocabulary size comes from the first file: one detector wrote them all (a
// plain-layout "classes" list, else the 1600 Visual Genome classes).
void attach_detections(std::vector<Sample>& samples, const ReadOptions& options) {
  std::string num_classes;
  for (Sample& s : samples) {
    const std::string path = find_detections(options.detections_root, s.id);
    if (path.empty()) continue;  // no detections: all-invalid rows downstream
    detail::guarded(options, [&] {
      if (num_classes.empty()) {
        int64_t n = VgVocab::objects_1600().size();
        if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
          const json doc = detail::parse_json(detail::read_file(path), path);
          if (doc.is_object() && doc.contains("classes") && doc["classes"].is_array())
            n = static_cast<int64_t>(doc["classes"].size());
        }
        num_classes = std::to_string(n);
      }
      s.boxes_path = path;
      s.extra["num_classes"] = num_classes;
    });
  }
}

void attach_meta(std::vector<Sample>& samples, const ReadOptions& options) {
  std::unordered_map<std::string, std::vector<Sample*>> by_id;
  for (Sample& s : samples) by_id[s.id].push_back(&s);
  // One JSON document per physical line.
  const std::string all = detail::read_file(options.meta);
  int64_t line = 0;
  for (size_t begin = 0; begin < all.size();) {
    size_t stop = all.find('\n', begin);
    if (stop == std::string::npos) stop = all.size();
    const std::string text = all.substr(begin, stop - begin);
    begin = stop + 1;
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    detail::guarded(options, [&] {
      const json rec = detail::parse_json(text, options.meta, line);
      if (!rec.is_object()) detail::fail_at(options.meta, line, "expected a JSON object");
      const std::string id = detail::json_string(rec, "videoid", options.meta, line);
      auto it = by_id.find(id);
      if (it == by_id.end() && rec.contains("page_dir") && rec["page_dir"].is_string())
        it = by_id.find(join_path(rec["page_dir"].get<std::string>(), id));
      if (it == by_id.end()) return;  // a video outside this split
      CaptionParts parts;
      parts.nouns = string_list(rec, "nouns", options.meta, line);
      parts.verbs = string_list(rec, "verbs", options.meta, line);
      parts.noun_phrases = string_list(rec, "noun_phrases", options.meta, line);
      const std::vector<std::string> tags = string_list(rec, "tags", options.meta, line);
      const std::string caption =
          rec.contains("caption") && rec["caption"].is_string() ? rec["caption"].get<std::string>() : "";
      for (Sample* s : it->second) {
        if (!tags.empty()) s->tags = tags;
        for (size_t c = 0; c < s->captions.size(); ++c) {
          if (s->captions.size() != 1 && s->captions[c] != caption) continue;
          s->parts.resize(s->captions.size());
          s->parts[c] = parts;
        }
      }
    });
  }
}

}  // namespace

void attach_sidecars(std::vector<Sample>& samples, const ReadOptions& options) {
  if (!options.detections_root.empty()) attach_detections(samples, options);
  if (!options.meta.empty()) attach_meta(samples, options);
}

}  // namespace kinema::data
