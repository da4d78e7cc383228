// The native torch.* functions (tensor from Lua tables, dtypes and devices,
// RNG, threads, printing, operator listings, torch.ops.NS.NAME and the
// torch.NAME -> aten::NAME fallback), installed into the torch table by
// wrap_tensor.cpp's kinema._torch module.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cctype>
#include <cmath>

#include "core/dispatch.h"
#include "core/runtime.h"
#include "core/tensor_format.h"
#include "core/wrap_torch.h"

namespace kinema::lua {

namespace {

// ---- torch.* functions ------------------------------------------------------------------

// Shape and flat values of a (nested) Lua table of numbers/booleans.
struct TableData {
  std::vector<int64_t> shape;
  std::vector<double> values;
  bool all_bool = true, all_integral = true;
};

void read_table(lua_State* L, int idx, size_t depth, TableData& d) {
  if (lua_type(L, idx) == LUA_TTABLE) {
    // Tensors have at most 64 dimensions; deeper means a table containing itself.
    TORCH_CHECK(depth < 64, "torch.tensor: tables nested deeper than 64 levels (a table that contains itself?)");
    luaL_checkstack(L, 2, "torch.tensor: nested table");
    int n = static_cast<int>(lua_objlen(L, idx));
    if (depth == d.shape.size()) {
      d.shape.push_back(n);
    } else {
      TORCH_CHECK(depth < d.shape.size() && d.shape[depth] == n,
                  "torch.tensor: ragged nested table (dimension ", depth, " has lengths ",
                  depth < d.shape.size() ? d.shape[depth] : -1, " and ", n, ")");
    }
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, idx, i);
      read_table(L, lua_gettop(L), depth + 1, d);
      lua_pop(L, 1);
    }
    return;
  }
  TORCH_CHECK(depth == d.shape.size(), "torch.tensor: ragged nested table (a number where a table was expected)");
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    d.values.push_back(lua_toboolean(L, idx) ? 1.0 : 0.0);
    d.all_integral = false;
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    d.values.push_back(v);
    d.all_bool = false;
    if (v != std::floor(v) || !std::isfinite(v)) d.all_integral = false;
  } else {
    TORCH_CHECK(false, "torch.tensor: expected numbers or booleans, got a ", luaL_typename(L, idx));
  }
}

// torch.tensor's options: dtype, device and requires_grad (out), nothing else.
at::TensorOptions read_options(lua_State* L, int idx, at::ScalarType fallback, bool* requires_grad) {
  Options opt(L, idx, "torch.tensor");
  at::TensorOptions o = at::TensorOptions().dtype(fallback);
  if (opt.push("dtype") != LUA_TNIL) o = o.dtype(check_dtype(L, lua_gettop(L)));
  lua_pop(L, 1);
  if (opt.push("device") != LUA_TNIL) o = o.device(check_device(L, lua_gettop(L)));
  lua_pop(L, 1);
  *requires_grad = opt.boolean("requires_grad", false);
  opt.finish();
  return o;
}

// torch.tensor(data, {dtype=, device=, requires_grad=}): a copy of Lua data.
int t_tensor(lua_State* L) {
  if (at::Tensor* src = test_tensor(L, 1)) {
    at::Tensor copy = src->detach().clone();
    return protect(L, [&] {
      bool requires_grad = false;
      at::TensorOptions o = read_options(L, 2, copy.scalar_type(), &requires_grad);
      at::Tensor t = copy.to(o.device(), o.dtype().toScalarType());
      if (requires_grad) t.requires_grad_(true);
      push_tensor(L, t);
      return 1;
    });
  }
  return protect(L, [&] {
    TableData d;
    if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TNUMBER && lua_type(L, 1) != LUA_TBOOLEAN)
      TORCH_CHECK(false, "torch.tensor: expected a number, boolean, table or Tensor, got ", luaL_typename(L, 1));
    read_table(L, 1, 0, d);
    // Lua has one number type, so numbers become float32 (PyTorch's default
    // floating dtype) unless a dtype is given; booleans become bool.
    at::ScalarType inferred = (!d.values.empty() && d.all_bool) ? at::kBool : at::kFloat;
    bool requires_grad = false;
    at::TensorOptions o = read_options(L, 2, inferred, &requires_grad);
    at::Tensor t = at::from_blob(d.values.data(), {static_cast<int64_t>(d.values.size())}, at::kDouble)
                       .reshape(d.shape)
                       .to(o.dtype().toScalarType())
                       .clone();
    if (o.device().type() != at::kCPU) t = t.to(o.device());
    if (requires_grad) t.requires_grad_(true);
    push_tensor(L, t);
    return 1;
  });
}

