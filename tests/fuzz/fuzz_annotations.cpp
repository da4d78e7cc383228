// Annotation files: every format read_annotations dispatches to.
#include "core/data/formats.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kinema;
  const std::string path = fuzz::write_input(data, size, ".txt");
  for (const char* format : {"webvid", "caption_tsv", "msrvtt", "msrvtt_coco", "alpro_retrieval",
                             "alpro_qa", "alpro_mc"}) {
    data::AnnotationSource source;
    source.format = format;
    source.path = path;
    if (std::string(format) == "alpro_qa") source.ans2label = path;
    fuzz::expect_clean([&] { data::read_annotations(source); });
  }
  fuzz::expect_clean([&] { data::read_ans2label(path); });
  return 0;
}
