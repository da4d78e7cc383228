#include "core/dispatch.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ScalarOps.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

namespace kinema::lua {

struct Overload {
  c10::OperatorHandle handle;
  bool is_out = false;        // writes into an `out=` argument; used only when out= is given
  bool returns_self = false;  // in-place: returns its first argument
};

struct OverloadSet {
  std::string name;  // "aten::add"
  std::vector<Overload> overloads;
  // The overload that matched last: tried first, since loops repeat calls.
  mutable size_t last_match = 0;
};

namespace {

std::unordered_map<std::string, std::unique_ptr<OverloadSet>>& op_table() {
  static std::unordered_map<std::string, std::unique_ptr<OverloadSet>> table;
  return table;
}

bool is_out_overload(const c10::FunctionSchema& schema) {
  for (const auto& arg : schema.arguments())
    if (arg.kwarg_only() && arg.alias_info() && arg.alias_info()->isWrite()) return true;
  return false;
}

bool has_dimname(const c10::FunctionSchema& schema) {
  // Named-tensor overloads are not reachable from Lua; they would only shadow
  // the positional ones in error messages.
  return c10::toString(schema).find("Dimname") != std::string::npos;
}

void scan_operators() {
  // Additive: closures already handed to Lua keep pointing at live sets.
  auto& table = op_table();
  static std::set<std::string> seen;
  auto& dispatcher = c10::Dispatcher::singleton();
  for (const c10::OperatorName& name : dispatcher.getAllOpNames()) {
    auto handle = dispatcher.findOp(name);
    if (!handle || !handle->hasSchema()) continue;
    if (!seen.insert(c10::toString(name)).second) continue;
    const auto& schema = handle->schema();
    if (has_dimname(schema)) continue;  // named tensors are not supported from Lua
    auto& set = table[name.name];
    if (!set) {
      set = std::make_unique<OverloadSet>();
      set->name = name.name;
    }
    bool returns_self = !schema.returns().empty() && schema.returns()[0].alias_info() &&
                        schema.returns()[0].alias_info()->isWrite();
    set->overloads.push_back(Overload{*handle, is_out_overload(schema), returns_self});
  }
  // Stable order: the default overload first, then by registration order.
  for (auto& kv : table) {
    std::stable_sort(kv.second->overloads.begin(), kv.second->overloads.end(),
                     [](const Overload& a, const Overload& b) {
                       return a.handle.operator_name().overload_name.empty() &&
                              !b.handle.operator_name().overload_name.empty();
                     });
  }
}


const char* lua_value_name(lua_State* L, int idx) {
  if (is_tensor(L, idx)) return "Tensor";
  at::ScalarType st;
  if (lua_type(L, idx) == LUA_TUSERDATA && test_dtype(L, idx, &st)) return "dtype";
  return luaL_typename(L, idx);
}

// True for a plain table that holds keyword arguments (string keys only).
bool is_kwargs_table(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || lua_getmetatable(L, idx)) {
    if (lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1);
    return false;
  }
  bool any = false;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return false;
    }
    any = true;
  }
  return any;
}

// Costs rank candidate overloads: 0 exact, higher for coercions.
constexpr int kCostCoerce = 1;
constexpr int kCostNumberToTensor = 3;

at::Tensor wrap_number(double v, bool integral) {
  at::Tensor t = integral ? at::scalar_to_tensor(at::Scalar(static_cast<int64_t>(v)))
                          : at::scalar_to_tensor(at::Scalar(v));
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

bool convert_int_list(lua_State* L, int idx, c10::IValue& out, std::string& why) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    if (!is_integer(v)) {
      why = "expected integers";
      return false;
    }
    out = c10::List<int64_t>({static_cast<int64_t>(v)});
    return true;
  }
  if (lua_type(L, idx) != LUA_TTABLE) {
    why = std::string("expected a table of integers, got ") + lua_value_name(L, idx);
    return false;
  }
  size_t n = lua_objlen(L, idx);
  c10::List<int64_t> list;
  list.reserve(n);
  for (size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, static_cast<int>(i));
    bool ok = lua_type(L, -1) == LUA_TNUMBER && is_integer(lua_tonumber(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!ok) {
      why = "expected a table of integers";
      return false;
    }
    list.push_back(static_cast<int64_t>(v));
  }
  out = std::move(list);
  return true;
}

