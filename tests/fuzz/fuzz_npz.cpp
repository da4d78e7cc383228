// .npy and .npz, and .npz region files with pickled 'info' dicts.
#include "core/data/detections_pickle.h"
#include "core/io/npz.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kinema;
  fuzz::expect_clean([&] { io::parse_npy(data, size, "fuzz"); });
  const std::string path = fuzz::write_input(data, size, ".npz");
  fuzz::expect_clean([&] { io::load_npz(path); });
  fuzz::expect_clean([&] { data::load_npz_with_pickled_dicts(path); });
  fuzz::expect_clean([&] {
    data::unpickle_numpy_dict(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  });
  return 0;
}