int t_is_tensor(lua_State* L) {
  lua_pushboolean(L, is_tensor(L, 1));
  return 1;
}

int t_device(lua_State* L) {
  push_device(L, check_device(L, 1));
  return 1;
}

int t_dtype(lua_State* L) {
  push_dtype(L, check_dtype(L, 1));
  return 1;
}

int t_free(lua_State* L) {
  for (int i = 1; i <= lua_gettop(L); ++i) free_tensor(L, i);
  return 0;
}

int t_manual_seed(lua_State* L) {
  auto seed = static_cast<uint64_t>(luaL_checknumber(L, 1));
  return protect(L, [&] {
    torch::manual_seed(seed);
    return 0;
  });
}

int t_initial_seed(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(at::detail::getDefaultCPUGenerator().current_seed()));
  return 1;
}

int t_get_rng_state(lua_State* L) {
  return protect(L, [&] {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    push_tensor(L, gen.get_state());
    return 1;
  });
}

int t_set_rng_state(lua_State* L) {
  at::Tensor& state = check_tensor(L, 1);
  return protect(L, [&] {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return 0;
  });
}

int t_set_num_threads(lua_State* L) {
  at::set_num_threads(static_cast<int>(luaL_checkinteger(L, 1)));
  return 0;
}
int t_get_num_threads(lua_State* L) {
  lua_pushnumber(L, at::get_num_threads());
  return 1;
}

int t_format(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    FormatOptions o;
    Options opt(L, 2, "torch.format");
    o.precision = static_cast<int>(opt.integer("precision", o.precision));
    o.threshold = opt.integer("threshold", o.threshold);
    o.edge_items = opt.integer("edgeitems", o.edge_items);
    opt.finish();
    std::string s = format_tensor(t, o);
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  });
}

int t_live_bytes(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(live_tensor_bytes()));
  return 1;
}

int t_cuda_is_available(lua_State* L) {
  lua_pushboolean(L, torch::cuda::is_available());
  return 1;
}
int t_cuda_device_count(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(torch::cuda::device_count()));
  return 1;
}

