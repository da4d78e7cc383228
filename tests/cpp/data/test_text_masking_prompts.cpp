// S-ViLM's Table 7 prompt templates.
#include <doctest/doctest.h>

#include <c10/util/Exception.h>

#include <set>

#include "core/data/prompts.h"

using namespace kinema::data;

TEST_CASE("the 12 S-ViLM templates, verbatim from Table 7") {
  const auto& t = svilm_prompt_templates();
  REQUIRE(t.size() == 12);
  CHECK(t[0] == "A footage of a {}.");
  CHECK(t[1] == "A footage of the {}.");
  CHECK(t[2] == "A footage of one {}.");
  CHECK(t[3] == "A video of a {}.");
  CHECK(t[4] == "A video of the {}.");
  CHECK(t[5] == "A video of one {}.");
  CHECK(t[6] == "A portrait of a {}.");
  CHECK(t[7] == "A portrait of the {}.");
  CHECK(t[8] == "A portrait of one {}.");
  CHECK(t[9] == "A video footage of a {}.");
  CHECK(t[10] == "A video footage of the {}.");
  CHECK(t[11] == "A video footage of one {}.");
}

TEST_CASE("filling a noun phrase, with and without its article") {
  const auto prompts = svilm_prompts("a red circle");
  REQUIRE(prompts.size() == 12);
  CHECK(prompts[0] == "A footage of a red circle.");
  CHECK(prompts[4] == "A video of the red circle.");
  CHECK(prompts[11] == "A video footage of one red circle.");
  CHECK(svilm_prompts("The dog", true)[5] == "A video of one dog.");
  CHECK(svilm_prompts("an apple", false)[3] == "A video of a an apple.");
  CHECK(fill_prompt("A video of a {}.", "theater") == "A video of a theater.");  // not an article
  CHECK_THROWS_WITH_AS(fill_prompt("no slot", "dog"), doctest::Contains("kinema::fill_prompt"),
                       c10::Error);
}

TEST_CASE("the prompt sampler is seeded and uses every template") {
  PromptSampler a(42), b(42), c(43);
  std::vector<int64_t> seq_a, seq_b, seq_c;
  std::set<int64_t> seen;
  for (int k = 0; k < 200; ++k) {
    seq_a.push_back(a.next_index());
    seq_b.push_back(b.next_index());
    seq_c.push_back(c.next_index());
    seen.insert(seq_a.back());
  }
  CHECK(seq_a == seq_b);
  CHECK(seq_a != seq_c);
  CHECK(seen.size() == 12);
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == 11);
  PromptSampler d(42);
  CHECK(d("a dog") == fill_prompt(svilm_prompt_templates()[seq_a[0]], "a dog"));
}
