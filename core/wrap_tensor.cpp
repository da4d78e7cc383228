// Lua face of tensors: the Tensor metatable (methods through the dispatcher,
// properties, indexing, arithmetic, printing) and the kinema._torch module;
// the torch.* functions themselves are in wrap_torch.cpp.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cctype>
#include <cmath>

#include "core/dispatch.h"
#include "core/runtime.h"
#include "core/tensor_format.h"
#include "core/tensor_index.h"
#include "core/wrap_torch.h"

namespace kinema::lua {

namespace {

// Upvalue indices of the Tensor __index / __newindex closures.
constexpr int kMethods = 1;
constexpr int kGetters = 2;
constexpr int kSetters = 2;

bool is_identifier(const char* s) {
  if (!(std::isalpha(static_cast<unsigned char>(*s)) || *s == '_')) return false;
  for (++s; *s; ++s)
    if (!(std::isalnum(static_cast<unsigned char>(*s)) || *s == '_')) return false;
  return true;
}

// ---- index keys -------------------------------------------------------------------

// A number used as an index or slice bound: integral and in int64 range (t[1.7]
// would otherwise act as t[1], as a C cast truncates).
int64_t integral_index(lua_State* L, int idx, const char* what) {
  const double v = lua_tonumber(L, idx);
  TORCH_CHECK(is_integer(v), "bad index: ", what, " ",
              lua_tostring(L, idx), " is not an integer");
  return static_cast<int64_t>(v);
}

std::vector<at::indexing::TensorIndex> index_from_lua(lua_State* L, int key) {
  using namespace at::indexing;
  std::vector<TensorIndex> out;
  switch (lua_type(L, key)) {
    case LUA_TNUMBER:
      out.emplace_back(integral_index(L, key, "the number"));
      return out;
    case LUA_TSTRING:
      return parse_index_string(lua_tostring(L, key));
    case LUA_TUSERDATA:
      if (at::Tensor* t = test_tensor(L, key)) {
        out.emplace_back(*t);
        return out;
      }
      break;
    case LUA_TTABLE: {
      // {0, {1, 3}, '...', mask}: numbers index, {a, b[, step]} slices, {} = ':'.
      int n = static_cast<int>(lua_objlen(L, key));
      for (int i = 1; i <= n; ++i) {
        lua_rawgeti(L, key, i);
        int item = lua_gettop(L);
        if (lua_type(L, item) == LUA_TNUMBER) {
          out.emplace_back(integral_index(L, item, ("element " + std::to_string(i) + " of the index table,").c_str()));
        } else if (lua_type(L, item) == LUA_TSTRING) {
          auto parsed = parse_index_string(lua_tostring(L, item));
          out.insert(out.end(), parsed.begin(), parsed.end());
        } else if (at::Tensor* t = test_tensor(L, item)) {
          out.emplace_back(*t);
        } else if (lua_istable(L, item)) {
          c10::optional<int64_t> b[3];
          for (int j = 1; j <= 3; ++j) {
            lua_rawgeti(L, item, j);
            if (lua_isnumber(L, -1)) b[j - 1] = integral_index(L, -1, "a slice bound,");
            lua_pop(L, 1);
          }
          out.emplace_back(Slice(b[0], b[1], b[2]));
        } else {
          TORCH_CHECK(false, "bad index: element ", i, " of the index table is a ", luaL_typename(L, item));
        }
        lua_pop(L, 1);
      }
      return out;
    }
    default:
      break;
  }
  TORCH_CHECK(false, "bad index: a ", luaL_typename(L, key), " cannot index a Tensor");
}

// ---- Tensor metatable --------------------------------------------------------------

int tensor_index(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    // Methods first: this lookup sits on every `t:op(...)` call.
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(kMethods));
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(kGetters));
    if (!lua_isnil(L, -1)) {
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
      return 1;
    }
    lua_pop(L, 1);
    const char* name = lua_tostring(L, 2);
    if (is_identifier(name)) {
      if (const OverloadSet* ops = find_operator(std::string("aten::") + name)) {
        push_operator_function(L, *ops);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, lua_upvalueindex(kMethods));  // cache for the next call
        return 1;
      }
      return luaL_error(L, "Tensor has no method or property '%s'", name);
    }
  }
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    push_tensor(L, t.index(index_from_lua(L, 2)));
    return 1;
  });
}

