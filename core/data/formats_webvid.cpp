// WebVid CSV and the OA-Trans / DemoVLP caption TSV.
#include "core/data/formats_detail.h"

#include <unordered_map>

namespace kinema::data {

using detail::CsvRecord;
using detail::fail_at;
using detail::guarded;

std::vector<Sample> read_webvid_csv(const std::string& path, const ReadOptions& options) {
  const auto records = detail::split_records(detail::read_text(path), ',');
  TORCH_CHECK(!records.empty(), path, ": empty file (expected a WebVid header videoid,contentUrl,duration,page_dir,name)");
  const CsvRecord& header = records.front();
  if (!header.error.empty()) fail_at(path, header.line, "bad header: " + header.error);
  const int64_t col_id = detail::column_index(header, "videoid");
  const int64_t col_name = detail::column_index(header, "name");
  const int64_t col_dir = detail::column_index(header, "page_dir");
  const int64_t col_url = detail::column_index(header, "contentUrl");
  const int64_t col_duration = detail::column_index(header, "duration");
  for (const auto& [col, name] : {std::pair{col_id, "videoid"}, std::pair{col_name, "name"},
                                  std::pair{col_dir, "page_dir"}}) {
    if (col < 0) fail_at(path, header.line, std::string("header has no '") + name + "' column");
  }
  const size_t width = header.fields.size();

  std::vector<Sample> samples;
  samples.reserve(records.size() - 1);
  std::unordered_map<std::string, int64_t> first_line;  // of each page_dir/videoid
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(path, rec.line, rec.error);
      if (rec.fields.size() != width) {
        fail_at(path, rec.line, "expected " + std::to_string(width) + " columns, found " +
                                    std::to_string(rec.fields.size()));
      }
      Sample s;
      s.id = rec.fields[col_id];
      if (s.id.empty()) fail_at(path, rec.line, "empty videoid");
      const std::string& page_dir = rec.fields[col_dir];
      detail::check_inside_root(s.id, "videoid", path, rec.line, options);
      detail::check_inside_root(page_dir, "page_dir", path, rec.line, options);
      const std::string rel = join_path(page_dir, s.id);
      const auto [seen, fresh] = first_line.try_emplace(rel, rec.line);
      if (!fresh) {
        fail_at(path, rec.line, "video '" + rel + "' is listed twice (first on line " + std::to_string(seen->second) +
                                    "); a gallery must hold each video once");
      }
      s.video_path = join_path(options.video_root, rel + options.video_ext);
      if (!options.region_root.empty()) s.region_path = join_path(options.region_root, rel);
      s.captions.push_back(rec.fields[col_name]);
      s.extra["page_dir"] = page_dir;
      if (col_url >= 0) s.extra["contentUrl"] = rec.fields[col_url];
      if (col_duration >= 0) s.extra["duration"] = rec.fields[col_duration];
      samples.push_back(std::move(s));
    });
  }
  return samples;
}

std::vector<Sample> read_caption_tsv(const std::string& path, const ReadOptions& options,
                                     bool has_header) {
  const auto records = detail::split_records(detail::read_text(path), '\t');
  std::vector<Sample> samples;
  samples.reserve(records.size());
  for (size_t r = has_header ? 1 : 0; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    guarded(options, [&] {
      if (!rec.error.empty()) fail_at(path, rec.line, rec.error);
      if (rec.fields.size() != 2) {
        fail_at(path, rec.line, "expected 2 tab-separated columns (caption, page_dir/videoid), found " +
                                    std::to_string(rec.fields.size()));
      }
      const std::string& rel = rec.fields[1];
      if (rel.empty()) fail_at(path, rec.line, "empty video path");
      detail::check_inside_root(rel, "video path", path, rec.line, options);
      Sample s;
      s.id = rel;
      s.video_path = join_path(options.video_root, rel + options.video_ext);
      if (!options.region_root.empty()) s.region_path = join_path(options.region_root, rel);
      s.captions.push_back(rec.fields[0]);
      samples.push_back(std::move(s));
    });
  }
  return samples;
}

}  // namespace kinema::data
