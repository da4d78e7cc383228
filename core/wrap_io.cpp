// File formats for Lua (kinema._io; lua/torch/init.lua copies them into torch):
//   save_safetensors(path, {name=tensor...}[, {key="value"...}])
//   load_safetensors(path) -> {name=tensor}, {key=value}, {names in file order}
//   load_pt(path) / load(path) -> {name=tensor}, {names in file order}   (torch.save files,
//                                  TorchScript archives; nested dicts flattened with '.')
//   load_torchscript(path[, {run_code=bool}]) -> {name=tensor}, {names} (parameters, buffers;
//                                  read without running the archive's code unless run_code)
//   load_npz(path) -> {name=tensor};  save_npz(path, {name=tensor}[, {compress=bool}])
//   load_npy(path) -> tensor;         save_npy(path, tensor)
// The work is plain C++ in core/io; this file only converts between Lua and it.
#include "core/io/npz.h"
#include "core/io/safetensors.h"
#include "core/io/torch_pickle.h"
#include "core/runtime.h"

#include <map>
#include <string>

namespace kinema::lua {
namespace {

// {name=tensor} at idx -> map. Raises a Lua error (outside any C++ try) naming the entry.
std::map<std::string, at::Tensor> check_tensor_table(lua_State* L, int idx, const char* fn) {
  luaL_checktype(L, idx, LUA_TTABLE);
  std::map<std::string, at::Tensor> out;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      raise(L, std::string(fn) + ": tensor table keys must be strings");
    }
    const std::string name = lua_tostring(L, -2);
    at::Tensor* t = test_tensor(L, -1);
    if (!t) {
      const std::string got = luaL_typename(L, -1);
      lua_pop(L, 2);
      raise(L, std::string(fn) + ": entry '" + name + "' is a " + got + ", not a Tensor");
    }
    out.emplace(name, *t);
    lua_pop(L, 1);
  }
  return out;
}

// {key=string|number} at idx (optional) -> map.
std::map<std::string, std::string> check_string_table(lua_State* L, int idx, const char* fn) {
  std::map<std::string, std::string> out;
  if (lua_isnoneornil(L, idx)) return out;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const int value_type = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || (value_type != LUA_TSTRING && value_type != LUA_TNUMBER)) {
      lua_pop(L, 2);
      raise(L, std::string(fn) + ": metadata must map strings to strings");
    }
    // Copy the value before converting so a number key-value never changes in place.
    lua_pushvalue(L, -1);
    out[lua_tostring(L, -3)] = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  return out;
}

void push_tensor_map(lua_State* L, const std::map<std::string, at::Tensor>& tensors) {
  lua_createtable(L, 0, static_cast<int>(tensors.size()));
  for (const auto& [name, t] : tensors) {
    push_tensor(L, t);
    lua_setfield(L, -2, name.c_str());
  }
}

// Pushes {name=tensor} and {names in order}.
int push_named(lua_State* L, const std::vector<std::pair<std::string, at::Tensor>>& named) {
  lua_createtable(L, 0, static_cast<int>(named.size()));
  lua_createtable(L, static_cast<int>(named.size()), 0);
  int i = 0;
  for (const auto& [name, t] : named) {
    lua_pushlstring(L, name.data(), name.size());
    lua_rawseti(L, -2, ++i);
    push_tensor(L, t);
    lua_setfield(L, -3, name.c_str());
  }
  return 2;
}

int save_safetensors(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  const auto tensors = check_tensor_table(L, 2, "save_safetensors");
  const auto metadata = check_string_table(L, 3, "save_safetensors");
  return protect(L, [&] {
    io::save_safetensors(path, tensors, metadata);
    return 0;
  });
}

int load_safetensors(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  return protect(L, [&] {
    const io::SafetensorsContent content = io::load_safetensors(path);
    push_named(L, content.tensors);  // tensors, names
    lua_createtable(L, 0, static_cast<int>(content.metadata.size()));
    for (const auto& [k, v] : content.metadata) {
      lua_pushlstring(L, v.data(), v.size());
      lua_setfield(L, -2, k.c_str());
    }
    lua_insert(L, -2);  // tensors, metadata, names
    return 3;
  });
}

int load_pt(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  return protect(L, [&] { return push_named(L, io::load_pt(path)); });
}

int load_torchscript(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  Options opt(L, 2, "load_torchscript");
  const bool run_code = opt.boolean("run_code", false);
  opt.finish();
  return protect(L, [&] { return push_named(L, io::load_torchscript(path, run_code)); });
}

int load_npz(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  return protect(L, [&] {
    push_tensor_map(L, io::load_npz(path));
    return 1;
  });
}

int save_npz(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  const auto tensors = check_tensor_table(L, 2, "save_npz");
  Options opt(L, 3, "save_npz");
  const bool compress = opt.boolean("compress", false);
  opt.finish();
  return protect(L, [&] {
    io::save_npz(path, tensors, compress);
    return 0;
  });
}

int load_npy(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  return protect(L, [&] {
    push_tensor(L, io::load_npy(path));
    return 1;
  });
}

int save_npy(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  const at::Tensor tensor = check_tensor(L, 2, "save_npy");
  return protect(L, [&] {
    io::save_npy(path, tensor);
    return 0;
  });
}

int luaopen_kinema_io(lua_State* L) {
  const luaL_Reg functions[] = {
      {"save_safetensors", save_safetensors},
      {"load_safetensors", load_safetensors},
      {"load_pt", load_pt},
      {"load", load_pt},
      {"load_torchscript", load_torchscript},
      {"load_npz", load_npz},
      {"save_npz", save_npz},
      {"load_npy", load_npy},
      {"save_npy", save_npy},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._io", luaopen_kinema_io);

}  // namespace kinema::lua
