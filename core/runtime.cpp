#include "core/lua_thread.h"
#include "models/unknown_key.h"
#include "core/runtime.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

namespace kinema::lua {

namespace {

// Registry keys (addresses of these statics are unique lightuserdata keys).
char tensor_mt_key;
char dtype_mt_key;
char dtype_cache_key;
char device_mt_key;

lua_State* g_main_state = nullptr;

// --- GC accounting -------------------------------------------------------------
// LuaJIT cannot be told about external memory, so we count the storage bytes
// held by live tensor proxies and force a full collection when they grow past
// a threshold that adapts to the live set (like a generational trigger). The
// floor is small so that short-lived temporaries are reused while still in
// cache (1 MB measured best for 64x64 loops; 8 MB was 15% slower); the threshold
// also grows with the Lua heap, whose traversal is what a collection costs.
constexpr size_t kMinCollectThreshold = size_t(1) << 20;
constexpr size_t kHeapFactor = 4;
size_t g_live_bytes = 0;
size_t g_collect_threshold = kMinCollectThreshold;
bool g_collecting = false;

// Tensor proxies carry a tag so that recognising one costs a pointer read
// rather than a metatable lookup (this sits on every operator call).
constexpr uint64_t kTensorTag = 0x6b696e656d615f54ULL;  // "kinema_T"

struct TensorBox {
  uint64_t tag = kTensorTag;
  at::Tensor tensor;
  size_t accounted_bytes = 0;
};

int g_tensor_mt_ref = LUA_NOREF;  // registry slot of the tensor metatable

size_t storage_bytes(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return t.storage().nbytes();
}

void account(lua_State* L, size_t bytes) {
  g_live_bytes += bytes;
  if (g_live_bytes > g_collect_threshold && !g_collecting) {
    g_collecting = true;
    lua_gc(L, LUA_GCCOLLECT, 0);
    g_collecting = false;
    const size_t lua_heap_bytes = size_t(lua_gc(L, LUA_GCCOUNT, 0)) << 10;
    g_collect_threshold = std::max({kMinCollectThreshold, g_live_bytes * 2, lua_heap_bytes * kHeapFactor});
  }
}

void release(TensorBox* box) {
  g_live_bytes -= std::min(g_live_bytes, box->accounted_bytes);
  box->accounted_bytes = 0;
  box->tensor = at::Tensor();
}

int tensor_gc(lua_State* L) {
  auto* box = static_cast<TensorBox*>(lua_touserdata(L, 1));
  release(box);
  box->~TensorBox();
  box->tag = 0;
  return 0;
}

TensorBox* test_box(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_objlen(L, idx) != sizeof(TensorBox)) return nullptr;
  auto* box = static_cast<TensorBox*>(lua_touserdata(L, idx));
  return box->tag == kTensorTag ? box : nullptr;
}

const char* type_name(lua_State* L, int idx) {
  if (test_box(L, idx)) return "Tensor";
  return luaL_typename(L, idx);
}

std::vector<NativeModule>& module_list() {
  static std::vector<NativeModule> modules;
  return modules;
}

}  // namespace

void raise(lua_State* L, const std::string& message) {
  lua_pushlstring(L, message.data(), message.size());
  lua_error(L);
  std::abort();  // unreachable: lua_error does not return
}

// ---- tensors --------------------------------------------------------------------

void push_tensor(lua_State* L, at::Tensor t) {
  if (!t.defined()) {
    lua_pushnil(L);
    return;
  }
  void* mem = lua_newuserdata(L, sizeof(TensorBox));
  auto* box = new (mem) TensorBox{kTensorTag, std::move(t), 0};
  lua_rawgeti(L, LUA_REGISTRYINDEX, g_tensor_mt_ref);
  lua_setmetatable(L, -2);
  box->accounted_bytes = storage_bytes(box->tensor);
  account(L, box->accounted_bytes);
}

bool is_tensor(lua_State* L, int idx) { return test_box(L, idx) != nullptr; }

at::Tensor* test_tensor(lua_State* L, int idx) {
  TensorBox* box = test_box(L, idx);
  return box ? &box->tensor : nullptr;
}