bool convert(lua_State* L, int idx, const c10::TypePtr& type, c10::IValue& out, int& cost,
             std::string& why);

bool convert_list(lua_State* L, int idx, const c10::TypePtr& elem, c10::IValue& out, int& cost,
                  std::string& why) {
  auto kind = elem->kind();
  if (kind == c10::TypeKind::IntType || kind == c10::TypeKind::SymIntType)
    return convert_int_list(L, idx, out, why);
  if (lua_type(L, idx) != LUA_TTABLE) {
    if (kind == c10::TypeKind::FloatType && lua_type(L, idx) == LUA_TNUMBER) {
      out = c10::List<double>({lua_tonumber(L, idx)});
      cost += kCostCoerce;
      return true;
    }
    why = std::string("expected a table, got ") + lua_value_name(L, idx);
    return false;
  }
  int n = static_cast<int>(lua_objlen(L, idx));
  int abs_idx = idx;
  if (kind == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> list;
    list.reserve(n);
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, abs_idx, i);
      at::Tensor* t = test_tensor(L, -1);
      lua_pop(L, 1);
      if (!t) {
        why = "expected a table of Tensors (element " + std::to_string(i) + ")";
        return false;
      }
      list.push_back(*t);
    }
    out = std::move(list);
    return true;
  }
  if (kind == c10::TypeKind::OptionalType &&
      elem->containedTypes()[0]->kind() == c10::TypeKind::TensorType) {
    // Tensor?[] (advanced indexing): `false` stands for None inside a Lua array.
    c10::List<c10::optional<at::Tensor>> list;
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, abs_idx, i);
      at::Tensor* t = test_tensor(L, -1);
      bool is_none = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (t) {
        list.push_back(*t);
      } else if (is_none) {
        list.push_back(c10::nullopt);
      } else {
        why = "expected a table of Tensors or false (element " + std::to_string(i) + ")";
        return false;
      }
    }
    out = std::move(list);
    return true;
  }
  if (kind == c10::TypeKind::FloatType) {
    c10::List<double> list;
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, abs_idx, i);
      bool ok = lua_type(L, -1) == LUA_TNUMBER;
      double v = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (!ok) {
        why = "expected a table of numbers";
        return false;
      }
      list.push_back(v);
    }
    out = std::move(list);
    return true;
  }
  if (kind == c10::TypeKind::BoolType) {
    c10::List<bool> list;
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, abs_idx, i);
      bool ok = lua_isboolean(L, -1);
      bool v = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (!ok) {
        why = "expected a table of booleans";
        return false;
      }
      list.push_back(v);
    }
    out = std::move(list);
    return true;
  }
  // Generic list (e.g. Scalar[]): convert element by element.
  c10::impl::GenericList list(elem);
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, abs_idx, i);
    c10::IValue v;
    bool ok = convert(L, lua_gettop(L), elem, v, cost, why);
    lua_pop(L, 1);
    if (!ok) return false;
    list.push_back(std::move(v));
  }
  out = std::move(list);
  return true;
}

