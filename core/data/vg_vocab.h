#pragma once
// Visual Genome object vocabulary: label id <-> class name.
//
// The built-in list is the 1600-class vocabulary of bottom-up-attention's
// Faster R-CNN (data/genome/1600-400-20/objects_vocab.txt of
// peteanderson80/bottom-up-attention, the copy shipped as
// evaluation/objects_vocab.txt in MILVLG/bottom-up-attention.pytorch), the
// detector whose .npz features OA-Trans and DemoVLP read. It is committed as
// core/data/vg_objects_1600.txt and compiled into the binary (the build
// generates vg_objects_1600_data.cpp from it; a test compares the two), so no
// data file has to be found at run time.
//
// Ids are 0-based line numbers: the `objects_id` arrays of the .npz files index
// this list directly (the detector's background class is not part of it).
// A line may list synonyms separated by commas; the first one is the name.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace kinema::data {

class VgVocab {
 public:
  // The built-in 1600 classes.
  static const VgVocab& objects_1600();
  // One class per line, synonyms separated by commas (the objects_vocab.txt form).
  static VgVocab from_text(const std::string& text, const std::string& what = "vocabulary");
  static VgVocab from_file(const std::string& path);

  int64_t size() const { return static_cast<int64_t>(synonyms_.size()); }
  // First synonym of class `id` (raises on an out-of-range id).
  const std::string& name(int64_t id) const;
  const std::vector<std::string>& synonyms(int64_t id) const;
  // Class of a name or any synonym, case-insensitive; -1 when unknown.
  int64_t id(const std::string& name) const;

 private:
  std::vector<std::vector<std::string>> synonyms_;
  std::unordered_map<std::string, int64_t> index_;
};

// The exact bytes of vg_objects_1600.txt (compiled in).
const std::string& vg_objects_1600_text();

}  // namespace kinema::data