int tensor_newindex(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING && is_identifier(lua_tostring(L, 2))) {
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(kSetters));
    if (lua_isnil(L, -1))
      return luaL_error(L, "cannot set '%s' on a Tensor (settable: requires_grad, grad, data)",
                        lua_tostring(L, 2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 0);
    return 0;
  }
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    auto index = index_from_lua(L, 2);
    if (at::Tensor* v = test_tensor(L, 3)) {
      t.index_put_(index, *v);
    } else if (lua_type(L, 3) == LUA_TNUMBER) {
      t.index_put_(index, at::Scalar(lua_tonumber(L, 3)));
    } else if (lua_type(L, 3) == LUA_TBOOLEAN) {
      t.index_put_(index, at::Scalar(static_cast<bool>(lua_toboolean(L, 3))));
    } else {
      TORCH_CHECK(false, "cannot assign a ", luaL_typename(L, 3), " into a Tensor");
    }
    return 0;
  });
}

int tensor_tostring(lua_State* L) {
  at::Tensor* t = test_tensor(L, 1);
  if (t && !t->defined()) {
    lua_pushstring(L, "tensor(<freed>)");
    return 1;
  }
  return protect(L, [&] {
    std::string s = format_tensor(*t);
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  });
}

// Operand of an arithmetic metamethod: a tensor or a number.
struct Operand {
  at::Tensor tensor;
  at::Scalar scalar;
  bool is_tensor = false;
};

Operand operand(lua_State* L, int idx) {
  Operand o;
  if (at::Tensor* t = test_tensor(L, idx)) {
    if (!t->defined()) raise(L, "tensor was freed");
    o.tensor = *t;
    o.is_tensor = true;
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    o.scalar = is_integer(v) ? at::Scalar(static_cast<int64_t>(v)) : at::Scalar(v);
  } else if (lua_type(L, idx) == LUA_TBOOLEAN) {
    o.scalar = at::Scalar(static_cast<bool>(lua_toboolean(L, idx)));
  } else {
    raise(L, std::string("arithmetic on a Tensor and a ") + luaL_typename(L, idx));
  }
  return o;
}

at::Tensor as_tensor(const Operand& o) {
  if (o.is_tensor) return o.tensor;
  at::Tensor t = at::scalar_to_tensor(o.scalar);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

// Arithmetic skips the autograd kernels when there is nothing to record (as
// call_operator does).
bool records_grad(const Operand& a, const Operand& b) {
  return at::GradMode::is_enabled() && ((a.is_tensor && a.tensor.requires_grad()) ||
                                        (b.is_tensor && b.tensor.requires_grad()));
}

template <typename F>
int binary(lua_State* L, F&& f) {
  Operand a = operand(L, 1), b = operand(L, 2);
  return protect(L, [&] {
    if (records_grad(a, b)) {
      push_tensor(L, f(a, b));
    } else {
      at::AutoDispatchBelowAutograd below_autograd;
      push_tensor(L, f(a, b));
    }
    return 1;
  });
}

int tensor_add(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::add(a.tensor, b.scalar);
    if (!a.is_tensor) return at::add(b.tensor, a.scalar);
    return at::add(a.tensor, b.tensor);
  });
}
int tensor_sub(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::sub(a.tensor, b.scalar);
    if (!a.is_tensor) return at::rsub(b.tensor, a.scalar);
    return at::sub(a.tensor, b.tensor);
  });
}
int tensor_mul(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::mul(a.tensor, b.scalar);
    if (!a.is_tensor) return at::mul(b.tensor, a.scalar);
    return at::mul(a.tensor, b.tensor);
  });
}
int tensor_div(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::div(a.tensor, b.scalar);
    return at::div(as_tensor(a), b.tensor);
  });
}
int tensor_mod(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::remainder(a.tensor, b.scalar);
    return at::remainder(as_tensor(a), b.tensor);
  });
}
int tensor_pow(lua_State* L) {
  return binary(L, [](const Operand& a, const Operand& b) {
    if (!b.is_tensor) return at::pow(a.tensor, b.scalar);
    if (!a.is_tensor) return at::pow(a.scalar, b.tensor);
    return at::pow(a.tensor, b.tensor);
  });
}
int tensor_unm(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    push_tensor(L, at::neg(t));
    return 1;
  });
}