int t_op_signatures(lua_State* L) {
  std::string name = luaL_checkstring(L, 1);
  if (name.find("::") == std::string::npos) name = "aten::" + name;
  const OverloadSet* ops = find_operator(name);
  if (!ops) return 0;
  std::string s = operator_signatures(*ops);
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

int t_op_names(lua_State* L) {
  std::vector<std::string> names = operator_names(luaL_checkstring(L, 1));
  lua_createtable(L, static_cast<int>(names.size()), 0);
  for (size_t i = 0; i < names.size(); ++i) {
    lua_pushstring(L, names[i].c_str());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

// torch.ops.NS.NAME resolves "NS::NAME" through the dispatcher.
int ops_namespace_index(lua_State* L) {
  lua_getfield(L, 1, "__namespace");
  std::string ns = lua_tostring(L, -1);
  lua_pop(L, 1);
  const char* name = luaL_checkstring(L, 2);
  const OverloadSet* ops = find_operator(ns + "::" + name);
  if (!ops) {
    refresh_operators();  // a library may have registered operators since
    ops = find_operator(ns + "::" + name);
  }
  if (!ops) return luaL_error(L, "no operator %s::%s is registered", ns.c_str(), name);
  push_operator_function(L, *ops);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

int ops_index(lua_State* L) {
  const char* ns = luaL_checkstring(L, 2);
  lua_newtable(L);
  lua_pushstring(L, ns);
  lua_setfield(L, -2, "__namespace");
  lua_newtable(L);
  lua_pushcfunction(L, ops_namespace_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// torch.NAME falls back to aten::NAME.
int torch_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char* name = lua_tostring(L, 2);
  const OverloadSet* ops = find_operator(std::string("aten::") + name);
  if (!ops) return 0;
  push_operator_function(L, *ops);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

int dtype_tostring(lua_State* L) {
  at::ScalarType t = check_dtype(L, 1);
  lua_pushstring(L, dtype_name(t).c_str());
  return 1;
}

int dtype_index(lua_State* L) {
  at::ScalarType t = check_dtype(L, 1);
  std::string key = luaL_checkstring(L, 2);
  if (key == "is_floating_point") {
    lua_pushboolean(L, at::isFloatingType(t));
  } else if (key == "itemsize") {
    lua_pushnumber(L, static_cast<lua_Number>(c10::elementSize(t)));
  } else if (key == "name") {
    lua_pushstring(L, dtype_name(t).substr(6).c_str());
  } else {
    lua_pushnil(L);
  }
  return 1;
}

int device_tostring(lua_State* L) {
  at::Device d = check_device(L, 1);
  lua_pushstring(L, d.str().c_str());
  return 1;
}
int device_eq(lua_State* L) {
  lua_pushboolean(L, check_device(L, 1) == check_device(L, 2));
  return 1;
}
int device_index(lua_State* L) {
  at::Device d = check_device(L, 1);
  std::string key = luaL_checkstring(L, 2);
  if (key == "type") {
    lua_pushstring(L, c10::DeviceTypeName(d.type(), true).c_str());
  } else if (key == "index") {
    if (d.has_index()) {
      lua_pushnumber(L, d.index());
    } else {
      lua_pushnil(L);
    }
  } else {
    lua_pushnil(L);
  }
  return 1;
}

int size_tostring(lua_State* L) {
  std::string s = "torch.Size([";
  int n = static_cast<int>(lua_objlen(L, 1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    s += (i > 1 ? ", " : "") + std::to_string(static_cast<long long>(lua_tonumber(L, -1)));
    lua_pop(L, 1);
  }
  lua_pushstring(L, (s + "])").c_str());
  return 1;
}

}  // namespace

void fill_torch_table(lua_State* L, int torch) {
  static const luaL_Reg functions[] = {
      {"tensor", t_tensor},
      {"is_tensor", t_is_tensor},
      {"device", t_device},
      {"dtype", t_dtype},
      {"free", t_free},
      {"manual_seed", t_manual_seed},
      {"initial_seed", t_initial_seed},
      {"get_rng_state", t_get_rng_state},
      {"set_rng_state", t_set_rng_state},
      {"set_num_threads", t_set_num_threads},
      {"get_num_threads", t_get_num_threads},
      {"format", t_format},
      {"live_tensor_bytes", t_live_bytes},
      {"op_signatures", t_op_signatures},
      {"op_names", t_op_names},
      {nullptr, nullptr}};
  luaL_register(L, nullptr, functions);

  lua_newtable(L);
  lua_pushcfunction(L, t_cuda_is_available);
  lua_setfield(L, -2, "is_available");
  lua_pushcfunction(L, t_cuda_device_count);
  lua_setfield(L, -2, "device_count");
  lua_setfield(L, torch, "cuda");

  static const std::pair<const char*, at::ScalarType> dtypes[] = {
      {"float32", at::kFloat}, {"float", at::kFloat},    {"float64", at::kDouble},
      {"double", at::kDouble}, {"float16", at::kHalf},   {"half", at::kHalf},
      {"bfloat16", at::kBFloat16}, {"int64", at::kLong}, {"long", at::kLong},
      {"int32", at::kInt},     {"int", at::kInt},        {"int16", at::kShort},
      {"int8", at::kChar},     {"uint8", at::kByte},     {"bool", at::kBool},
      {"complex64", at::kComplexFloat}, {"complex128", at::kComplexDouble}};
  for (const auto& kv : dtypes) {
    push_dtype(L, kv.second);
    lua_setfield(L, torch, kv.first);
  }
  lua_pushnumber(L, static_cast<lua_Number>(static_cast<int>(at::kStrided)));
  lua_setfield(L, torch, "strided");
  lua_pushnumber(L, static_cast<lua_Number>(static_cast<int>(at::MemoryFormat::Contiguous)));
  lua_setfield(L, torch, "contiguous_format");
  lua_pushnumber(L, static_cast<lua_Number>(static_cast<int>(at::MemoryFormat::Preserve)));
  lua_setfield(L, torch, "preserve_format");
  lua_pushnumber(L, static_cast<lua_Number>(static_cast<int>(at::MemoryFormat::ChannelsLast)));
  lua_setfield(L, torch, "channels_last");

  push_dtype_metatable(L);
  lua_pushcfunction(L, dtype_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, dtype_index);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  push_device_metatable(L);
  lua_pushcfunction(L, device_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, device_eq);
  lua_setfield(L, -2, "__eq");
  lua_pushcfunction(L, device_index);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  // torch.Size: a Lua array of the sizes (push_size) with this metatable; it
  // holds no C++ value, so no __gc.
  static const luaL_Reg size_methods[] = {{nullptr, nullptr}};
  static const luaL_Reg size_metamethods[] = {{"__tostring", size_tostring}, {nullptr, nullptr}};
  register_type(L, "torch.Size", size_methods, size_metamethods, nullptr);

  // torch.ops.NS.NAME
  lua_newtable(L);
  lua_newtable(L);
  lua_pushcfunction(L, ops_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfield(L, torch, "ops");

  // Unknown torch.NAME -> aten::NAME.
  lua_newtable(L);
  lua_pushcfunction(L, torch_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, torch);
}

}  // namespace kinema::lua
