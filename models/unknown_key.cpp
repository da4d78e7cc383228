#include "models/unknown_key.h"

#include <algorithm>

namespace kinema {

namespace {

// Edits (insert, delete, substitute, swap two neighbours) turning a into b: the
// optimal string alignment distance. The same rule as kinema.util's closest in Lua.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t v = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, d[i - 2][j - 2] + 1);
      d[i][j] = v;
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string unknown_key_message(const std::string& where, const std::string& kind, const std::string& key,
                                const std::vector<std::string>& known) {
  std::string message = where + ": unknown " + kind + " '" + key + "'";
  std::vector<std::string> names = known;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (names.empty()) return message + " (it takes no " + kind + "s)";
  const std::string* nearest = nullptr;
  size_t best = 0;
  for (const auto& n : names) {
    const size_t d = edit_distance(key, n);
    if (!nearest || d < best) nearest = &n, best = d;
  }
  // close: at most a third of the longer name edited (a typo, not another word)
  if (best * 3 <= std::max(key.size(), nearest->size())) return message + " (did you mean '" + *nearest + "'?)";
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return message + " (known: " + list + ")";
}

}  // namespace kinema
