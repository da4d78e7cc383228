// Visual Genome vocabulary parsing and lookup.
#include "core/data/vg_vocab.h"

#include "core/data/formats_detail.h"

#include <algorithm>
#include <cctype>

namespace kinema::data {

namespace {

std::string lower_trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  std::string out = s.substr(b, e - b + 1);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

VgVocab VgVocab::from_text(const std::string& text, const std::string& what) {
  VgVocab vocab;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string row = text.substr(pos, end - pos);
    pos = end + 1;
    std::vector<std::string> names;
    size_t start = 0;
    while (start <= row.size()) {
      size_t comma = row.find(',', start);
      if (comma == std::string::npos) comma = row.size();
      std::string name = lower_trimmed(row.substr(start, comma - start));
      if (!name.empty()) names.push_back(std::move(name));
      start = comma + 1;
    }
    if (names.empty()) {
      // A trailing newline ends the file; any other empty line would shift ids.
      if (pos >= text.size() && row.find_first_not_of(" \t\r") == std::string::npos) break;
      detail::fail_at(what, line, "empty class name (ids are line numbers, blank lines would shift them)");
    }
    const int64_t id = static_cast<int64_t>(vocab.synonyms_.size());
    for (const std::string& n : names) vocab.index_.try_emplace(n, id);
    vocab.synonyms_.push_back(std::move(names));
  }
  TORCH_CHECK(!vocab.synonyms_.empty(), what, ": empty vocabulary");
  return vocab;
}

VgVocab VgVocab::from_file(const std::string& path) {
  return from_text(detail::read_file(path), path);
}

const VgVocab& VgVocab::objects_1600() {
  static const VgVocab vocab = from_text(vg_objects_1600_text(), "vg_objects_1600.txt");
  return vocab;
}

const std::vector<std::string>& VgVocab::synonyms(int64_t id) const {
  TORCH_CHECK(id >= 0 && id < size(), "kinema::data::VgVocab: label id ", id,
              " is out of range for ", size(), " classes");
  return synonyms_[id];
}

const std::string& VgVocab::name(int64_t id) const { return synonyms(id).front(); }

int64_t VgVocab::id(const std::string& name) const {
  const auto it = index_.find(lower_trimmed(name));
  return it == index_.end() ? -1 : it->second;
}

}  // namespace kinema::data