bool convert(lua_State* L, int idx, const c10::TypePtr& type, c10::IValue& out, int& cost,
             std::string& why) {
  const int lt = lua_type(L, idx);
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      if (lt == LUA_TNIL || lt == LUA_TNONE) {
        out = c10::IValue();
        return true;
      }
      return convert(L, idx, type->containedTypes()[0], out, cost, why);
    case c10::TypeKind::TensorType: {
      if (at::Tensor* t = test_tensor(L, idx)) {
        if (!t->defined()) {
          why = "tensor was freed";
          return false;
        }
        out = *t;
        return true;
      }
      if (lt == LUA_TNUMBER) {
        double v = lua_tonumber(L, idx);
        out = wrap_number(v, is_integer(v));
        cost += kCostNumberToTensor;
        return true;
      }
      if (lt == LUA_TBOOLEAN) {
        at::Tensor t = at::scalar_to_tensor(at::Scalar(static_cast<bool>(lua_toboolean(L, idx))));
        t.unsafeGetTensorImpl()->set_wrapped_number(true);
        out = t;
        cost += kCostNumberToTensor;
        return true;
      }
      why = std::string("expected Tensor, got ") + lua_value_name(L, idx);
      return false;
    }
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      if (lt == LUA_TNUMBER && is_integer(lua_tonumber(L, idx))) {
        out = static_cast<int64_t>(lua_tonumber(L, idx));
        return true;
      }
      why = std::string("expected int, got ") +
            (lt == LUA_TNUMBER ? "a non-integral number" : lua_value_name(L, idx));
      return false;
    case c10::TypeKind::FloatType:
      if (lt == LUA_TNUMBER) {
        out = static_cast<double>(lua_tonumber(L, idx));
        return true;
      }
      why = std::string("expected float, got ") + lua_value_name(L, idx);
      return false;
    case c10::TypeKind::NumberType:  // Scalar
      if (lt == LUA_TNUMBER) {
        double v = lua_tonumber(L, idx);
        out = is_integer(v) ? c10::IValue(at::Scalar(static_cast<int64_t>(v)))
                             : c10::IValue(at::Scalar(v));
        return true;
      }
      if (lt == LUA_TBOOLEAN) {
        out = at::Scalar(static_cast<bool>(lua_toboolean(L, idx)));
        cost += kCostCoerce;
        return true;
      }
      why = std::string("expected a number, got ") + lua_value_name(L, idx);
      return false;
    case c10::TypeKind::BoolType:
      if (lt == LUA_TBOOLEAN) {
        out = static_cast<bool>(lua_toboolean(L, idx));
        return true;
      }
      why = std::string("expected boolean, got ") + lua_value_name(L, idx);
      return false;
    case c10::TypeKind::StringType:
      if (lt == LUA_TSTRING) {
        out = std::string(lua_tostring(L, idx));
        return true;
      }
      why = std::string("expected string, got ") + lua_value_name(L, idx);
      return false;
    case c10::TypeKind::ScalarTypeType: {
      at::ScalarType st;
      if (test_dtype(L, idx, &st)) {
        out = st;
        if (lt == LUA_TSTRING) cost += kCostCoerce;
        return true;
      }
      why = std::string("expected dtype, got ") + lua_value_name(L, idx);
      return false;
    }
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      if (lt == LUA_TNUMBER && is_integer(lua_tonumber(L, idx))) {
        out = static_cast<int64_t>(lua_tonumber(L, idx));
        return true;
      }
      why = std::string("expected ") + type->str() + " (torch.strided / torch.contiguous_format ...)";
      return false;
    case c10::TypeKind::DeviceObjType: {
      at::Device d(at::kCPU);
      if (test_device(L, idx, &d)) {
        out = d;
        if (lt == LUA_TSTRING) cost += kCostCoerce;
        return true;
      }
      why = std::string("expected device, got ") + lua_value_name(L, idx);
      return false;
    }
    case c10::TypeKind::ListType:
      return convert_list(L, idx, type->containedTypes()[0], out, cost, why);
    default:
      why = "arguments of type " + type->str() + " cannot be passed from Lua";
      return false;
  }
}

// Raw pointers, not TypePtr copies: this runs for every argument of every call
// and a shared_ptr copy is two atomic operations.
bool is_int_list(const c10::TypePtr& type) {
  const c10::Type* t = type.get();
  if (t->kind() == c10::TypeKind::OptionalType) t = t->containedTypes()[0].get();
  if (t->kind() != c10::TypeKind::ListType) return false;
  auto k = t->containedTypes()[0]->kind();
  return k == c10::TypeKind::IntType || k == c10::TypeKind::SymIntType;
}

