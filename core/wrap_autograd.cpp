// Autograd from Lua: backward, autograd.grad, grad-mode scopes, and custom
// autograd functions whose forward and backward are Lua functions.
//
// Threads: the autograd engine runs a node's backward on the thread that
// called backward for CPU inputs and on its device threads for CUDA ones, but
// the Lua state may only be entered by the Lua thread (core/lua_thread.h).
// So t:backward and torch.autograd.grad run the engine on a helper thread
// while the Lua thread serves, and a Lua backward always runs there, handed
// over through run_on_lua_thread; from any other engine run it is refused.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include <mutex>

#include "core/lua_thread.h"
#include "core/runtime.h"

namespace kinema::lua {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<at::Tensor> tensors_from(lua_State* L, int idx, const char* what) {
  std::vector<at::Tensor> out;
  if (at::Tensor* t = test_tensor(L, idx)) {
    out.push_back(*t);
    return out;
  }
  if (!lua_istable(L, idx)) raise(L, std::string(what) + ": expected a Tensor or a table of Tensors");
  int n = static_cast<int>(lua_objlen(L, idx));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    at::Tensor* t = test_tensor(L, -1);
    lua_pop(L, 1);
    if (!t) raise(L, std::string(what) + ": element " + std::to_string(i) + " is not a Tensor");
    out.push_back(*t);
  }
  return out;
}

// retain_graph: absent means "as create_graph" (autograd's own default).
c10::optional<bool> retain_graph(Options& opt) {
  if (!opt.has("retain_graph")) return c10::nullopt;
  return opt.boolean("retain_graph", false);
}

// t:backward(gradient?, {retain_graph=, create_graph=})
int tensor_backward(lua_State* L) {
  at::Tensor& t = check_tensor(L, 1);
  at::Tensor grad;
  int opts = 2;
  if (at::Tensor* g = test_tensor(L, 2)) {
    grad = *g;
    opts = 3;
  }
  Options opt(L, opts, "t:backward");
  auto retain = retain_graph(opt);
  bool create = opt.boolean("create_graph", false);
  opt.finish();
  return protect(L, [&] {
    serve_lua_while([&] {
      torch::autograd::backward({t}, grad.defined() ? variable_list{grad} : variable_list{}, retain, create);
    });
    return 0;
  });
}

// torch.autograd.grad(outputs, inputs, grad_outputs?, {retain_graph, create_graph, allow_unused})
int autograd_grad(lua_State* L) {
  auto outputs = tensors_from(L, 1, "torch.autograd.grad outputs");
  auto inputs = tensors_from(L, 2, "torch.autograd.grad inputs");
  std::vector<at::Tensor> grad_outputs;
  int opts = 3;
  if (is_tensor(L, 3) || (lua_istable(L, 3) && lua_objlen(L, 3) > 0)) {
    grad_outputs = tensors_from(L, 3, "torch.autograd.grad grad_outputs");
    opts = 4;
  }
  Options opt(L, opts, "torch.autograd.grad");
  auto retain = retain_graph(opt);
  bool create = opt.boolean("create_graph", false);
  bool allow_unused = opt.boolean("allow_unused", false);
  opt.finish();
  bool single = is_tensor(L, 2);
  return protect(L, [&] {
    variable_list grads;
    serve_lua_while(
        [&] { grads = torch::autograd::grad(outputs, inputs, grad_outputs, retain, create, allow_unused); });
    if (single) {
      push_tensor(L, grads[0]);
      return 1;
    }
    lua_createtable(L, static_cast<int>(grads.size()), 0);
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) {
        push_tensor(L, grads[i]);
      } else {
        lua_pushboolean(L, false);  // arrays cannot hold nil: false marks an unused input
      }
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  });
}

