// Shared reader helpers: errors with file:line, file slurping, path joining and
// the RFC 4180 record splitter used by the CSV and TSV readers.
#include "core/data/formats_detail.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace kinema::data {

std::string join_path(const std::string& root, const std::string& rel) {
  if (root.empty() || (!rel.empty() && rel.front() == '/')) return rel;
  if (root.back() == '/') return root + rel;
  return root + "/" + rel;
}

namespace detail {

void fail_at(const std::string& path, int64_t line, const std::string& message) {
  if (line > 0) TORCH_CHECK(false, path, ":", line, ": ", message);
  TORCH_CHECK(false, path, ": ", message);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(path, 0, "cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  TORCH_CHECK(!in.bad(), path, ": read error");
  return buffer.str();
}

namespace {

// Length of the UTF-8 sequence starting at text[i] (0 when invalid): RFC 3629,
// no overlong forms, no surrogates, nothing above U+10FFFF.
size_t utf8_length(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::string read_text(const std::string& path) {
  std::string text = read_file(path);
  int64_t line = 1;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\0') fail_at(path, line, "NUL byte (a binary or corrupt file, not annotations)");
    if (text[i] == '\n') ++line;
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[i]));
      fail_at(path, line, std::string("invalid UTF-8 (byte ") + hex + "); annotation files are read as UTF-8");
    }
    i += n;
  }
  return text;
}

void check_inside_root(const std::string& value, const char* what, const std::string& path, int64_t line,
                       const ReadOptions& options) {
  if (options.allow_outside_root) return;
  if (!value.empty() && value.front() == '/') {
    fail_at(path, line, std::string(what) + " '" + value + "' is an absolute path (paths in annotations stay "
                                                             "below their root unless allow_outside_root is set)");
  }
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find('/', start);
    if (end == std::string::npos) end = value.size();
    if (value.compare(start, end - start, "..") == 0 && end - start == 2) {
      fail_at(path, line, std::string(what) + " '" + value + "' has a '..' component (paths in annotations stay "
                                                               "below their root unless allow_outside_root is set)");
    }
    start = end + 1;
  }
}

int64_t column_index(const CsvRecord& header, const std::string& name) {
  for (size_t i = 0; i < header.fields.size(); ++i) {
    if (header.fields[i] == name) return static_cast<int64_t>(i);
  }
  return -1;
}

namespace {

// Position just after the next '\n' at or after `pos` (or the end).
size_t after_newline(const std::string& text, size_t pos) {
  const size_t nl = text.find('\n', pos);
  return nl == std::string::npos ? text.size() : nl + 1;
}

}  // namespace

std::vector<CsvRecord> split_records(const std::string& text, char delimiter) {
  std::vector<CsvRecord> records;
  size_t pos = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int64_t line = 1;
  const size_t n = text.size();
  while (pos < n) {
    CsvRecord record;
    record.line = line;
    const size_t record_start = pos;
    std::string field;
    bool record_done = false;
    bool saw_content = false;
    while (!record_done) {
      if (pos < n && text[pos] == '"') {
        // Quoted field: runs to the closing quote; "" is an escaped quote.
        saw_content = true;
        ++pos;
        bool closed = false;
        while (pos < n) {
          const char c = text[pos];
          if (c == '"') {
            if (pos + 1 < n && text[pos + 1] == '"') {
              field.push_back('"');
              pos += 2;
              continue;
            }
            ++pos;
            closed = true;
            break;
          }
          if (c == '\n') ++line;
          field.push_back(c);
          ++pos;
        }
        if (!closed) {
          record.error = "unterminated quoted field";
          // Resume on the line after the record's first line.
          pos = after_newline(text, record_start);
          line = record.line + 1;
          break;
        }
        if (pos < n && text[pos] == '\r' && (pos + 1 == n || text[pos + 1] == '\n')) ++pos;
        if (pos < n && text[pos] != delimiter && text[pos] != '\n') {
          record.error = std::string("unexpected character '") + text[pos] +
                         "' after a closing quote (quotes inside a quoted field must be doubled)";
          pos = after_newline(text, pos);
          ++line;
          break;
        }
      } else {
        // Unquoted field: runs to the delimiter or the end of the line.
        while (pos < n && text[pos] != delimiter && text[pos] != '\n') {
          field.push_back(text[pos]);
          ++pos;
        }
        if (!field.empty() && field.back() == '\r' && (pos >= n || text[pos] == '\n')) {
          field.pop_back();
        }
        if (!field.empty()) saw_content = true;
      }
      record.fields.push_back(std::move(field));
      field.clear();
      if (pos >= n) {
        record_done = true;
      } else if (text[pos] == delimiter) {
        saw_content = true;
        ++pos;
        if (pos >= n) {  // trailing delimiter at end of file: one more empty field
          record.fields.emplace_back();
          record_done = true;
        }
      } else {  // '\n'
        ++pos;
        ++line;
        record_done = true;
      }
    }
    if (!record.error.empty()) {
      record.fields.clear();
      records.push_back(std::move(record));
      continue;
    }
    if (saw_content) records.push_back(std::move(record));
  }
  return records;
}

}  // namespace detail
}  // namespace kinema::data

namespace kinema::data::detail {

nlohmann::json parse_json(const std::string& text, const std::string& path, int64_t first_line) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based; count the newlines before it for the line.
    const size_t upto = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    int64_t line = first_line;
    for (size_t i = 0; i < upto; ++i) line += text[i] == '\n';
    fail_at(path, line, std::string("invalid JSON: ") + e.what());
  }
}

std::string json_string(const nlohmann::json& object, const char* key, const std::string& path,
                        int64_t line, const std::string& where, bool strict) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  if (!object.is_object()) fail_at(path, line, prefix + "expected a JSON object");
  const auto it = object.find(key);
  if (it == object.end()) fail_at(path, line, prefix + "missing '" + key + "'");
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer() && !strict) return std::to_string(it->get<int64_t>());
  fail_at(path, line, prefix + "'" + key + "' must be a string, got " + std::string(it->type_name()) + " " +
                          it->dump().substr(0, 40));
}

}  // namespace kinema::data::detail
