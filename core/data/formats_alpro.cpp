// ALPRO / DemoVLP JSON-lines annotations: retrieval, open-ended QA (with an
// ans2label vocabulary) and multiple choice.
#include "core/data/formats_detail.h"

namespace kinema::data {

using detail::fail_at;
using detail::guarded;
using nlohmann::json;

namespace {

// Calls on_line(object, line) for every non-blank line of a JSONL file; a line
// that is not a JSON object raises (or is skipped) with its line number.
template <class OnLine>
void for_each_jsonl(const std::string& path, const ReadOptions& options, OnLine&& on_line) {
  const std::string text = detail::read_file(path);
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string content = text.substr(pos, end - pos);
    pos = end + 1;
    if (content.find_first_not_of(" \t\r") == std::string::npos) continue;
    guarded(options, [&] {
      const json object = detail::parse_json(content, path, line);
      if (!object.is_object()) fail_at(path, line, "expected a JSON object per line");
      on_line(object, line);
    });
  }
}

// The video key of a QA / MC line: clip_name, video_id or gif_name.
std::string video_key(const json& object, const std::string& path, int64_t line) {
  for (const char* key : {"clip_name", "video_id", "gif_name"}) {
    if (object.contains(key)) return detail::json_string(object, key, path, line);
  }
  fail_at(path, line, "missing the video key ('clip_name', 'video_id' or 'gif_name')");
}

Sample video_sample(const std::string& id, const ReadOptions& options, const std::string& path, int64_t line) {
  detail::check_inside_root(id, "video id", path, line, options);
  Sample s;
  s.id = id;
  s.video_path = join_path(options.video_root, id + options.video_ext);
  if (!options.region_root.empty()) s.region_path = join_path(options.region_root, id);
  return s;
}

}  // namespace

std::vector<Sample> read_alpro_retrieval(const std::string& jsonl, const ReadOptions& options) {
  std::vector<Sample> samples;
  for_each_jsonl(jsonl, options, [&](const json& object, int64_t line) {
    Sample s = video_sample(detail::json_string(object, "clip_name", jsonl, line), options, jsonl, line);
    const auto caption = object.find("caption");
    if (caption == object.end()) fail_at(jsonl, line, "missing 'caption'");
    if (caption->is_string()) {
      s.captions.push_back(caption->get<std::string>());
    } else if (caption->is_array() && !caption->empty()) {
      for (const json& c : *caption) {
        if (!c.is_string()) fail_at(jsonl, line, "'caption' list must hold strings");
        s.captions.push_back(c.get<std::string>());
      }
    } else {
      fail_at(jsonl, line, "'caption' must be a string or a non-empty list of strings");
    }
    if (object.contains("retrieval_key")) {
      s.extra["retrieval_key"] = detail::json_string(object, "retrieval_key", jsonl, line);
    }
    samples.push_back(std::move(s));
  });
  return samples;
}

std::map<std::string, int64_t> read_ans2label(const std::string& path) {
  const json doc = detail::parse_json(detail::read_file(path), path);
  if (!doc.is_object()) fail_at(path, 0, "expected a JSON object {answer: label}");
  std::map<std::string, int64_t> ans2label;
  for (const auto& [answer, label] : doc.items()) {
    if (!label.is_number_integer()) fail_at(path, 0, "label of '" + answer + "' must be an integer");
    ans2label[answer] = label.get<int64_t>();
  }
  return ans2label;
}

std::vector<Sample> read_alpro_qa(const std::string& jsonl,
                                  const std::map<std::string, int64_t>& ans2label,
                                  const ReadOptions& options) {
  std::vector<Sample> samples;
  for_each_jsonl(jsonl, options, [&](const json& object, int64_t line) {
    Sample s = video_sample(video_key(object, jsonl, line), options, jsonl, line);
    s.question = detail::json_string(object, "question", jsonl, line);
    s.answer = detail::json_string(object, "answer", jsonl, line);
    const auto it = ans2label.find(s.answer);
    s.answer_label = it == ans2label.end() ? -1 : it->second;
    if (object.contains("answer_type")) {
      s.extra["answer_type"] = detail::json_string(object, "answer_type", jsonl, line);
    }
    samples.push_back(std::move(s));
  });
  return samples;
}

std::vector<Sample> read_alpro_mc(const std::string& jsonl, const ReadOptions& options) {
  std::vector<Sample> samples;
  for_each_jsonl(jsonl, options, [&](const json& object, int64_t line) {
    Sample s = video_sample(video_key(object, jsonl, line), options, jsonl, line);
    const auto opts = object.find("options");
    if (opts == object.end() || !opts->is_array() || opts->empty()) {
      fail_at(jsonl, line, "'options' must be a non-empty list of strings");
    }
    for (const json& o : *opts) {
      if (!o.is_string()) fail_at(jsonl, line, "'options' must hold strings");
      s.options.push_back(o.get<std::string>());
    }
    const std::string answer = detail::json_string(object, "answer", jsonl, line);
    size_t used = 0;
    int64_t label = -1;
    try {
      label = std::stoll(answer, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != answer.size() || answer.empty()) {
      fail_at(jsonl, line, "'answer' must be an option index, got '" + answer + "'");
    }
    if (label < 0 || label >= static_cast<int64_t>(s.options.size())) {
      fail_at(jsonl, line, "'answer' " + answer + " is out of range for " +
                               std::to_string(s.options.size()) + " options");
    }
    s.answer_label = label;
    s.answer = s.options[label];
    if (object.contains("qid")) s.extra["qid"] = detail::json_string(object, "qid", jsonl, line);
    samples.push_back(std::move(s));
  });
  return samples;
}

}  // namespace kinema::data