// `a == b` compares whole tensors (shape and values); elementwise is a:eq(b).
int tensor_eq(lua_State* L) {
  at::Tensor* a = test_tensor(L, 1);
  at::Tensor* b = test_tensor(L, 2);
  if (!a || !b || !a->defined() || !b->defined()) {
    lua_pushboolean(L, a == b);
    return 1;
  }
  return protect(L, [&] {
    lua_pushboolean(L, a->sizes() == b->sizes() && a->scalar_type() == b->scalar_type() &&
                           at::equal(*a, *b));
    return 1;
  });
}

double single_value(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_tonumber(L, idx);
  at::Tensor& t = check_tensor(L, idx);
  if (t.numel() != 1)
    raise(L, "'<' and '<=' compare one-element tensors only; use a:lt(b) / a:le(b) elementwise");
  return t.item<double>();
}
int tensor_lt(lua_State* L) {
  lua_pushboolean(L, single_value(L, 1) < single_value(L, 2));
  return 1;
}
int tensor_le(lua_State* L) {
  lua_pushboolean(L, single_value(L, 1) <= single_value(L, 2));
  return 1;
}

int tensor_len(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  if (t.dim() == 0) return luaL_error(L, "len() of a 0-d tensor");
  lua_pushnumber(L, static_cast<lua_Number>(t.size(0)));
  return 1;
}

// ---- Tensor methods written here (the rest come from the dispatcher) ----------------

void push_size(lua_State* L, at::IntArrayRef sizes) {
  lua_createtable(L, static_cast<int>(sizes.size()), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    lua_pushnumber(L, static_cast<lua_Number>(sizes[i]));
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  luaL_getmetatable(L, "torch.Size");
  lua_setmetatable(L, -2);
}

int m_size(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_size(L, t.sizes());
    return 1;
  }
  int64_t dim = luaL_checkinteger(L, 2);
  return protect(L, [&] {
    lua_pushnumber(L, static_cast<lua_Number>(t.size(dim)));
    return 1;
  });
}

void push_table_rec(lua_State* L, const at::Tensor& t) {
  if (t.dim() == 0) {
    if (t.scalar_type() == at::kBool) {
      lua_pushboolean(L, t.item<bool>());
    } else {
      lua_pushnumber(L, t.item<double>());
    }
    return;
  }
  lua_createtable(L, static_cast<int>(t.size(0)), 0);
  for (int64_t i = 0; i < t.size(0); ++i) {
    push_table_rec(L, t[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

int m_totable(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    at::Tensor c = t.detach().cpu();
    if (!c.is_floating_point() && c.scalar_type() != at::kBool) c = c.to(at::kDouble);
    push_table_rec(L, c.scalar_type() == at::kBool ? c : c.to(at::kDouble));
    return 1;
  });
}

int m_dim(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_tensor(L, 1).dim()));
  return 1;
}

int m_numel(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_tensor(L, 1).numel()));
  return 1;
}

int m_element_size(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_tensor(L, 1).element_size()));
  return 1;
}

int m_is_contiguous(lua_State* L) {
  lua_pushboolean(L, check_tensor(L, 1).is_contiguous());
  return 1;
}

int m_stride(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_size(L, t.strides());
    return 1;
  }
  int64_t dim = luaL_checkinteger(L, 2);
  return protect(L, [&] {
    lua_pushnumber(L, static_cast<lua_Number>(t.stride(dim)));
    return 1;
  });
}