// Binds the Lua arguments to one schema. On success `stack` holds one IValue
// per schema argument and `cost` ranks the match.
// `requires_grad` is accepted as a keyword by every operator whose schema lacks
// it (factories in PyTorch's Python API take it); the caller applies it.
bool bind(lua_State* L, const c10::FunctionSchema& schema, int first, int npos, int kw,
          std::vector<c10::IValue>& stack, int& cost, std::string& why) {
  const auto& args = schema.arguments();
  stack.clear();
  stack.reserve(args.size());
  cost = 0;
  int pos = 0;
  int kw_used = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const c10::Argument& arg = args[i];
    const c10::TypePtr& type = arg.real_type();
    c10::IValue value;
    bool have = false;
    if (!arg.kwarg_only() && pos < npos) {
      int idx = first + pos;
      // Varargs sugar as in PyTorch: t:view(2, 3), torch.zeros(2, 3).
      if (npos - pos > 1 && lua_type(L, idx) == LUA_TNUMBER && is_int_list(type)) {
        c10::List<int64_t> list;
        while (pos < npos && lua_type(L, first + pos) == LUA_TNUMBER &&
               is_integer(lua_tonumber(L, first + pos))) {
          list.push_back(static_cast<int64_t>(lua_tonumber(L, first + pos)));
          ++pos;
        }
        value = std::move(list);
        cost += kCostCoerce;
      } else {
        std::string reason;
        if (!convert(L, idx, type, value, cost, reason)) {
          why = "argument '" + arg.name() + "' (position " + std::to_string(pos + 1) + "): " + reason;
          return false;
        }
        ++pos;
      }
      have = true;
    } else if (kw) {
      lua_getfield(L, kw, arg.name().c_str());
      if (!lua_isnil(L, -1)) {
        std::string reason;
        bool ok = convert(L, lua_gettop(L), type, value, cost, reason);
        lua_pop(L, 1);
        if (!ok) {
          why = "argument '" + arg.name() + "': " + reason;
          return false;
        }
        have = true;
        ++kw_used;
      } else {
        lua_pop(L, 1);
      }
    }
    if (!have) {
      if (arg.default_value()) {
        value = *arg.default_value();
      } else if (type->kind() == c10::TypeKind::OptionalType) {
        value = c10::IValue();
      } else {
        why = "missing argument '" + arg.name() + "'";
        return false;
      }
    }
    stack.push_back(std::move(value));
  }
  if (pos < npos) {
    why = "too many positional arguments (" + std::to_string(npos) + " given)";
    return false;
  }
  if (kw) {
    int total = 0;
    lua_pushnil(L);
    while (lua_next(L, kw)) {
      lua_pop(L, 1);
      ++total;
    }
    lua_getfield(L, kw, "requires_grad");
    bool extra_requires_grad = !lua_isnil(L, -1) &&
        std::none_of(args.begin(), args.end(), [](const c10::Argument& a) { return a.name() == "requires_grad"; });
    lua_pop(L, 1);
    if (extra_requires_grad) ++kw_used;
    if (total != kw_used) {
      // Name the keyword the schema does not know.
      lua_pushnil(L);
      while (lua_next(L, kw)) {
        lua_pop(L, 1);
        std::string key = lua_tostring(L, -1);
        bool known = std::any_of(args.begin(), args.end(),
                                 [&](const c10::Argument& a) { return a.name() == key; });
        if (!known) {
          lua_pop(L, 1);
          why = "unexpected keyword argument '" + key + "'";
          return false;
        }
      }
      why = "keyword argument given twice";
      return false;
    }
  }
  return true;
}

std::string lua_signature(lua_State* L, int first, int last) {
  std::string s = "(";
  for (int i = first; i <= last; ++i) {
    if (i > first) s += ", ";
    if (i == last && is_kwargs_table(L, i)) {
      s += "{";
      bool firstkey = true;
      lua_pushnil(L);
      while (lua_next(L, i)) {
        s += std::string(firstkey ? "" : ", ") + lua_tostring(L, -2) + "=" + lua_value_name(L, -1);
        firstkey = false;
        lua_pop(L, 1);
      }
      s += "}";
    } else {
      s += lua_value_name(L, i);
    }
  }
  return s + ")";
}

}  // namespace

const OverloadSet* find_operator(const std::string& qualified_name) {
  static std::once_flag once;
  std::call_once(once, scan_operators);
  auto& table = op_table();
  auto it = table.find(qualified_name);
  return it == table.end() ? nullptr : it->second.get();
}

void refresh_operators() { scan_operators(); }

std::vector<std::string> operator_names(const std::string& ns) {
  find_operator("");  // ensure scanned
  std::vector<std::string> out;
  const std::string prefix = ns + "::";
  for (const auto& kv : op_table())
    if (kv.first.rfind(prefix, 0) == 0) out.push_back(kv.first.substr(prefix.size()));
  std::sort(out.begin(), out.end());
  return out;
}

