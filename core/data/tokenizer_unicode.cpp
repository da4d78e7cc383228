#include "core/data/tokenizer_unicode.h"

#include <string>

namespace kinema::data::unicode {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

bool in(char32_t cp, char32_t lo, char32_t hi) { return cp >= lo && cp <= hi; }

// Base letter of each precomposed character U+00C0..U+00FF ('-': no canonical
// decomposition, e.g. Æ, Ø, ß, ×).
constexpr const char* kLatin1Base = "AAAAAA-CEEEEIIII-NOOOOO--UUUUY--aaaaaa-ceeeeiiii-nooooo--uuuuy-y";
// Same for Latin Extended-A, U+0100..U+017F.
constexpr const char* kLatinExtABase =
    "AaAaAa" "CcCcCcCc" "Dd" "--" "EeEeEeEeEe" "GgGgGgGg" "Hh" "--"    // U+0100..U+0127
    "IiIiIiIi" "I-" "--" "Jj" "Kk" "-" "LlLlLl" "----" "NnNnNn" "---"  // U+0128..U+014B
    "OoOoOo" "--" "RrRrRr" "SsSsSsSs" "TtTt" "--" "UuUuUuUuUuUu"       // U+014C..U+0173
    "Ww" "YyY" "ZzZzZz" "-";                                           // U+0174..U+017F
static_assert(std::char_traits<char>::length(kLatin1Base) == 64, "Latin-1 table");
static_assert(std::char_traits<char>::length(kLatinExtABase) == 128, "Latin Extended-A table");

// Latin Extended-A alternates case in pairs; which member is upper case
// flips in U+0139..U+0148 and U+0179..U+017E.
bool latin_ext_a_is_upper(char32_t cp) {
  if (in(cp, 0x139, 0x148) || in(cp, 0x179, 0x17E)) return cp % 2 == 1;
  return cp % 2 == 0;
}

bool latin_ext_a_has_case(char32_t cp) {
  return !(cp == 0x138 || cp == 0x149 || cp == 0x17F || cp == 0x178);
}

}  // namespace

std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    int extra = 0;
    char32_t cp = 0;
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    bool ok = i + extra < n;  // a sequence cut short by the end of the text
    for (int k = 1; ok && k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    static const char32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (!ok || cp < kMin[extra] || in(cp, 0xD800, 0xDFFF) || cp > 0x10FFFF) {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(const std::u32string& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) append_utf8(out, cp);
  return out;
}

std::u32string to_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (in(cp, 'A', 'Z') || (in(cp, 0xC0, 0xDE) && cp != 0xD7)) {
      out.push_back(cp + 0x20);
    } else if (cp == 0x130) {  // İ: lower case keeps the dot as a combining mark
      out.push_back('i');
      out.push_back(0x307);
    } else if (cp == 0x178) {
      out.push_back(0xFF);
    } else if (in(cp, 0x100, 0x17F)) {
      const bool upper = latin_ext_a_has_case(cp) && latin_ext_a_is_upper(cp);
      out.push_back(upper ? cp + 1 : cp);
    } else if (in(cp, 0x391, 0x3AB) && cp != 0x3A2) {  // Greek capitals
      out.push_back(cp + 0x20);
    } else if (cp == 0x386) {
      out.push_back(0x3AC);
    } else if (in(cp, 0x388, 0x38A)) {
      out.push_back(cp + 0x25);
    } else if (cp == 0x38C) {
      out.push_back(0x3CC);
    } else if (in(cp, 0x38E, 0x38F)) {
      out.push_back(cp + 0x3F);
    } else if (in(cp, 0x410, 0x42F)) {  // Cyrillic
      out.push_back(cp + 0x20);
    } else if (in(cp, 0x400, 0x40F)) {
      out.push_back(cp + 0x50);
    } else {
      out.push_back(cp);
    }
  }
  return out;
}

bool is_combining_mark(char32_t cp) {
  return in(cp, 0x300, 0x36F) || in(cp, 0x483, 0x487) || in(cp, 0x1AB0, 0x1AFF) ||
         in(cp, 0x1DC0, 0x1DFF) || in(cp, 0x20D0, 0x20DC) || in(cp, 0x20E1, 0x20E1) ||
         in(cp, 0x20E5, 0x20F0) || in(cp, 0xFE20, 0xFE2F);
}

std::u32string strip_accents(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    char base = '-';
    if (in(cp, 0xC0, 0xFF)) base = kLatin1Base[cp - 0xC0];
    else if (in(cp, 0x100, 0x17F)) base = kLatinExtABase[cp - 0x100];
    if (base != '-') {
      out.push_back(static_cast<char32_t>(base));
    } else if (!is_combining_mark(cp)) {
      out.push_back(cp);
    }
  }
  return out;
}

bool is_bert_whitespace(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0xA0 || cp == 0x1680 ||
         in(cp, 0x2000, 0x200A) || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_bert_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return cp < 0x20 || in(cp, 0x7F, 0x9F) || cp == 0xAD || in(cp, 0x600, 0x605) || cp == 0x61C ||
         cp == 0x6DD || cp == 0x70F || in(cp, 0x200B, 0x200F) || in(cp, 0x202A, 0x202E) ||
         in(cp, 0x2060, 0x2064) || in(cp, 0x2066, 0x206F) || cp == 0xFEFF ||
         in(cp, 0xFFF9, 0xFFFB);
}