// Runs fn(...) with grad mode set to `enabled`, restoring it even on error.
int call_with_grad_mode(lua_State* L, bool enabled, int fn_index) {
  luaL_checktype(L, fn_index, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - fn_index;
  int base = fn_index - 1;
  int status;
  {
    at::AutoGradMode mode(enabled);
    status = pcall_traceback(L, nargs, LUA_MULTRET);
  }
  if (status != 0) return lua_error(L);
  return lua_gettop(L) - base;
}

int no_grad(lua_State* L) { return call_with_grad_mode(L, false, 1); }
int enable_grad(lua_State* L) { return call_with_grad_mode(L, true, 1); }

int set_grad_enabled(lua_State* L) {
  at::GradMode::set_enabled(lua_toboolean(L, 1));
  return 0;
}
int is_grad_enabled(lua_State* L) {
  lua_pushboolean(L, at::GradMode::is_enabled());
  return 1;
}

// ---- custom functions ------------------------------------------------------------
// Each application keeps its Lua ctx table alive through a registry reference
// owned by the autograd node. Nodes may die on any thread, so references are
// released later, on the Lua thread.
std::mutex g_dead_refs_mutex;
std::vector<int> g_dead_refs;

void release_dead_refs(lua_State* L) {
  std::vector<int> refs;
  {
    std::lock_guard<std::mutex> lock(g_dead_refs_mutex);
    refs.swap(g_dead_refs);
  }
  for (int r : refs) luaL_unref(L, LUA_REGISTRYINDEX, r);
}

// The node's handle on its Lua ctx: an empty tensor whose storage deleter
// queues the registry reference for release (saved_data holds IValues only).
at::Tensor make_ref_holder(int ref) {
  auto* cell = new int(ref);
  return at::from_blob(
      cell, {0},
      [](void* p) {
        auto* c = static_cast<int*>(p);
        {
          std::lock_guard<std::mutex> lock(g_dead_refs_mutex);
          g_dead_refs.push_back(*c);
        }
        delete c;
      },
      at::TensorOptions().dtype(at::kInt));
}

int holder_ref(const at::Tensor& holder) { return *static_cast<const int*>(holder.storage().data()); }

// What LuaFunction::forward needs of the _apply call that runs it (forward
// runs inside apply, on the Lua thread): the state, the ctx table's registry
// reference and the stack range of the Lua forward's arguments.
struct PendingCall {
  lua_State* L = nullptr;
  int ctx_ref = LUA_NOREF;
  int first_arg = 0;
  int last_arg = -1;
};

void push_ctx_table(lua_State* L, AutogradContext* ctx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, holder_ref(ctx->saved_data.at("lua_ctx").toTensor()));
  lua_pushlightuserdata(L, ctx);
  lua_setfield(L, -2, "__ctx");
}

// Ends a forward/backward call on every path, failed ones included: the ctx
// table may outlive the autograd node (a user can keep it), so its pointer to
// the node must not.
void leave_ctx(lua_State* L, int ctx_pos, int top) {
  lua_pushnil(L);
  lua_setfield(L, ctx_pos, "__ctx");
  lua_settop(L, top);
}

struct LuaFunction : public torch::autograd::Function<LuaFunction> {
  // `inputs` are the tensors autograd tracks; the Lua forward gets every
  // argument of the call.
  static variable_list forward(AutogradContext* ctx, at::TensorList /*inputs*/, const PendingCall* pending) {
    const PendingCall& call = *pending;
    lua_State* L = call.L;
    ctx->saved_data["lua_ctx"] = make_ref_holder(call.ctx_ref);
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, call.ctx_ref);
    lua_pushlightuserdata(L, ctx);
    lua_setfield(L, -2, "__ctx");
    lua_getfield(L, -1, "__forward");
    lua_pushvalue(L, -2);
    for (int i = call.first_arg; i <= call.last_arg; ++i) lua_pushvalue(L, i);
    int status = pcall_traceback(L, call.last_arg - call.first_arg + 2, LUA_MULTRET);
    const int ctx_pos = top + 1;
    if (status != 0) {
      std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in custom forward";
      leave_ctx(L, ctx_pos, top);
      throw std::runtime_error(msg);
    }
    variable_list outputs;
    for (int i = ctx_pos + 1; i <= lua_gettop(L); ++i) {
      at::Tensor* t = test_tensor(L, i);
      if (!t) {
        leave_ctx(L, ctx_pos, top);
        throw std::runtime_error("custom function forward must return Tensors (result " +
                                 std::to_string(i - ctx_pos) + " is not)");
      }
      outputs.push_back(*t);
    }
    leave_ctx(L, ctx_pos, top);
    return outputs;
  }

  // Called by the engine on any of its threads; the Lua part runs on the Lua thread.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list grads;
    run_on_lua_thread([&] { grads = lua_backward(ctx, grad_outputs); },
                      "the backward of a Lua autograd.Function");
    grads.emplace_back();  // forward's PendingCall argument has no gradient
    return grads;
  }

  static variable_list lua_backward(AutogradContext* ctx, const variable_list& grad_outputs) {
    lua_State* L = main_state();
    int top = lua_gettop(L);
    push_ctx_table(L, ctx);
    int ctx_pos = lua_gettop(L);
    lua_getfield(L, ctx_pos, "__backward");
    lua_pushvalue(L, ctx_pos);
    for (const auto& g : grad_outputs) push_tensor(L, g);
    int status = pcall_traceback(L, static_cast<int>(grad_outputs.size()) + 1, LUA_MULTRET);
    if (status != 0) {
      std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in custom backward";
      leave_ctx(L, ctx_pos, top);
      throw std::runtime_error(msg);
    }
    lua_getfield(L, ctx_pos, "__num_inputs");
    int num_inputs = static_cast<int>(lua_tonumber(L, -1));
    lua_pop(L, 1);
    // As PyTorch: extra results are accepted only when they are all nil.
    const int returned = lua_gettop(L) - ctx_pos;
    for (int i = num_inputs + 1; i <= returned; ++i) {
      const int idx = ctx_pos + i;
      if (!lua_isnil(L, idx) && !(lua_isboolean(L, idx) && !lua_toboolean(L, idx))) {
        lua_settop(L, top);
        throw std::runtime_error("custom function backward returned " + std::to_string(returned) +
                                 " gradients for " + std::to_string(num_inputs) +
                                 " Tensor argument(s) of forward (one gradient or nil per Tensor argument)");
      }
    }
    variable_list grads;
    for (int i = 0; i < num_inputs; ++i) {
      int idx = ctx_pos + 1 + i;
      if (idx <= lua_gettop(L)) {
        at::Tensor* t = test_tensor(L, idx);
        if (t) {
          if (!t->defined()) {
            lua_settop(L, top);
            throw std::runtime_error("custom function backward: result " + std::to_string(i + 1) +
                                     " is a freed Tensor (t:free() was called on it)");
          }
          grads.push_back(*t);
          continue;
        }
        if (!lua_isnil(L, idx) && !(lua_isboolean(L, idx) && !lua_toboolean(L, idx))) {
          leave_ctx(L, ctx_pos, top);
          throw std::runtime_error("custom function backward must return Tensors or nil (result " +
                                   std::to_string(i + 1) + ")");
        }
      }
      grads.emplace_back();
    }
    leave_ctx(L, ctx_pos, top);
    return grads;
  }
};