std::string operator_signatures(const OverloadSet& ops) {
  std::ostringstream os;
  for (const auto& ov : ops.overloads) os << "  " << ov.handle.schema() << "\n";
  return os.str();
}

int call_operator(lua_State* L, const OverloadSet& ops, int first, int last) {
  int kw = 0;
  if (last >= first && is_kwargs_table(L, last)) kw = last--;
  const int npos = last - first + 1;
  bool wants_out = false;
  if (kw) {
    lua_getfield(L, kw, "out");
    wants_out = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }

  std::vector<c10::IValue> stack, candidate;
  const Overload* best = nullptr;
  int best_cost = 1 << 30;
  std::vector<std::pair<const Overload*, std::string>> rejected;
  // Fast path: the overload that matched last time, if it matches exactly again.
  if (ops.last_match < ops.overloads.size()) {
    const Overload& ov = ops.overloads[ops.last_match];
    int cost = 0;
    std::string why;
    if (ov.is_out == wants_out && bind(L, ov.handle.schema(), first, npos, kw, stack, cost, why) && cost == 0) {
      best = &ov;
      best_cost = 0;
    }
  }
  for (const Overload& ov : ops.overloads) {
    if (best_cost == 0) break;
    if (ov.is_out != wants_out) continue;
    int cost = 0;
    std::string why;
    if (bind(L, ov.handle.schema(), first, npos, kw, candidate, cost, why)) {
      if (cost < best_cost) {
        best = &ov;
        best_cost = cost;
        stack.swap(candidate);
      }
    } else {
      rejected.emplace_back(&ov, why);
    }
  }
  if (!best) {
    std::ostringstream os;
    os << ops.name << ": no overload accepts " << lua_signature(L, first, kw ? kw : last);
    os << "\nexpected one of:";
    for (const auto& r : rejected) os << "\n  " << r.first->handle.schema() << "\n    (" << r.second << ")";
    raise(L, os.str());
  }

  bool set_requires_grad = false;
  if (kw) {
    lua_getfield(L, kw, "requires_grad");
    set_requires_grad = lua_toboolean(L, -1) &&
        std::none_of(best->handle.schema().arguments().begin(), best->handle.schema().arguments().end(),
                     [](const c10::Argument& a) { return a.name() == "requires_grad"; });
    lua_pop(L, 1);
  }
  ops.last_match = static_cast<size_t>(best - ops.overloads.data());
  // In-place ops return the same Lua value as their `self` argument.
  const at::Tensor* self_in = (best->returns_self && npos > 0) ? test_tensor(L, first) : nullptr;
  // With nothing to record (grad mode off, or no input requiring grad) the
  // autograd kernels only add cost: call below them. ADInplaceOrView still runs,
  // so version counters and view tracking stay correct.
  bool needs_autograd = false;
  if (at::GradMode::is_enabled()) {
    for (const c10::IValue& v : stack) {
      if (v.isTensor() ? v.toTensor().requires_grad() : (v.isTensorList() || v.isList())) {
        needs_autograd = true;  // lists are not inspected: take the general path
        break;
      }
    }
  }
  return protect(L, [&]() -> int {
    if (needs_autograd) {
      best->handle.callBoxed(&stack);
    } else {
      at::AutoDispatchBelowAutograd below_autograd;
      best->handle.callBoxed(&stack);
    }
    if (set_requires_grad && !stack.empty() && stack[0].isTensor()) stack[0].toTensor().requires_grad_(true);
    luaL_checkstack(L, static_cast<int>(stack.size()) + 2, "too many results");
    int pushed = 0;
    for (const c10::IValue& v : stack) {
      if (self_in && v.isTensor() && v.toTensor().is_same(*self_in)) {
        lua_pushvalue(L, first);
        ++pushed;
      } else {
        pushed += push_ivalue(L, v);
      }
    }
    return pushed;
  });
}

static int operator_closure(lua_State* L) {
  const auto* ops = static_cast<const OverloadSet*>(lua_touserdata(L, lua_upvalueindex(1)));
  return call_operator(L, *ops, 1, lua_gettop(L));
}

void push_operator_function(lua_State* L, const OverloadSet& ops) {
  lua_pushlightuserdata(L, const_cast<OverloadSet*>(&ops));
  lua_pushcclosure(L, operator_closure, 1);
}

}  // namespace kinema::lua
