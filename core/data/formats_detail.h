#pragma once
// Shared pieces of the annotation readers (not part of the public API): error
// reporting with "path:line: " prefixes, the Skip/Raise policy, file slurping,
// and an RFC 4180 record splitter.
#include "core/data/formats.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kinema::data::detail {

// Raises c10::Error "PATH:LINE: message" (LINE omitted when <= 0).
[[noreturn]] void fail_at(const std::string& path, int64_t line, const std::string& message);

// Whole file as bytes; raises naming the path when it cannot be read.
std::string read_file(const std::string& path);

// Whole file as text for the CSV/TSV/list readers: a NUL byte or invalid UTF-8
// raises "PATH:LINE: ..." (a binary or mis-encoded file, not annotations).
std::string read_text(const std::string& path);

// A video id or sub-folder from an annotation file, used below a root folder:
// an absolute path or a '..' component raises "PATH:LINE: <what> '<value>' ..."
// unless options.allow_outside_root.
void check_inside_root(const std::string& value, const char* what, const std::string& path, int64_t line,
                       const ReadOptions& options);

// Runs one record's parse. Returns false (and counts the record) when it raised
// under OnError::Skip; rethrows under OnError::Raise.
template <class Parse>
bool guarded(const ReadOptions& options, Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const c10::Error&) {
    if (options.on_error == OnError::Raise) throw;
    if (options.skipped) ++*options.skipped;
    return false;
  }
}

struct CsvRecord {
  int64_t line = 0;  // 1-based physical line where the record starts
  std::vector<std::string> fields;
  std::string error;  // non-empty: the record is malformed (fields unreliable)
};

// Splits a delimited text into records: fields may be quoted with '"' (a
// doubled quote inside is one quote, delimiters and newlines inside are data);
// a quote inside an unquoted field is kept literally (as Python's csv does).
// Malformed records (text after a closing quote, a quote left open at the end
// of the file) come back with `error` set; parsing resumes on the next line.
// Blank lines are dropped; CRLF line ends and a UTF-8 BOM are accepted.
std::vector<CsvRecord> split_records(const std::string& text, char delimiter);

// Parses one JSON document; a syntax error raises "PATH:LINE: ..." with the
// line of the error counted from first_line (the text's first line number).
nlohmann::json parse_json(const std::string& text, const std::string& path, int64_t first_line = 1);

// A string member of a JSON object, raising "PATH:LINE: missing/non-string
// 'key'" (line <= 0: "PATH: where: ..."). Integers are accepted and printed
// unless strict (captions: a number there is a broken file, not a caption).
std::string json_string(const nlohmann::json& object, const char* key, const std::string& path,
                        int64_t line, const std::string& where = "", bool strict = false);

// Index of `name` in a header record, or -1.
int64_t column_index(const CsvRecord& header, const std::string& name);

}  // namespace kinema::data::detail