// t:to(device?, dtype?, {non_blocking=, copy=}) or t:to(other_tensor): PyTorch's
// Tensor.to, whose Python overloads (device alone, dtype alone) the ATen schemas lack.
int m_to(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  c10::optional<at::Device> device;
  c10::optional<at::ScalarType> dtype;
  at::Tensor other;
  bool non_blocking = false, copy = false;
  for (int i = 2; i <= lua_gettop(L); ++i) {
    at::Device d(at::kCPU);
    at::ScalarType st;
    if (at::Tensor* o = test_tensor(L, i)) {
      other = *o;
    } else if (test_dtype(L, i, &st)) {
      dtype = st;
    } else if (test_device(L, i, &d)) {
      device = d;
    } else if (lua_istable(L, i)) {
      Options opt(L, i, "Tensor:to");
      non_blocking = opt.boolean("non_blocking", false);
      copy = opt.boolean("copy", false);
      if (opt.push("dtype") != LUA_TNIL) dtype = check_dtype(L, lua_gettop(L));
      lua_pop(L, 1);
      if (opt.push("device") != LUA_TNIL) device = check_device(L, lua_gettop(L));
      lua_pop(L, 1);
      opt.finish();
    } else {
      return luaL_error(L, "Tensor:to: argument #%d is not a device, dtype, Tensor or options table (got %s%s%s)",
                        i - 1, luaL_typename(L, i), lua_type(L, i) == LUA_TSTRING ? " " : "",
                        lua_type(L, i) == LUA_TSTRING ? lua_tostring(L, i) : "");
    }
  }
  return protect(L, [&] {
    at::Tensor out;
    if (other.defined()) {
      out = t.to(other, non_blocking, copy);
    } else {
      out = t.to(t.options().device(device.value_or(t.device())).dtype(dtype.value_or(t.scalar_type())),
                 non_blocking, copy);
    }
    if (out.is_same(t)) {
      lua_pushvalue(L, 1);
    } else {
      push_tensor(L, out);
    }
    return 1;
  });
}

int m_free(lua_State* L) {
  free_tensor(L, 1);
  return 0;
}

int m_is_same(lua_State* L) {
  at::Tensor& a = check_tensor(L, 1);
  at::Tensor& b = check_tensor(L, 2);
  lua_pushboolean(L, a.is_same(b));
  return 1;
}

int m_type_name(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  std::string s = dtype_name(t.scalar_type());
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

// ---- properties ----------------------------------------------------------------------

int get_grad(lua_State* L) {
  push_tensor(L, check_tensor(L, 1).grad());
  return 1;
}
int get_requires_grad(lua_State* L) {
  lua_pushboolean(L, check_tensor(L, 1).requires_grad());
  return 1;
}
int get_dtype(lua_State* L) {
  push_dtype(L, check_tensor(L, 1).scalar_type());
  return 1;
}
int get_device(lua_State* L) {
  push_device(L, check_tensor(L, 1).device());
  return 1;
}
int get_shape(lua_State* L) {
  push_size(L, check_tensor(L, 1).sizes());
  return 1;
}
int get_ndim(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_tensor(L, 1).dim()));
  return 1;
}
int get_is_leaf(lua_State* L) {
  lua_pushboolean(L, check_tensor(L, 1).is_leaf());
  return 1;
}
int get_is_cuda(lua_State* L) {
  lua_pushboolean(L, check_tensor(L, 1).is_cuda());
  return 1;
}
int get_grad_fn(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  if (!t.grad_fn()) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, t.grad_fn()->name().c_str());
  }
  return 1;
}
int get_data(lua_State* L) {
  push_tensor(L, check_tensor(L, 1).detach());
  return 1;
}
int get_T(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  return protect(L, [&] {
    std::vector<int64_t> perm;
    for (int64_t i = t.dim() - 1; i >= 0; --i) perm.push_back(i);
    push_tensor(L, t.permute(perm));
    return 1;
  });
}

