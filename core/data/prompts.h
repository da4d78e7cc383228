#pragma once
// S-ViLM's prompt templates for noun phrases (Table 7 of the paper, appendix
// A.1): each noun phrase is put into one of 12 templates and encoded by the
// text encoder to give a noun token for spatial grounding.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kinema::data {

// The 12 templates verbatim, "{}" marking the noun phrase.
const std::vector<std::string>& svilm_prompt_templates();

// The template with "{}" replaced by the noun phrase. With strip_article, a
// leading "a", "an" or "the" of the phrase is dropped first, so "a red circle"
// gives "A video of the red circle." rather than "A video of the a red circle.".
std::string fill_prompt(const std::string& prompt_template, const std::string& noun_phrase,
                        bool strip_article = true);

// All 12 filled prompts, in table order.
std::vector<std::string> svilm_prompts(const std::string& noun_phrase, bool strip_article = true);

// Picks one template uniformly at random per call (the paper's training use);
// the sequence is fixed by the seed.
class PromptSampler {
 public:
  explicit PromptSampler(uint64_t seed) : engine_(seed) {}
  // Index (0-based) of the next template.
  int64_t next_index();
  std::string operator()(const std::string& noun_phrase, bool strip_article = true);

 private:
  std::mt19937_64 engine_;
};

}  // namespace kinema::data
