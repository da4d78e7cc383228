#include "core/data/tokenizer_text.h"

#include <cstdlib>
#include <utility>

#include "core/data/tokenizer_unicode.h"

namespace kinema::data {

std::vector<std::u32string> split_on_spaces(const std::u32string& text) {
  std::vector<std::u32string> words;
  std::u32string current;
  for (char32_t cp : text) {
    if (cp == U' ') {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(cp);
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

namespace {
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}
}  // namespace

std::string clean_up_tokenization_spaces(const std::string& text) {
  std::string s = text;
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
  return s;
}

std::string html_unescape(const std::string& text) {
  static const std::pair<const char*, const char*> kNamed[] = {
      {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", "\xC2\xA0"}};
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '&') {
      out.push_back(text[i++]);
      continue;
    }
    const size_t semi = text.find(';', i + 1);
    if (semi == std::string::npos || semi - i > 10) {
      out.push_back(text[i++]);
      continue;
    }
    const std::string name = text.substr(i + 1, semi - i - 1);
    bool done = false;
    if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const std::string digits = name.substr(hex ? 2 : 1);
      char* end = nullptr;
      const long cp = digits.empty() ? -1 : std::strtol(digits.c_str(), &end, hex ? 16 : 10);
      if (!digits.empty() && *end == '\0' && cp > 0 && cp <= 0x10FFFF) {
        unicode::append_utf8(out, static_cast<char32_t>(cp));
        done = true;
      }
    } else {
      for (const auto& [entity, value] : kNamed) {
        if (name == entity) {
          out += value;
          done = true;
          break;
        }
      }
    }
    if (done) {
      i = semi + 1;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

}  // namespace kinema::data
