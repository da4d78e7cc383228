// C++ blocks (models/) as Lua values: kinema._models.new(name, config) builds a
// registered block; the block userdata forwards, lists its parameters and
// buffers, switches train/eval and moves between devices and dtypes.
#include <torch/torch.h>

#include "core/runtime.h"
#include "models/block.h"

namespace kinema::lua {

namespace {

constexpr const char* kBlockMeta = "kinema.Block";

struct BlockBox {
  std::shared_ptr<models::Block> block;
  std::string name;
};

BlockBox& check_block(lua_State* L, int idx) { return check_object<BlockBox>(L, idx, kBlockMeta); }

models::Config config_from(lua_State* L, int idx) {
  std::unordered_map<std::string, c10::IValue> values;
  if (lua_isnoneornil(L, idx)) return models::Config(values);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      raise(L, "block config: keys must be strings");
    }
    values[lua_tostring(L, -2)] = to_ivalue(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  return models::Config(std::move(values));
}

int block_new(lua_State* L) {
  std::string name = luaL_checkstring(L, 1);
  models::Config config = config_from(L, 2);
  return protect(L, [&] {
    push_object(L, kBlockMeta, BlockBox{models::make_block(name, config), name});
    return 1;
  });
}

int block_forward(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  std::vector<c10::IValue> inputs;
  for (int i = 2; i <= lua_gettop(L); ++i) inputs.push_back(to_ivalue(L, i));
  return protect(L, [&] { return push_ivalue(L, box.block->forward(std::move(inputs))); });
}

// Pushes two arrays, names and tensors, in registration order.
void push_named(lua_State* L, const torch::OrderedDict<std::string, at::Tensor>& items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  lua_createtable(L, static_cast<int>(items.size()), 0);
  int i = 0;
  for (const auto& item : items) {
    ++i;
    lua_pushstring(L, item.key().c_str());
    lua_rawseti(L, -3, i);
    push_tensor(L, item.value());
    lua_rawseti(L, -2, i);
  }
}

int block_named_parameters(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  push_named(L, box.block->named_parameters(true));
  return 2;
}

int block_named_buffers(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  push_named(L, box.block->named_buffers(true));
  return 2;
}

int block_train(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  box.block->train(lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2));
  return 0;
}

int block_is_training(lua_State* L) {
  lua_pushboolean(L, check_block(L, 1).block->is_training());
  return 1;
}

// block:to(device_or_dtype [, dtype])
int block_to(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  at::Device device(at::kCPU);
  at::ScalarType dtype;
  bool has_device = test_device(L, 2, &device);
  bool has_dtype = test_dtype(L, has_device ? 3 : 2, &dtype);
  if (!has_device && !has_dtype) raise(L, "block:to expects a device and/or a dtype");
  return protect(L, [&] {
    if (has_device && has_dtype) {
      box.block->to(device, dtype);
    } else if (has_device) {
      box.block->to(device);
    } else {
      box.block->to(dtype);
    }
    return 0;
  });
}

int block_name(lua_State* L) {
  lua_pushstring(L, check_block(L, 1).name.c_str());
  return 1;
}

int block_tostring(lua_State* L) {
  BlockBox& box = check_block(L, 1);
  int64_t count = 0;
  for (const auto& p : box.block->parameters()) count += p.numel();
  lua_pushfstring(L, "kinema.models.%s (%d parameters)", box.name.c_str(), static_cast<int>(count));
  return 1;
}

int block_names(lua_State* L) {
  lua_newtable(L);
  int i = 0;
  for (const auto& kv : models::registered_blocks()) {
    lua_pushstring(L, kv.first.c_str());
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

int block_doc(lua_State* L) {
  std::string name = luaL_checkstring(L, 1);
  const auto& blocks = models::registered_blocks();
  auto it = blocks.find(name);
  if (it == blocks.end()) return 0;
  lua_pushstring(L, it->second.doc.c_str());
  return 1;
}

int open_models(lua_State* L) {
  static const luaL_Reg methods[] = {{"forward", block_forward},
                                     {"named_parameters", block_named_parameters},
                                     {"named_buffers", block_named_buffers},
                                     {"train", block_train},
                                     {"is_training", block_is_training},
                                     {"to", block_to},
                                     {"name", block_name},
                                     {nullptr, nullptr}};
  static const luaL_Reg metamethods[] = {{"__tostring", block_tostring}, {"__call", block_forward}, {nullptr, nullptr}};
  register_type<BlockBox>(L, kBlockMeta, methods, metamethods);

  lua_newtable(L);
  lua_pushcfunction(L, block_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, block_names);
  lua_setfield(L, -2, "names");
  lua_pushcfunction(L, block_doc);
  lua_setfield(L, -2, "doc");
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._models", open_models);

}  // namespace kinema::lua