AutogradContext* check_ctx(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "__ctx");
  auto* ctx = static_cast<AutogradContext*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (!ctx) raise(L, "ctx methods are only valid inside forward/backward");
  return ctx;
}

int ctx_save_for_backward(lua_State* L) {
  AutogradContext* ctx = check_ctx(L);
  variable_list saved;
  for (int i = 2; i <= lua_gettop(L); ++i) saved.push_back(check_tensor(L, i));
  return protect(L, [&] {
    ctx->save_for_backward(saved);
    return 0;
  });
}

int ctx_saved_tensors(lua_State* L) {
  AutogradContext* ctx = check_ctx(L);
  return protect(L, [&] {
    variable_list saved = ctx->get_saved_variables();
    luaL_checkstack(L, static_cast<int>(saved.size()) + 1, "too many saved tensors");
    for (const auto& t : saved) push_tensor(L, t);
    return static_cast<int>(saved.size());
  });
}

int ctx_mark_non_differentiable(lua_State* L) {
  AutogradContext* ctx = check_ctx(L);
  variable_list ts;
  for (int i = 2; i <= lua_gettop(L); ++i) ts.push_back(check_tensor(L, i));
  return protect(L, [&] {
    ctx->mark_non_differentiable(ts);
    return 0;
  });
}

int ctx_set_materialize_grads(lua_State* L) {
  AutogradContext* ctx = check_ctx(L);
  ctx->set_materialize_grads(lua_toboolean(L, 2));
  return 0;
}

// torch.autograd._apply(forward, backward, ...): one application of a custom function.
int autograd_apply(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  release_dead_refs(L);
  variable_list inputs;
  for (int i = 3; i <= lua_gettop(L); ++i)
    if (at::Tensor* t = test_tensor(L, i)) inputs.push_back(*t);

  lua_newtable(L);  // ctx
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__forward");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "__backward");
  lua_pushnumber(L, static_cast<lua_Number>(inputs.size()));
  lua_setfield(L, -2, "__num_inputs");
  lua_getfield(L, LUA_REGISTRYINDEX, "kinema.autograd.ctx");
  lua_setmetatable(L, -2);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);

  // Tensor arguments reach forward as its inputs; all arguments (tensors and
  // others) reach the Lua forward in their original order.
  const PendingCall call{L, ref, 3, lua_gettop(L)};
  return protect(L, [&] {
    // TensorList (not a vector) so that autograd sees each tensor as an input.
    variable_list outputs = LuaFunction::apply(at::TensorList(inputs), &call);
    luaL_checkstack(L, static_cast<int>(outputs.size()) + 1, "too many outputs");
    for (const auto& t : outputs) push_tensor(L, t);
    return static_cast<int>(outputs.size());
  });
}

int open_autograd(lua_State* L) {
  // ctx metatable: methods on the per-call ctx table.
  lua_newtable(L);
  lua_newtable(L);
  static const luaL_Reg ctx_methods[] = {{"save_for_backward", ctx_save_for_backward},
                                         {"saved_tensors", ctx_saved_tensors},
                                         {"mark_non_differentiable", ctx_mark_non_differentiable},
                                         {"set_materialize_grads", ctx_set_materialize_grads},
                                         {nullptr, nullptr}};
  luaL_register(L, nullptr, ctx_methods);
  lua_setfield(L, -2, "__index");
  lua_setfield(L, LUA_REGISTRYINDEX, "kinema.autograd.ctx");

  lua_newtable(L);
  static const luaL_Reg functions[] = {{"backward", tensor_backward},
                                       {"grad", autograd_grad},
                                       {"no_grad", no_grad},
                                       {"enable_grad", enable_grad},
                                       {"set_grad_enabled", set_grad_enabled},
                                       {"is_grad_enabled", is_grad_enabled},
                                       {"_apply", autograd_apply},
                                       {nullptr, nullptr}};
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._autograd", open_autograd);

}  // namespace kinema::lua
