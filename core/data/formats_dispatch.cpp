// read_annotations: one entry point over the annotation readers.
#include "core/data/formats.h"

#include <c10/util/Exception.h>

namespace kinema::data {

namespace {

std::vector<Sample> read_format(const AnnotationSource& source, const ReadOptions& options) {
  const std::string& f = source.format;
  if (f == "webvid") return read_webvid_csv(source.path, options);
  if (f == "caption_tsv") return read_caption_tsv(source.path, options, source.has_header);
  if (f == "msrvtt") return read_msrvtt(source.path, source.split, options, source.json_split);
  if (f == "msrvtt_coco") return read_msrvtt_coco(source.path, source.split, options);
  if (f == "alpro_retrieval") return read_alpro_retrieval(source.path, options);
  if (f == "alpro_qa") {
    TORCH_CHECK(!source.ans2label.empty(), "kinema::data::read_annotations: format 'alpro_qa' needs "
                "'ans2label' (the answer vocabulary JSON)");
    return read_alpro_qa(source.path, read_ans2label(source.ans2label), options);
  }
  if (f == "alpro_mc") return read_alpro_mc(source.path, options);
  TORCH_CHECK(false, "kinema::data::read_annotations: unknown format '", f, "' (known: webvid, caption_tsv, "
              "msrvtt, msrvtt_coco, alpro_retrieval, alpro_qa, alpro_mc)");
}

}  // namespace

std::vector<Sample> read_annotations(const AnnotationSource& source, const ReadOptions& options) {
  std::vector<Sample> samples = read_format(source, options);
  attach_sidecars(samples, options);
  return samples;
}

}  // namespace kinema::data
