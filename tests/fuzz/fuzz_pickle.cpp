// .pt files: torch.save zip archives and the legacy format, TorchScript
// archives (restricted reader), and bare pickles through the unpickler.
#include "core/io/torch_pickle.h"
#include "core/io/unpickler.h"
#include "fuzz_common.h"

#include <c10/core/CPUAllocator.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kinema;
  const std::string path = fuzz::write_input(data, size, ".pt");
  fuzz::expect_clean([&] { io::load_pt(path); });
  fuzz::expect_clean([&] { io::load_torchscript(path); });
  const io::StorageLoader storage = [](const io::StorageRequest& r) {
    return at::Storage(c10::Storage::use_byte_size_t(),
                       static_cast<size_t>(r.numel) * c10::elementSize(r.dtype),
                       c10::GetDefaultCPUAllocator(), false);
  };
  for (const bool torchscript : {false, true}) {
    io::UnpickleOptions options;
    options.torchscript = torchscript;
    fuzz::expect_clean([&] {
      io::unpickle_torch(reinterpret_cast<const char*>(data), size, storage, "fuzz", nullptr, options);
    });
  }
  return 0;
}
