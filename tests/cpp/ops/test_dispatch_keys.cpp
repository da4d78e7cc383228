// Which dispatch keys the custom operators have kernels for. Against a CUDA
// LibTorch (libtorch_cuda.so in the process) every kernel under ops/cuda must
// be registered for the CUDA key, which proves it compiled and linked into
// libkinema_ops; against a CPU LibTorch none is. Both lines register the
// autocast kernels (ops/autocast.cpp) for AutocastCPU and AutocastCUDA.
#include <ATen/core/dispatch/Dispatcher.h>
#include <doctest/doctest.h>
#include <dlfcn.h>

#include <string>

namespace {

bool cuda_libtorch_loaded() { return dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD) != nullptr; }

c10::OperatorHandle kinema_op(const std::string& name) {
  auto op = c10::Dispatcher::singleton().findSchema({"kinema::" + name, ""});
  REQUIRE_MESSAGE(op.has_value(), "kinema::", name, " is not registered");
  return *op;
}

}  // namespace

TEST_CASE("the CUDA kernels are registered for the CUDA dispatch key exactly on a CUDA LibTorch") {
  const bool cuda = cuda_libtorch_loaded();
  MESSAGE("LibTorch with CUDA (libtorch_cuda.so loaded): ", cuda);
  for (const std::string name : {"roi_align", "_roi_align_backward", "linear_assignment", "adamw_", "sgd_"}) {
    const c10::OperatorHandle op = kinema_op(name);
    MESSAGE("kinema::", name, ": CPU kernel ", op.hasKernelForDispatchKey(c10::DispatchKey::CPU), ", CUDA kernel ",
            op.hasKernelForDispatchKey(c10::DispatchKey::CUDA));
    CHECK_MESSAGE(op.hasKernelForDispatchKey(c10::DispatchKey::CPU), "kinema::", name, ": no CPU kernel");
    CHECK_MESSAGE(op.hasKernelForDispatchKey(c10::DispatchKey::CUDA) == cuda, "kinema::", name,
                  cuda ? ": no CUDA kernel in a CUDA build" : ": a CUDA kernel in a CPU build");
  }
}

TEST_CASE("the autocast kernels are registered for AutocastCPU and AutocastCUDA") {
  for (const std::string name : {"roi_align", "linear_assignment", "rwa_similarity", "grounding_similarity"}) {
    const c10::OperatorHandle op = kinema_op(name);
    CHECK_MESSAGE(op.hasKernelForDispatchKey(c10::DispatchKey::AutocastCPU), "kinema::", name);
    CHECK_MESSAGE(op.hasKernelForDispatchKey(c10::DispatchKey::AutocastCUDA), "kinema::", name);
  }
}
