#include "core/data/prompts.h"

#include <c10/util/Exception.h>

#include <cctype>

namespace kinema::data {

const std::vector<std::string>& svilm_prompt_templates() {
  static const std::vector<std::string> templates = {
      "A footage of a {}.",       "A footage of the {}.",       "A footage of one {}.",
      "A video of a {}.",         "A video of the {}.",         "A video of one {}.",
      "A portrait of a {}.",      "A portrait of the {}.",      "A portrait of one {}.",
      "A video footage of a {}.", "A video footage of the {}.", "A video footage of one {}.",
  };
  return templates;
}

namespace {
std::string without_article(const std::string& phrase) {
  size_t start = phrase.find_first_not_of(' ');
  if (start == std::string::npos) return "";
  for (const char* article : {"a ", "an ", "the "}) {
    const std::string a = article;
    if (phrase.size() - start > a.size()) {
      bool same = true;
      for (size_t k = 0; k < a.size() && same; ++k)
        same = std::tolower(static_cast<unsigned char>(phrase[start + k])) == a[k];
      if (same) {
        start = phrase.find_first_not_of(' ', start + a.size());
        break;
      }
    }
  }
  const size_t end = phrase.find_last_not_of(' ');
  return phrase.substr(start, end + 1 - start);
}
}  // namespace

std::string fill_prompt(const std::string& prompt_template, const std::string& noun_phrase,
                        bool strip_article) {
  const size_t slot = prompt_template.find("{}");
  TORCH_CHECK(slot != std::string::npos, "kinema::fill_prompt: template '", prompt_template,
              "' has no {} slot");
  const std::string phrase = strip_article ? without_article(noun_phrase) : noun_phrase;
  return prompt_template.substr(0, slot) + phrase + prompt_template.substr(slot + 2);
}

std::vector<std::string> svilm_prompts(const std::string& noun_phrase, bool strip_article) {
  std::vector<std::string> prompts;
  for (const auto& t : svilm_prompt_templates())
    prompts.push_back(fill_prompt(t, noun_phrase, strip_article));
  return prompts;
}

int64_t PromptSampler::next_index() {
  // 2^64 mod 12 = 4: the modulo bias is below 1e-18.
  return static_cast<int64_t>(engine_() % svilm_prompt_templates().size());
}

std::string PromptSampler::operator()(const std::string& noun_phrase, bool strip_article) {
  return fill_prompt(svilm_prompt_templates()[next_index()], noun_phrase, strip_article);
}

}  // namespace kinema::data
