// Detection files: bottom-up-attention .npz frames, VinVL JSON/TSV, the plain
// per-frame boxes JSON.
#include "core/data/detections.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kinema;
  const std::string npz = fuzz::write_input(data, size, ".npz");
  fuzz::expect_clean([&] { data::read_butd_npz(npz); });
  const std::string json = fuzz::write_input(data, size, ".json");
  fuzz::expect_clean([&] { data::read_vinvl(json); });
  fuzz::expect_clean([&] { data::read_frame_boxes_json(json); });
  return 0;
}
