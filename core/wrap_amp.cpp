// Mixed precision and per-device RNG state for training loops (kinema._amp):
//   autocast(device_type, dtype, enabled, fn, ...) -> fn's results
//     runs fn with ATen's autocast on for 'cuda' (or 'cpu'): matmuls and
//     convolutions run in dtype (bfloat16 / float16), reductions stay float32;
//     the previous state is restored even when fn raises.
//   is_autocast_enabled(device_type) -> bool
//   get_rng_state(device) / set_rng_state(device, state): the default
//     generator of 'cpu' or 'cuda:N' (a checkpoint needs every device's state
//     to resume a run exactly).
//   cuda_synchronize([device_index]): no-op without CUDA.
//   cuda_memory_allocated([device_index]) / cuda_max_memory_allocated([device_index])
//     / cuda_reset_peak_memory_stats([device_index]): bytes of tensors the CUDA
//     caching allocator holds now / at peak since the last reset (PyTorch's
//     torch.cuda functions of the same names); raise without a CUDA device.
#include <ATen/autocast_mode.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#ifdef KINEMA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "core/runtime.h"
#include "ops/torch_compat.h"

namespace kinema::lua {

namespace {

bool is_cuda_type(lua_State* L, int idx) {
  std::string type = luaL_checkstring(L, idx);
  if (type == "cuda") return true;
  if (type == "cpu") return false;
  raise(L, "autocast: device_type must be 'cuda' or 'cpu', got '" + type + "'");
}

at::ScalarType check_half_dtype(lua_State* L, int idx) {
  at::ScalarType dtype = check_dtype(L, idx);
  if (dtype != at::kBFloat16 && dtype != at::kHalf)
    raise(L, std::string("autocast: dtype must be torch.bfloat16 or torch.float16, got ") + c10::toString(dtype));
  return dtype;
}

// Restores the autocast state of one device type on scope exit.
class AutocastScope {
 public:
  AutocastScope(bool cuda, bool enabled, at::ScalarType dtype)
      : device_(cuda ? at::kCUDA : at::kCPU),
        was_enabled_(compat::autocast_enabled(device_)),
        old_dtype_(compat::autocast_dtype(device_)) {
    compat::set_autocast_enabled(device_, enabled);
    compat::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    // The cast cache holds bf16 copies of weights for this region only.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    compat::set_autocast_enabled(device_, was_enabled_);
    compat::set_autocast_dtype(device_, old_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType device_;
  bool was_enabled_;
  at::ScalarType old_dtype_;
};

int autocast(lua_State* L) {
  const bool cuda = is_cuda_type(L, 1);
  const at::ScalarType dtype = check_half_dtype(L, 2);
  const bool enabled = lua_toboolean(L, 3);
  constexpr int fn_index = 4;
  luaL_checktype(L, fn_index, LUA_TFUNCTION);
  const int nargs = lua_gettop(L) - fn_index;
  const int base = fn_index - 1;
  int status;
  {
    AutocastScope scope(cuda, enabled, dtype);
    status = pcall_traceback(L, nargs, LUA_MULTRET);
  }
  if (status != 0) return lua_error(L);
  return lua_gettop(L) - base;
}

int is_autocast_enabled(lua_State* L) {
  lua_pushboolean(L, compat::autocast_enabled(is_cuda_type(L, 1) ? at::kCUDA : at::kCPU));
  return 1;
}

at::Generator default_generator(lua_State* L, int idx) {
  const c10::Device device = check_device(L, idx);
  if (device.is_cpu()) return at::detail::getDefaultCPUGenerator();
  if (device.is_cuda()) {
    if (!at::hasCUDA()) raise(L, "get_rng_state: CUDA is not available");
    return at::globalContext().defaultGenerator(device);
  }
  raise(L, "get_rng_state: no generator for device " + device.str());
}

int get_rng_state(lua_State* L) {
  at::Generator gen = default_generator(L, 1);
  return protect(L, [&] {
    std::lock_guard<std::mutex> lock(gen.mutex());
    push_tensor(L, gen.get_state());
    return 1;
  });
}

int set_rng_state(lua_State* L) {
  at::Generator gen = default_generator(L, 1);
  at::Tensor& state = check_tensor(L, 2);
  return protect(L, [&] {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return 0;
  });
}

// Waits for the device's queued kernels (timings of a CUDA step need it).
int cuda_synchronize(lua_State* L) {
  const auto index = static_cast<int64_t>(luaL_optinteger(L, 1, -1));
  return protect(L, [&] {
    if (at::hasCUDA()) torch::cuda::synchronize(index);
    return 0;
  });
}

// The CUDA device of an optional index argument (default: the current
// device), or an error naming `fn` when there is none.
c10::DeviceIndex check_cuda_device(lua_State* L, const char* fn) {
  const auto index = static_cast<int64_t>(luaL_optinteger(L, 1, -1));
#ifdef KINEMA_WITH_CUDA
  const char* why = "";
#else
  const char* why = " (this kinema was built without CUDA)";
#endif
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (count == 0) raise(L, std::string(fn) + ": no CUDA device" + why);
  if (index >= count)
    raise(L, std::string(fn) + ": device index " + std::to_string(index) + " out of range (" +
                 std::to_string(count) + " CUDA devices)");
#ifdef KINEMA_WITH_CUDA
  return index < 0 ? c10::cuda::current_device() : static_cast<c10::DeviceIndex>(index);
#else
  return static_cast<c10::DeviceIndex>(index);  // unreachable: no device without CUDA
#endif
}

// Current or peak bytes allocated on the device.
int cuda_memory(lua_State* L, const char* fn, bool peak) {
  const c10::DeviceIndex device = check_cuda_device(L, fn);
  return protect(L, [&] {
#ifdef KINEMA_WITH_CUDA
    // The statistic over all the allocator's pools: StatType::AGGREGATE, the
    // first entry of its stat arrays in every LibTorch line.
    constexpr size_t all_pools = 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
    const auto& allocated = stats.allocated_bytes[all_pools];
    lua_pushnumber(L, static_cast<lua_Number>(peak ? allocated.peak : allocated.current));
#else
    (void)device, (void)peak;
    lua_pushnumber(L, 0);
#endif
    return 1;
  });
}

int cuda_memory_allocated(lua_State* L) { return cuda_memory(L, "torch.cuda.memory_allocated", false); }
int cuda_max_memory_allocated(lua_State* L) { return cuda_memory(L, "torch.cuda.max_memory_allocated", true); }

int cuda_reset_peak_memory_stats(lua_State* L) {
  const c10::DeviceIndex device = check_cuda_device(L, "torch.cuda.reset_peak_memory_stats");
  return protect(L, [&] {
#ifdef KINEMA_WITH_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
    (void)device;
#endif
    return 0;
  });
}

int open_amp(lua_State* L) {
  lua_newtable(L);
  static const luaL_Reg functions[] = {{"autocast", autocast},
                                       {"is_autocast_enabled", is_autocast_enabled},
                                       {"get_rng_state", get_rng_state},
                                       {"set_rng_state", set_rng_state},
                                       {"cuda_synchronize", cuda_synchronize},
                                       {"cuda_memory_allocated", cuda_memory_allocated},
                                       {"cuda_max_memory_allocated", cuda_max_memory_allocated},
                                       {"cuda_reset_peak_memory_stats", cuda_reset_peak_memory_stats},
                                       {nullptr, nullptr}};
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._amp", open_amp);

}  // namespace kinema::lua