at::Tensor& check_tensor(lua_State* L, int idx, const char* name) {
  TensorBox* box = test_box(L, idx);
  if (!box) {
    std::string msg = "bad argument #" + std::to_string(idx);
    if (name) msg += std::string(" (") + name + ")";
    msg += std::string(": Tensor expected, got ") + type_name(L, idx);
    luaL_where(L, 1);
    std::string where = lua_tostring(L, -1);
    lua_pop(L, 1);
    raise(L, where + msg);
  }
  if (!box->tensor.defined()) raise(L, "tensor was freed (t:free() released its storage)");
  return box->tensor;
}

at::Tensor opt_tensor(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return at::Tensor();
  return check_tensor(L, idx);
}

void free_tensor(lua_State* L, int idx) {
  TensorBox* box = test_box(L, idx);
  if (!box) luaL_argerror(L, idx, "Tensor expected");
  release(box);
}

size_t live_tensor_bytes() { return g_live_bytes; }

// ---- dtype / device ----------------------------------------------------------------

void push_dtype(lua_State* L, at::ScalarType t) {
  // One userdata per dtype so that `t.dtype == torch.float32` holds by identity.
  lua_pushlightuserdata(L, &dtype_cache_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, -1, static_cast<int>(t));
  if (!lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  auto* p = static_cast<at::ScalarType*>(lua_newuserdata(L, sizeof(at::ScalarType)));
  *p = t;
  lua_pushlightuserdata(L, &dtype_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, static_cast<int>(t));
  lua_remove(L, -2);
}

static bool has_metatable(lua_State* L, int idx, void* key) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushlightuserdata(L, key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

bool parse_dtype_name(const std::string& name, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> names[] = {
      {"float32", at::kFloat}, {"float", at::kFloat},      {"float64", at::kDouble},
      {"double", at::kDouble}, {"float16", at::kHalf},     {"half", at::kHalf},
      {"bfloat16", at::kBFloat16}, {"int64", at::kLong},  {"long", at::kLong},
      {"int32", at::kInt},     {"int", at::kInt},          {"int16", at::kShort},
      {"short", at::kShort},   {"int8", at::kChar},        {"uint8", at::kByte},
      {"bool", at::kBool},     {"complex64", at::kComplexFloat}, {"complex128", at::kComplexDouble}};
  std::string n = name.rfind("torch.", 0) == 0 ? name.substr(6) : name;
  for (const auto& kv : names)
    if (n == kv.first) {
      *out = kv.second;
      return true;
    }
  return false;
}

bool test_dtype(lua_State* L, int idx, at::ScalarType* out) {
  if (lua_type(L, idx) == LUA_TUSERDATA && has_metatable(L, idx, &dtype_mt_key)) {
    *out = *static_cast<at::ScalarType*>(lua_touserdata(L, idx));
    return true;
  }
  if (lua_type(L, idx) == LUA_TSTRING) return parse_dtype_name(lua_tostring(L, idx), out);
  return false;
}

at::ScalarType check_dtype(lua_State* L, int idx) {
  at::ScalarType t;
  if (!test_dtype(L, idx, &t))
    luaL_argerror(L, idx, "dtype expected (torch.float32, 'float64', ...)");
  return t;
}

void push_device(lua_State* L, const at::Device& d) {
  auto* p = static_cast<at::Device*>(lua_newuserdata(L, sizeof(at::Device)));
  new (p) at::Device(d);
  lua_pushlightuserdata(L, &device_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_setmetatable(L, -2);
}

bool parse_device_name(const std::string& s, at::Device* out) {
  // Accept exactly the forms PyTorch accepts: "cpu", "cuda", "cuda:N", "meta".
  if (s.empty() || !(s.rfind("cpu", 0) == 0 || s.rfind("cuda", 0) == 0 || s == "meta")) return false;
  try {
    *out = at::Device(s);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool test_device(lua_State* L, int idx, at::Device* out) {
  if (lua_type(L, idx) == LUA_TUSERDATA && has_metatable(L, idx, &device_mt_key)) {
    *out = *static_cast<at::Device*>(lua_touserdata(L, idx));
    return true;
  }
  if (lua_type(L, idx) == LUA_TSTRING) return parse_device_name(lua_tostring(L, idx), out);
  return false;
}

at::Device check_device(lua_State* L, int idx) {
  at::Device d(at::kCPU);
  if (!test_device(L, idx, &d)) luaL_argerror(L, idx, "device expected ('cpu', 'cuda', 'cuda:1')");
  return d;
}

// ---- IValue conversion ----------------------------------------------------------------



c10::IValue to_ivalue(lua_State* L, int idx) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
      return c10::IValue();
    case LUA_TBOOLEAN:
      return c10::IValue(static_cast<bool>(lua_toboolean(L, idx)));
    case LUA_TNUMBER: {
      double v = lua_tonumber(L, idx);
      if (is_integer(v)) return c10::IValue(static_cast<int64_t>(v));
      return c10::IValue(v);
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      return c10::IValue(std::string(s, len));
    }
    case LUA_TUSERDATA: {
      if (at::Tensor* t = test_tensor(L, idx)) return c10::IValue(*t);
      at::ScalarType st;
      if (has_metatable(L, idx, &dtype_mt_key) && test_dtype(L, idx, &st)) return c10::IValue(st);
      at::Device d(at::kCPU);
      if (test_device(L, idx, &d)) return c10::IValue(d);
      break;
    }
    case LUA_TTABLE: {
      size_t n = lua_objlen(L, idx);
      bool has_string_key = false;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) has_string_key = true;
        lua_pop(L, 1);
        if (has_string_key) {
          lua_pop(L, 1);
          break;
        }
      }
      if (has_string_key || n == 0) {
        c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
        lua_pushnil(L);
        while (lua_next(L, idx)) {
          if (lua_type(L, -2) == LUA_TSTRING) {
            dict.insert(std::string(lua_tostring(L, -2)), to_ivalue(L, lua_gettop(L)));
          } else {
            lua_pushvalue(L, -2);
            std::string key = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
            lua_pop(L, 1);
            dict.insert(key, to_ivalue(L, lua_gettop(L)));
          }
          lua_pop(L, 1);
        }
        return dict;
      }
      std::vector<c10::IValue> items;
      items.reserve(n);
      bool all_tensor = true, all_int = true, all_number = true;
      for (size_t i = 1; i <= n; ++i) {
        lua_rawgeti(L, idx, static_cast<int>(i));
        items.push_back(to_ivalue(L, lua_gettop(L)));
        lua_pop(L, 1);
        const c10::IValue& v = items.back();
        all_tensor = all_tensor && v.isTensor();
        all_int = all_int && v.isInt();
        all_number = all_number && (v.isInt() || v.isDouble());
      }
      if (all_tensor) {
        c10::List<at::Tensor> list;
        for (auto& v : items) list.push_back(v.toTensor());
        return list;
      }
      if (all_int) {
        c10::List<int64_t> list;
        for (auto& v : items) list.push_back(v.toInt());
        return list;
      }
      if (all_number) {
        c10::List<double> list;
        for (auto& v : items) list.push_back(v.isInt() ? static_cast<double>(v.toInt()) : v.toDouble());
        return list;
      }
      c10::impl::GenericList list(c10::AnyType::get());
      for (auto& v : items) list.push_back(v);
      return list;
    }
    default:
      break;
  }
  raise(L, std::string("cannot convert a Lua ") + type_name(L, idx) + " to a C++ value");
}

void push_ivalue_single(lua_State* L, const c10::IValue& v) {
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    lua_createtable(L, static_cast<int>(elems.size()), 0);
    for (size_t i = 0; i < elems.size(); ++i) {
      push_ivalue_single(L, elems[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return;
  }
  if (push_ivalue(L, v) != 1) raise(L, "internal: expected one value");
}

int push_ivalue(lua_State* L, const c10::IValue& v) {
  if (v.isNone()) {
    lua_pushnil(L);
  } else if (v.isTensor()) {
    push_tensor(L, v.toTensor());
  } else if (v.isBool()) {
    lua_pushboolean(L, v.toBool());
  } else if (v.isInt()) {
    lua_pushnumber(L, static_cast<lua_Number>(v.toInt()));
  } else if (v.isDouble()) {
    lua_pushnumber(L, v.toDouble());
  } else if (v.isString()) {
    const std::string& s = v.toStringRef();
    lua_pushlstring(L, s.data(), s.size());
  } else if (v.isScalar()) {
    const at::Scalar s = v.toScalar();
    if (s.isBoolean()) {
      lua_pushboolean(L, s.toBool());
    } else if (s.isIntegral(false)) {
      lua_pushnumber(L, static_cast<lua_Number>(s.toLong()));
    } else {
      lua_pushnumber(L, s.toDouble());
    }
  } else if (v.isDevice()) {
    push_device(L, v.toDevice());
  } else if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    luaL_checkstack(L, static_cast<int>(elems.size()) + 2, "too many results");
    for (const auto& e : elems) push_ivalue_single(L, e);
    return static_cast<int>(elems.size());
  } else if (v.isList()) {
    const auto list = v.toListRef();
    lua_createtable(L, static_cast<int>(list.size()), 0);
    for (size_t i = 0; i < list.size(); ++i) {
      push_ivalue_single(L, list[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
  } else if (v.isGenericDict()) {
    lua_newtable(L);
    for (const auto& entry : v.toGenericDict()) {
      push_ivalue_single(L, entry.key());
      push_ivalue_single(L, entry.value());
      lua_rawset(L, -3);
    }
  } else {
    raise(L, std::string("cannot convert a C++ ") + v.tagKind() + " to a Lua value");
  }
  return 1;
}

// ---- calling Lua ------------------------------------------------------------------------

// A user mistake raised by kinema.cli.usage_error (a table with a string field
// usage_error) travels on unchanged: the host prints its one line, no traceback.
bool is_usage_error(lua_State* L, int idx) {
  if (!lua_istable(L, idx)) return false;
  lua_getfield(L, idx, "usage_error");
  bool yes = lua_type(L, -1) == LUA_TSTRING;
  lua_pop(L, 1);
  return yes;
}
// Lua -> C++ -> Lua nesting allowed through pcall_traceback (LuaJIT's own
// limit for nested C calls is of the same order).
constexpr int kMaxNestedCalls = 200;

static int traceback_handler(lua_State* L) {
  if (is_usage_error(L, 1)) {
    lua_pushvalue(L, 1);
    return 1;
  }
  const char* msg = lua_tostring(L, 1);
  // An error passing back out through nested calls (torch.no_grad(f), a
  // custom Function, a module calling itself) already carries the innermost
  // traceback; appending one per level would make deep recursion quadratic.
  if (msg && std::strstr(msg, "\nstack traceback:")) return 1;
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  }
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_pushstring(L, msg);
  lua_pushinteger(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

int pcall_traceback(lua_State* L, int nargs, int nresults) {
  // Every Lua -> C++ -> Lua re-entry comes through here; each level costs C
  // stack (autograd, the dispatcher), so unbounded recursion through it would
  // overflow the stack instead of failing.
  static thread_local int depth = 0;
  if (depth >= kMaxNestedCalls) {
    lua_pop(L, nargs + 1);
    lua_pushfstring(L, "calls nested more than %d levels deep through torch.no_grad, custom "
                    "Functions or other C++ entry points (unbounded recursion?)", kMaxNestedCalls);
    return LUA_ERRRUN;
  }
  struct DepthGuard {
    DepthGuard() { ++depth; }
    ~DepthGuard() { --depth; }
  } guard;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback_handler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

lua_State* main_state() { return g_main_state; }
void set_main_state(lua_State* L) {
  g_main_state = L;
  set_lua_thread(L != nullptr);  // the thread that sets the state owns it (core/lua_thread.h)
}

// ---- native modules -------------------------------------------------------------------------

const std::vector<NativeModule>& native_modules() { return module_list(); }

NativeModuleRegistrar::NativeModuleRegistrar(const char* name, OpenFunction open) {
  module_list().push_back(NativeModule{name, open});
}

// ---- numbers ------------------------------------------------------------------------------

bool is_integer(double v) { return std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.007199254740992e15; }

// ---- options tables ---------------------------------------------------------------------

std::string unknown_option_message(const std::string& function, const std::string& key,
                                   const std::vector<std::string>& known) {
  return unknown_key_message(function, "option", key, known);
}

Options::Options(lua_State* L, int idx, std::string function, std::string group)
    : L_(L), idx_(idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1), table_(lua_istable(L, idx)), function_(std::move(function)),
      group_(std::move(group)) {
  if (!table_ && !lua_isnoneornil(L, idx))
    raise(L, function_ + ": " + (group_.empty() ? std::string("the options") : "option '" + group_ + "'") +
                 " must be a table, got " + luaL_typename(L, idx));
}

std::string Options::name(const char* key) const { return group_.empty() ? key : group_ + "." + key; }

void Options::fail(const char* key, const std::string& what) const {
  raise(L_, function_ + ": option '" + name(key) + "' " + what);
}

int Options::push(const char* key) {
  known_.emplace_back(key);
  if (!table_) {
    lua_pushnil(L_);
    return LUA_TNIL;
  }
  lua_getfield(L_, idx_, key);
  return lua_type(L_, -1);
}

bool Options::has(const char* key) {
  const bool present = push(key) != LUA_TNIL;
  lua_pop(L_, 1);
  return present;
}

double Options::number(const char* key, double fallback) {
  const int type = push(key);
  const double v = type == LUA_TNUMBER ? lua_tonumber(L_, -1) : fallback;
  lua_pop(L_, 1);
  if (type != LUA_TNIL && type != LUA_TNUMBER) fail(key, "must be a number");
  return v;
}

int64_t Options::integer(const char* key, int64_t fallback) {
  const int type = push(key);
  const double v = type == LUA_TNUMBER ? lua_tonumber(L_, -1) : static_cast<double>(fallback);
  lua_pop(L_, 1);
  if (type != LUA_TNIL && type != LUA_TNUMBER) fail(key, "must be a number");
  if (type == LUA_TNUMBER && !is_integer(v)) fail(key, "must be an integer");
  return type == LUA_TNIL ? fallback : static_cast<int64_t>(v);
}

std::string Options::string(const char* key, const std::string& fallback) {
  const int type = push(key);
  std::string v = type == LUA_TSTRING ? std::string(lua_tostring(L_, -1)) : fallback;
  lua_pop(L_, 1);
  if (type != LUA_TNIL && type != LUA_TSTRING) fail(key, "must be a string");
  return v;
}

bool Options::boolean(const char* key, bool fallback) {
  const int type = push(key);
  const bool v = type == LUA_TBOOLEAN ? lua_toboolean(L_, -1) != 0 : fallback;
  lua_pop(L_, 1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN) fail(key, "must be a boolean");
  return v;
}

void Options::finish() {
  if (!table_) return;
  lua_pushnil(L_);
  while (lua_next(L_, idx_)) {
    lua_pop(L_, 1);
    std::string key;
    if (lua_type(L_, -1) == LUA_TSTRING) {
      key = lua_tostring(L_, -1);
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    } else {
      lua_pushvalue(L_, -1);  // a copy: lua_tostring converts numbers in place
      const char* text = lua_tostring(L_, -1);
      key = text ? text : luaL_typename(L_, -2);
      lua_pop(L_, 1);
    }
    lua_pop(L_, 1);
    std::vector<std::string> known;
    for (const auto& k : known_) known.push_back(group_.empty() ? k : group_ + "." + k);
    raise(L_, unknown_option_message(function_, group_.empty() ? key : group_ + "." + key, known));
  }
}

// ---- C++ objects as userdata ----------------------------------------------------------------

void register_type(lua_State* L, const char* type, const luaL_Reg* methods, const luaL_Reg* metamethods,
                   lua_CFunction gc) {
  luaL_newmetatable(L, type);
  lua_newtable(L);
  luaL_register(L, nullptr, methods);
  lua_setfield(L, -2, "__index");
  if (gc) {  // none for a type whose values are plain Lua tables (torch.Size)
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  if (metamethods) luaL_register(L, nullptr, metamethods);
  lua_pop(L, 1);
}

// ---- metatable set-up (called once by the host) ---------------------------------------------

void install_metatables(lua_State* L) {
  lua_pushlightuserdata(L, &tensor_mt_key);
  lua_newtable(L);
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushstring(L, "Tensor");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  g_tensor_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_pushlightuserdata(L, &dtype_mt_key);
  lua_newtable(L);
  lua_rawset(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, &dtype_cache_key);
  lua_newtable(L);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_pushlightuserdata(L, &device_mt_key);
  lua_newtable(L);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void push_tensor_metatable(lua_State* L) {
  lua_pushlightuserdata(L, &tensor_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}
void push_dtype_metatable(lua_State* L) {
  lua_pushlightuserdata(L, &dtype_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}
void push_device_metatable(lua_State* L) {
  lua_pushlightuserdata(L, &device_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

}  // namespace kinema::lua