int set_requires_grad(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  bool v = lua_toboolean(L, 2);
  return protect(L, [&] {
    t.requires_grad_(v);
    return 0;
  });
}
int set_grad(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  at::Tensor g = opt_tensor(L, 2);
  return protect(L, [&] {
    // As PyTorch: a gradient must match its tensor (the optimizer would otherwise broadcast or fail later).
    if (g.defined()) {
      TORCH_CHECK(g.sizes() == t.sizes(), "t.grad = g: argument 'g' has shape ", g.sizes(),
                  ", the tensor has shape ", t.sizes());
      TORCH_CHECK(g.scalar_type() == t.scalar_type(), "t.grad = g: argument 'g' has dtype ", g.scalar_type(),
                  ", the tensor has dtype ", t.scalar_type());
      TORCH_CHECK(g.device() == t.device(), "t.grad = g: argument 'g' is on ", g.device(), ", the tensor on ",
                  t.device());
    }
    t.mutable_grad() = g;
    return 0;
  });
}
int set_data(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  at::Tensor& v = check_tensor(L, 2);
  return protect(L, [&] {
    t.set_data(v);
    return 0;
  });
}

int open_torch(lua_State* L) {
  install_metatables(L);
  lua_newtable(L);  // the torch table
  int torch = lua_gettop(L);

  fill_torch_table(L, torch);

  // Tensor methods table (torch.Tensor), extended from Lua by lua/torch/init.lua.
  lua_newtable(L);
  int methods = lua_gettop(L);
  static const luaL_Reg tensor_methods[] = {{"size", m_size},   {"totable", m_totable},
                                            {"dim", m_dim},     {"numel", m_numel},
                                            {"element_size", m_element_size},
                                            {"is_contiguous", m_is_contiguous},
                                            {"stride", m_stride}, {"to", m_to},
                                            {"tolist", m_totable}, {"free", m_free},
                                            {"is_same", m_is_same}, {"type_name", m_type_name},
                                            {nullptr, nullptr}};
  luaL_register(L, nullptr, tensor_methods);
  lua_pushvalue(L, methods);
  lua_setfield(L, torch, "Tensor");

  lua_newtable(L);
  int getters = lua_gettop(L);
  static const luaL_Reg tensor_getters[] = {
      {"grad", get_grad},       {"requires_grad", get_requires_grad}, {"dtype", get_dtype},
      {"device", get_device},   {"shape", get_shape},                 {"ndim", get_ndim},
      {"is_leaf", get_is_leaf}, {"is_cuda", get_is_cuda},             {"grad_fn", get_grad_fn},
      {"data", get_data},       {"T", get_T},                         {nullptr, nullptr}};
  luaL_register(L, nullptr, tensor_getters);
  lua_newtable(L);
  int setters = lua_gettop(L);
  static const luaL_Reg tensor_setters[] = {
      {"requires_grad", set_requires_grad}, {"grad", set_grad}, {"data", set_data}, {nullptr, nullptr}};
  luaL_register(L, nullptr, tensor_setters);

  push_tensor_metatable(L);
  int mt = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_pushvalue(L, getters);
  lua_pushcclosure(L, tensor_index, 2);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, methods);
  lua_pushvalue(L, setters);
  lua_pushcclosure(L, tensor_newindex, 2);
  lua_setfield(L, mt, "__newindex");
  static const luaL_Reg metamethods[] = {
      {"__tostring", tensor_tostring}, {"__add", tensor_add}, {"__sub", tensor_sub},
      {"__mul", tensor_mul},           {"__div", tensor_div}, {"__mod", tensor_mod},
      {"__pow", tensor_pow},           {"__unm", tensor_unm}, {"__eq", tensor_eq},
      {"__lt", tensor_lt},             {"__le", tensor_le},   {"__len", tensor_len},
      {nullptr, nullptr}};
  lua_pushvalue(L, mt);
  luaL_register(L, nullptr, metamethods);
  lua_pop(L, 4);  // mt copy, mt, setters, getters
  lua_pop(L, 1);  // methods

  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._torch", open_torch);

}  // namespace kinema::lua
