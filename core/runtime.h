#pragma once
// The one place that knows Lua mechanics (in the spirit of LÖVE's runtime.h):
// tensor proxies, type checks, the exception boundary, IValue conversion and
// the registry of native Lua modules. Every wrap_*.cpp goes through this.
extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "core/exception_message.h"

namespace kinema::lua {

// ---- exception boundary -------------------------------------------------
// Runs f (which returns the number of Lua results). A C++ exception becomes a
// Lua error carrying its message; lua_error is raised after the catch block
// has been left. Never wrap Lua calls in catch(...): LuaJIT errors unwind as
// C++ exceptions and must pass through. The message is exception_message's
// (core/exception_message.h, which code without Lua includes alone; the
// using-declaration keeps lua::exception_message naming it).
using kinema::exception_message;
template <typename F>
int protect(lua_State* L, F&& f) {
  std::string message;
  try {
    return f();
  } catch (const std::exception& e) {
    message = exception_message(e);
  }
  lua_pushlstring(L, message.data(), message.size());
  return lua_error(L);
}

// Raise a Lua error with a formatted message (for argument checks in wrappers).
[[noreturn]] void raise(lua_State* L, const std::string& message);

// ---- tensors ----------------------------------------------------------------
// Tensors live in Lua as full userdata holding an at::Tensor; their storage
// bytes are accounted so the GC runs under memory pressure (DESIGN principle 4).
void push_tensor(lua_State* L, at::Tensor t);  // undefined tensor pushes nil
bool is_tensor(lua_State* L, int idx);
at::Tensor* test_tensor(lua_State* L, int idx);  // nullptr when not a tensor
// Errors name the argument: "bad argument #2 to 'name' (Tensor expected, got nil)".
at::Tensor& check_tensor(lua_State* L, int idx, const char* name = nullptr);
at::Tensor opt_tensor(lua_State* L, int idx);  // nil/none -> undefined tensor

// dtype and device values as Lua sees them (torch.float32, torch.device'cuda:0');
// strings ("float32", "cuda:1") are accepted wherever these are expected.
void push_dtype(lua_State* L, at::ScalarType t);
bool test_dtype(lua_State* L, int idx, at::ScalarType* out);
at::ScalarType check_dtype(lua_State* L, int idx);
void push_device(lua_State* L, const at::Device& d);
bool test_device(lua_State* L, int idx, at::Device* out);
at::Device check_device(lua_State* L, int idx);

// ---- IValue conversion (schema-free) -------------------------------------------
// Lua value -> IValue: nil->None, boolean->Bool, integral number->Int, number->Double,
// string->String, tensor->Tensor, table with string keys->GenericDict(str, Any),
// array table->GenericList (typed Tensor/int/float list when homogeneous).
c10::IValue to_ivalue(lua_State* L, int idx);
// IValue -> Lua value(s); a tuple pushes its elements as multiple results.
// Returns the number of values pushed.
int push_ivalue(lua_State* L, const c10::IValue& v);
// Push exactly one value (tuples become arrays).
void push_ivalue_single(lua_State* L, const c10::IValue& v);

// ---- calling Lua ---------------------------------------------------------------
// lua_pcall with a traceback handler; on error the message+traceback is on top
// (a usage error, see is_usage_error, is left as it was raised).
int pcall_traceback(lua_State* L, int nargs, int nresults);
// Whether the value at idx is a user mistake raised by kinema.cli.usage_error.
bool is_usage_error(lua_State* L, int idx);

// The host's main state (Lua is single-threaded; C++ threads never touch it).
lua_State* main_state();
void set_main_state(lua_State* L);

// ---- native modules ---------------------------------------------------------------
// A wrap_*.cpp registers its luaopen function under a module name; the host
// puts it in package.preload so `require 'kinema._data'` finds it.
using OpenFunction = int (*)(lua_State*);
struct NativeModule {
  const char* name;
  OpenFunction open;
};
const std::vector<NativeModule>& native_modules();
struct NativeModuleRegistrar {
  NativeModuleRegistrar(const char* name, OpenFunction open);
};
#define KINEMA_LUA_CONCAT_(a, b) a##b
#define KINEMA_LUA_CONCAT(a, b) KINEMA_LUA_CONCAT_(a, b)
#define KINEMA_LUA_MODULE(NAME, OPEN) \
  static ::kinema::lua::NativeModuleRegistrar KINEMA_LUA_CONCAT(kinema_lua_module_, __LINE__)(NAME, OPEN)

// ---- numbers ----------------------------------------------------------------------
// Whether a Lua number is an integer a double holds exactly (|v| < 2^53): the one
// test behind integer options, IValue conversion, operator arguments and indices.
bool is_integer(double v);

// ---- options tables ------------------------------------------------------------------
// Every options table of a binding is read through an Options: each getter
// marks its key known, and finish() refuses any key of the table that no
// getter asked for, naming the function, the key and the closest known key:
//   data.Loader: unknown option 'num_wokers' (did you mean 'num_workers'?)
// A value of the wrong type raises "data.Loader: option 'size' must be a
// number". A nil or absent argument reads as an empty table. A nested group
// (data.Loader's text = {...}) is an Options with the group as prefix, so its
// keys are named 'text.max_len'.
class Options {
 public:
  Options(lua_State* L, int idx, std::string function, std::string group = "");
  // Whether the argument is a table (false: nil / none, every getter returns its fallback).
  bool given() const { return table_; }
  // Whether key holds a non-nil value (marks key known).
  bool has(const char* key);
  double number(const char* key, double fallback);
  int64_t integer(const char* key, int64_t fallback);
  std::string string(const char* key, const std::string& fallback);
  bool boolean(const char* key, bool fallback);
  // Pushes the value of key (nil when absent), marks key known, returns its Lua type.
  int push(const char* key);
  // The option's name in messages: 'key', or 'group.key' inside a group.
  std::string name(const char* key) const;
  lua_State* state() const { return L_; }
  // "FUNCTION: option 'NAME' " + what, raised as a Lua error.
  [[noreturn]] void fail(const char* key, const std::string& what) const;
  // Refuses every key that no getter read (call after the last getter).
  void finish();

