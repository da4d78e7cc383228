// kinema._dist: the c10d collectives of core/dist.h for Lua. lua/kinema/dist.lua
// builds the user API on it (parameter broadcast, bucketed gradient averaging,
// the differentiable gather).
//   init{backend=, rank=, world_size=, local_rank=, master_addr=, master_port=, timeout_s=}
//     (absent options come from torchrun's environment variables)
//   is_initialized(), rank(), world_size(), local_rank(), backend(), nccl_available()
//   barrier(), broadcast(t, src), all_reduce(t, op = 'sum'), all_gather(t) -> [world*B, ...]
//   destroy(), executable() -> path of the running kinema binary (for launching ranks)
#include <filesystem>
#include <limits>
#include <string>

#include "core/dist.h"
#include "core/runtime.h"

namespace kinema::lua {
namespace {

// An optional non-negative integer option; -1 when absent.
int int_option(Options& opt, const char* key) {
  if (!opt.has(key)) return -1;
  const int64_t v = opt.integer(key, 0);
  if (v < 0 || v > std::numeric_limits<int>::max()) opt.fail(key, "must be a non-negative integer");
  return static_cast<int>(v);
}

int l_init(lua_State* L) {
  dist::InitOptions o;
  if (!lua_isnoneornil(L, 1) && !lua_istable(L, 1)) raise(L, "kinema.dist.init: argument 'opts' must be a table");
  Options opt(L, 1, "kinema.dist.init");
  o.backend = opt.string("backend", "");
  o.rank = int_option(opt, "rank");
  o.world_size = int_option(opt, "world_size");
  o.local_rank = int_option(opt, "local_rank");
  o.master_addr = opt.string("master_addr", "");
  o.master_port = int_option(opt, "master_port");
  o.timeout_s = opt.number("timeout_s", o.timeout_s);
  opt.finish();
  return protect(L, [&] {
    dist::init(o);
    return 0;
  });
}

int l_is_initialized(lua_State* L) {
  lua_pushboolean(L, dist::is_initialized());
  return 1;
}

int l_rank(lua_State* L) {
  lua_pushinteger(L, dist::rank());
  return 1;
}

int l_world_size(lua_State* L) {
  lua_pushinteger(L, dist::world_size());
  return 1;
}

int l_local_rank(lua_State* L) {
  lua_pushinteger(L, dist::local_rank());
  return 1;
}

int l_backend(lua_State* L) {
  const std::string b = dist::backend();
  if (b.empty()) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, b.c_str());
  }
  return 1;
}

int l_nccl_available(lua_State* L) {
  lua_pushboolean(L, dist::nccl_available());
  return 1;
}

int l_barrier(lua_State* L) {
  return protect(L, [&] {
    dist::barrier();
    return 0;
  });
}

int l_broadcast(lua_State* L) {
  const at::Tensor t = check_tensor(L, 1, "kinema.dist.broadcast");
  if (lua_type(L, 2) != LUA_TNUMBER) raise(L, "kinema.dist.broadcast: argument 'src' must be a rank number");
  const int src = static_cast<int>(lua_tointeger(L, 2));
  return protect(L, [&] {
    dist::broadcast(t, src);
    return 0;
  });
}

int l_all_reduce(lua_State* L) {
  const at::Tensor t = check_tensor(L, 1, "kinema.dist.all_reduce");
  if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
    raise(L, "kinema.dist.all_reduce: argument 'op' must be 'sum', 'avg', 'max' or 'min'");
  const std::string op = lua_isnoneornil(L, 2) ? "sum" : lua_tostring(L, 2);
  return protect(L, [&] {
    dist::all_reduce(t, dist::parse_reduce_op(op, "kinema.dist.all_reduce"));
    return 0;
  });
}

int l_all_gather(lua_State* L) {
  const at::Tensor t = check_tensor(L, 1, "kinema.dist.all_gather");
  return protect(L, [&] {
    push_tensor(L, dist::all_gather(t));
    return 1;
  });
}

int l_destroy(lua_State* L) {
  return protect(L, [&] {
    dist::destroy();
    return 0;
  });
}

int l_executable(lua_State* L) {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) raise(L, "kinema.executable: cannot read /proc/self/exe: " + ec.message());
  lua_pushstring(L, exe.c_str());
  return 1;
}

int open_dist(lua_State* L) {
  const luaL_Reg functions[] = {
      {"init", l_init},
      {"is_initialized", l_is_initialized},
      {"rank", l_rank},
      {"world_size", l_world_size},
      {"local_rank", l_local_rank},
      {"backend", l_backend},
      {"nccl_available", l_nccl_available},
      {"barrier", l_barrier},
      {"broadcast", l_broadcast},
      {"all_reduce", l_all_reduce},
      {"all_gather", l_all_gather},
      {"destroy", l_destroy},
      {"executable", l_executable},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace
}  // namespace kinema::lua

KINEMA_LUA_MODULE("kinema._dist", kinema::lua::open_dist);
