#include "core/tensor_index.h"

#include <c10/util/Exception.h>

#include <cctype>
#include <cstdlib>

namespace kinema {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

c10::optional<int64_t> parse_bound(const std::string& spec, const std::string& text) {
  std::string t = trim(text);
  if (t.empty()) return c10::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  TORCH_CHECK(end && *end == '\0', "bad index '", spec, "': '", t, "' is not an integer");
  return static_cast<int64_t>(v);
}

}  // namespace

std::vector<at::indexing::TensorIndex> parse_index_string(const std::string& spec) {
  using namespace at::indexing;
  std::vector<TensorIndex> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    std::string item = trim(spec.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) {
      TORCH_CHECK(comma == spec.size() && !out.empty(), "bad index '", spec, "': empty item");
      break;
    }
    if (item == "...") {
      out.emplace_back(Ellipsis);
    } else if (item == "None" || item == "newaxis") {
      out.emplace_back(None);
    } else if (item.find(':') != std::string::npos) {
      size_t c1 = item.find(':');
      size_t c2 = item.find(':', c1 + 1);
      auto lo = parse_bound(spec, item.substr(0, c1));
      auto hi = parse_bound(spec, item.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1));
      c10::optional<int64_t> step;
      if (c2 != std::string::npos) step = parse_bound(spec, item.substr(c2 + 1));
      TORCH_CHECK(!step || *step > 0, "bad index '", spec, "': slice step must be positive");
      out.emplace_back(Slice(lo, hi, step));
    } else {
      out.emplace_back(*parse_bound(spec, item));
    }
    if (comma == spec.size()) break;
  }
  return out;
}

}  // namespace kinema