bool is_bert_punctuation(char32_t cp) {
  if (in(cp, 33, 47) || in(cp, 58, 64) || in(cp, 91, 96) || in(cp, 123, 126)) return true;
  switch (cp) {
    case 0xA1: case 0xA7: case 0xAB: case 0xB6: case 0xB7: case 0xBB: case 0xBF:
    case 0x37E: case 0x387: case 0x55A: case 0x55B: case 0x55C: case 0x55D: case 0x55E:
    case 0x55F: case 0x589: case 0x58A: case 0x5BE: case 0x60C: case 0x61B: case 0x61F:
    case 0x3030: case 0x303D: case 0x30A0: case 0x30FB:
      return true;
    default:
      break;
  }
  // General Punctuation (minus the few math symbols and format characters in it),
  // CJK and full-width punctuation.
  if (in(cp, 0x2010, 0x2027) || in(cp, 0x2030, 0x2043) || in(cp, 0x2045, 0x2051) ||
      in(cp, 0x2053, 0x205E))
    return true;
  if (in(cp, 0x3001, 0x3003) || in(cp, 0x3008, 0x3011) || in(cp, 0x3014, 0x301F)) return true;
  if (in(cp, 0xFF01, 0xFF03) || in(cp, 0xFF05, 0xFF0A) || in(cp, 0xFF0C, 0xFF0F) ||
      in(cp, 0xFF1A, 0xFF1B) || in(cp, 0xFF1F, 0xFF20) || in(cp, 0xFF3B, 0xFF3D) ||
      cp == 0xFF3F || cp == 0xFF5B || cp == 0xFF5D || in(cp, 0xFF5F, 0xFF65))
    return true;
  return false;
}

bool is_cjk(char32_t cp) {
  return in(cp, 0x4E00, 0x9FFF) || in(cp, 0x3400, 0x4DBF) || in(cp, 0x20000, 0x2A6DF) ||
         in(cp, 0x2A700, 0x2B73F) || in(cp, 0x2B740, 0x2B81F) || in(cp, 0x2B820, 0x2CEAF) ||
         in(cp, 0xF900, 0xFAFF) || in(cp, 0x2F800, 0x2FA1F);
}

bool is_regex_space(char32_t cp) {
  return in(cp, 0x09, 0x0D) || cp == ' ' || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || in(cp, 0x2000, 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_letter(char32_t cp) {
  if (in(cp, 'a', 'z') || in(cp, 'A', 'Z')) return true;
  if (cp < 0x80) return false;
  if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return true;
  if (in(cp, 0xC0, 0x2C1)) return cp != 0xD7 && cp != 0xF7;
  if (in(cp, 0x2C6, 0x2D1) || in(cp, 0x2E0, 0x2E4) || cp == 0x2EC || cp == 0x2EE) return true;
  if (in(cp, 0x370, 0x3FF))  // Greek, minus its punctuation and signs
    return !(cp == 0x375 || cp == 0x37E || cp == 0x384 || cp == 0x385 || cp == 0x387 ||
             cp == 0x3F6 || in(cp, 0x378, 0x379) || in(cp, 0x380, 0x383) || cp == 0x38B ||
             cp == 0x38D || cp == 0x3A2);
  if (in(cp, 0x400, 0x481) || in(cp, 0x48A, 0x52F)) return true;  // Cyrillic
  if (in(cp, 0x531, 0x556) || in(cp, 0x560, 0x588)) return true;  // Armenian
  if (in(cp, 0x5D0, 0x5EA) || in(cp, 0x620, 0x64A)) return true;  // Hebrew, Arabic
  if (in(cp, 0x1E00, 0x1FBC)) return true;                        // Latin/Greek extended
  if (in(cp, 0x3005, 0x3006) || in(cp, 0x3031, 0x3035) || in(cp, 0x303B, 0x303C)) return true;
  if (in(cp, 0x3041, 0x3096) || in(cp, 0x309D, 0x309F) || in(cp, 0x30A1, 0x30FA) ||
      in(cp, 0x30FC, 0x30FF))
    return true;  // kana
  if (is_cjk(cp) || in(cp, 0xAC00, 0xD7A3)) return true;  // ideographs, Hangul
  if (in(cp, 0xFF21, 0xFF3A) || in(cp, 0xFF41, 0xFF5A)) return true;  // full-width
  return false;
}

bool is_number(char32_t cp) {
  return in(cp, '0', '9') || cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || in(cp, 0xBC, 0xBE) ||
         in(cp, 0x660, 0x669) || in(cp, 0x6F0, 0x6F9) || cp == 0x2070 ||
         in(cp, 0x2074, 0x2079) || in(cp, 0x2080, 0x2089) || in(cp, 0x2150, 0x2189) ||
         in(cp, 0x2460, 0x249B) || in(cp, 0xFF10, 0xFF19) || cp == 0x3007 ||
         in(cp, 0x3021, 0x3029) || in(cp, 0x3038, 0x303A);
}

}  // namespace kinema::data::unicode
