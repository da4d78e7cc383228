// kinema._report: what run reports need from C++: TensorBoard scalar event
// records (core/tensorboard_events.h) and PNG encoding of frames (OpenCV).

#include <utility>
#include <vector>

#include "core/runtime.h"
#include "core/data/png.h"
#include "core/tensorboard_events.h"

namespace kinema::lua {

namespace {

// tensorboard_scalars(path, step, {tag = number, ...} [, wall_time]): appends one event.
int tensorboard_scalars(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  const auto step = static_cast<int64_t>(luaL_checknumber(L, 2));
  luaL_checktype(L, 3, LUA_TTABLE);
  const double wall_time = luaL_optnumber(L, 4, -1.0);
  std::vector<std::pair<std::string, double>> scalars;
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER) {
      scalars.emplace_back(lua_tostring(L, -2), lua_tonumber(L, -1));
    }
    lua_pop(L, 1);
  }
  return protect(L, [&] {
    tensorboard::append_scalars(path, step, wall_time, scalars);
    return 0;
  });
}

// crc32c(string) -> number (for tests of the record framing).
int crc32c(lua_State* L) {
  size_t n = 0;
  const char* data = luaL_checklstring(L, 1, &n);
  lua_pushnumber(L, tensorboard::crc32c(std::string(data, n)));
  return 1;
}

// encode_png(image) -> string: image uint8 [H, W, 3] RGB (or [H, W] grey).
int encode_png(lua_State* L) {
  const at::Tensor image = check_tensor(L, 1, "encode_png");
  std::string out;
  int status = protect(L, [&] {
    out = data::encode_png(image);
    return 0;
  });
  if (status != 0) return status;
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int luaopen_kinema_report(lua_State* L) {
  const luaL_Reg functions[] = {
      {"tensorboard_scalars", tensorboard_scalars},
      {"crc32c", crc32c},
      {"encode_png", encode_png},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._report", luaopen_kinema_report);

}  // namespace kinema::lua
