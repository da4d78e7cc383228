#include "core/io/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kinema;
  fuzz::expect_clean([&] { io::parse_safetensors(data, size, "fuzz"); });
  const std::string path = fuzz::write_input(data, size, ".safetensors");
  fuzz::expect_clean([&] { io::load_safetensors(path); });
  return 0;
}