 private:
  lua_State* L_;
  int idx_;
  bool table_;
  std::string function_, group_;
  std::vector<std::string> known_;
};

// "FUNCTION: unknown option 'KEY' (did you mean 'NEAR'?)", or "(known: a, b, ...)"
// when no known name is close; the rule Lua's kinema.util.check_options follows too.
std::string unknown_option_message(const std::string& function, const std::string& key,
                                   const std::vector<std::string>& known);

// ---- C++ objects as userdata ------------------------------------------------------
// A C++ value T (a box holding a shared_ptr, a unique_ptr, ...) lives in Lua as a
// full userdata whose metatable is registered once per type name ("kinema.Loader")
// by register_type: methods reached through __index, metamethods such as __len,
// and a __gc that runs ~T.
template <typename T>
void push_object(lua_State* L, const char* type, T value) {
  void* mem = lua_newuserdata(L, sizeof(T));
  new (mem) T(std::move(value));
  luaL_getmetatable(L, type);
  lua_setmetatable(L, -2);
}
// The T at idx; raises "bad argument #idx ... (TYPE expected, got ...)" otherwise.
template <typename T>
T& check_object(lua_State* L, int idx, const char* type) {
  return *static_cast<T*>(luaL_checkudata(L, idx, type));
}
// The T at idx, or nullptr when the value is something else.
template <typename T>
T* test_object(lua_State* L, int idx, const char* type) {
  return static_cast<T*>(luaL_testudata(L, idx, type));
}
template <typename T>
int destroy_object(lua_State* L) {
  static_cast<T*>(lua_touserdata(L, 1))->~T();
  return 0;
}
void register_type(lua_State* L, const char* type, const luaL_Reg* methods, const luaL_Reg* metamethods,
                   lua_CFunction gc);
template <typename T>
void register_type(lua_State* L, const char* type, const luaL_Reg* methods, const luaL_Reg* metamethods = nullptr) {
  register_type(L, type, methods, metamethods, &destroy_object<T>);
}

}  // namespace kinema::lua

namespace kinema::lua {
// Release a tensor proxy's storage now (t:free()); later use raises an error.
void free_tensor(lua_State* L, int idx);
// Bytes of tensor storage currently held by Lua proxies (GC accounting).
size_t live_tensor_bytes();
bool parse_dtype_name(const std::string& name, at::ScalarType* out);
bool parse_device_name(const std::string& name, at::Device* out);
// Host set-up: create the metatables (once per state) and push them for wrappers
// that add methods (wrap_tensor.cpp fills the tensor metatable).
void install_metatables(lua_State* L);
void push_tensor_metatable(lua_State* L);
void push_dtype_metatable(lua_State* L);
void push_device_metatable(lua_State* L);
}  // namespace kinema::lua
