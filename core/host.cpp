#include "core/host.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/runtime.h"
#include "host_paths.h"

extern "C" {
#include <luajit.h>
}

namespace kinema {

int run_repl(lua_State* L);  // core/repl.cpp

namespace {

std::string find_lua_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / KINEMA_LUA_INSTALL_DIR;
    if (fs::exists(installed / "kinema" / "init.lua", ec)) return installed.string();
  }
  return KINEMA_LUA_SOURCE_DIR;
}

}  // namespace

Host::Host() : L_(luaL_newstate()), lua_dir_(find_lua_dir()) {
  TORCH_CHECK(L_ != nullptr, "cannot create a Lua state");
  // Lua frees tensors at collection time, in bursts, not one by one as Python's
  // reference counting does. Keep freed heap pages mapped so that the next
  // burst of allocations reuses them instead of faulting in fresh pages.
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  lua::set_main_state(L_);
  luaL_openlibs(L_);

  lua_getglobal(L_, "package");
  std::string path = lua_dir_ + "/?.lua;" + lua_dir_ + "/?/init.lua;";
  lua_getfield(L_, -1, "path");
  path += lua_tostring(L_, -1);
  lua_pop(L_, 1);
  lua_pushstring(L_, path.c_str());
  lua_setfield(L_, -2, "path");

  lua_getfield(L_, -1, "preload");
  for (const lua::NativeModule& m : lua::native_modules()) {
    lua_pushcfunction(L_, m.open);
    lua_setfield(L_, -2, m.name);
  }
  lua_pop(L_, 2);

  lua_pushstring(L_, version_string().c_str());
  lua_setglobal(L_, "_KINEMA_VERSION");

  // torch is a global, as in Torch7.
  lua_getglobal(L_, "require");
  lua_pushstring(L_, "torch");
  if (lua::pcall_traceback(L_, 1, 1) != 0) {
    std::string msg = lua_tostring(L_, -1);
    lua_close(L_);
    lua::set_main_state(nullptr);
    TORCH_CHECK(false, "kinema: cannot load the Lua library from ", lua_dir_, ":\n", msg);
  }
  lua_setglobal(L_, "torch");
}

Host::~Host() {
  lua_close(L_);
  lua::set_main_state(nullptr);
}

void Host::set_args(const std::string& script, const std::vector<std::string>& args) {
  lua_createtable(L_, static_cast<int>(args.size()), 1);
  lua_pushstring(L_, script.c_str());
  lua_rawseti(L_, -2, 0);
  for (size_t i = 0; i < args.size(); ++i) {
    lua_pushstring(L_, args[i].c_str());
    lua_rawseti(L_, -2, static_cast<int>(i + 1));
  }
  lua_setglobal(L_, "arg");
}

int Host::report(int status) {
  if (status == 0) return 0;
  if (lua::is_usage_error(L_, -1)) {  // one line, no traceback; status 2 unless given
    lua_getfield(L_, -1, "usage_error");
    std::fprintf(stderr, "%s\n", lua_tostring(L_, -1));
    std::fflush(stderr);
    lua_getfield(L_, -2, "status");
    const int exit_status = lua_isnumber(L_, -1) ? static_cast<int>(lua_tointeger(L_, -1)) : 2;
    lua_pop(L_, 3);
    return exit_status;
  }
  const char* msg = lua_tostring(L_, -1);
  std::fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
  std::fflush(stderr);
  lua_pop(L_, 1);
  return 1;
}

int Host::run_file(const std::string& path, const std::vector<std::string>& args) {
  set_args(path, args);
  if (luaL_loadfile(L_, path.c_str()) != 0) return report(1);
  for (const auto& a : args) lua_pushstring(L_, a.c_str());
  int status = lua::pcall_traceback(L_, static_cast<int>(args.size()), 0);
  return report(status);
}

int Host::run_chunk(const std::string& code, const std::vector<std::string>& args) {
  set_args("-e", args);
  if (luaL_loadbuffer(L_, code.data(), code.size(), "=(command line)") != 0) return report(1);
  return report(lua::pcall_traceback(L_, 0, 0));
}

int Host::run_tests(const std::vector<std::string>& paths) {
  set_args("test", paths);
  lua_getglobal(L_, "require");
  lua_pushstring(L_, "kinema.test");
  if (report(lua::pcall_traceback(L_, 1, 1))) return 1;
  lua_getfield(L_, -1, "main");
  lua_createtable(L_, static_cast<int>(paths.size()), 0);
  for (size_t i = 0; i < paths.size(); ++i) {
    lua_pushstring(L_, paths[i].c_str());
    lua_rawseti(L_, -2, static_cast<int>(i + 1));
  }
  if (report(lua::pcall_traceback(L_, 1, 1))) return 1;
  int failures = static_cast<int>(lua_tonumber(L_, -1));
  lua_pop(L_, 2);
  return failures == 0 ? 0 : 1;
}

int Host::run_repl() { return kinema::run_repl(L_); }

namespace {

// What the CUDA half was built with: "CUDA 13.2, cuDNN 9.26.0" (from
// LibTorch's CUDA hooks, which answer without a GPU), or "CUDA none".
std::string cuda_versions() {
#ifdef KINEMA_WITH_CUDA
  const at::CUDAHooksInterface& hooks = at::detail::getCUDAHooks();
  const long cuda = hooks.versionCUDART();  // 1000 * major + 10 * minor
  std::string s = "CUDA " + std::to_string(cuda / 1000) + "." + std::to_string(cuda % 1000 / 10) + ", cuDNN ";
  if (!hooks.compiledWithCuDNN()) return s + "none";
  // cuDNN 9 encodes 10000 * major + 100 * minor + patch, cuDNN 8 1000 * major + 100 * minor + patch.
  const long cudnn = hooks.versionCuDNN();
  const long major_unit = cudnn >= 90000 ? 10000 : 1000;
  return s + std::to_string(cudnn / major_unit) + "." + std::to_string(cudnn % major_unit / 100) + "." +
         std::to_string(cudnn % 100);
#else
  return "CUDA none";
#endif
}

}  // namespace

std::string version_string() {
  return "kinema " KINEMA_VERSION " (LibTorch " TORCH_VERSION ", " + cuda_versions() + ", " LUAJIT_VERSION ")";
}

}  // namespace kinema
