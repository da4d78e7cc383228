// The Lua-thread rule (core/lua_thread.h) for Lua autograd Functions: a
// backward the engine runs on another thread (as its CUDA device threads do)
// is handed to the Lua thread while it serves, and refused with an error
// naming the rule when it does not; Lua is never entered from that thread. A
// backward the Lua backward starts itself runs on the thread that handed it
// over (reentrant for the engine, as on a CUDA device thread), not behind it.
#include "core/host.h"
#include "core/lua_thread.h"
#include "core/runtime.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex g_seen_mutex;
std::vector<std::thread::id> g_seen;   // the threads the Lua backward ran on
std::vector<std::thread::id> g_probe;  // the threads ProbeFunction's backward ran on
std::thread::id g_other;               // the thread backward_on_other_thread started

// Identity whose backward records the engine thread it runs on.
struct ProbeFunction : public torch::autograd::Function<ProbeFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext*, const at::Tensor& x) {
    return {x * 1};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list g) {
    std::lock_guard<std::mutex> lock(g_seen_mutex);
    g_probe.push_back(std::this_thread::get_id());
    return g;
  }
};

int probe(lua_State* L) {
  kinema::lua::push_tensor(L, ProbeFunction::apply(kinema::lua::check_tensor(L, 1))[0]);
  return 1;
}

int record_thread(lua_State*) {
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  g_seen.push_back(std::this_thread::get_id());
  return 0;
}

// sum(F(x)) for x = ones(3) requiring grad, F doubling with a Lua backward
// that records its thread, then (mode) raises ("fail") or runs a backward of
// its own through ProbeFunction ("nested"); returns {y, x}.
std::vector<at::Tensor> lua_graph(lua_State* L, const char* mode = "") {
  lua_pushcfunction(L, record_thread);
  lua_setglobal(L, "record_thread");
  lua_pushcfunction(L, probe);
  lua_setglobal(L, "probe");
  lua_pushstring(L, mode);
  lua_setglobal(L, "mode");
  const char* code =
      "local F = torch.autograd.Function{\n"
      "  forward = function(ctx, x) return x * 2 end,\n"
      "  backward = function(ctx, g)\n"
      "    record_thread()\n"
      "    if mode == 'fail' then error('lua backward failed on purpose') end\n"
      "    if mode == 'nested' then\n"
      "      local inner = torch.ones(2)\n"
      "      inner.requires_grad = true\n"
      "      probe(inner):sum():backward()\n"
      "      assert(inner.grad:sum():item() == 2)\n"
      "    end\n"
      "    return g * 2\n"
      "  end}\n"
      "local x = torch.ones(3, {requires_grad = true})\n"
      "return F(x):sum(), x\n";
  REQUIRE(luaL_dostring(L, code) == 0);
  std::vector<at::Tensor> out{kinema::lua::check_tensor(L, -2), kinema::lua::check_tensor(L, -1)};
  lua_pop(L, 2);
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  g_seen.clear();
  g_probe.clear();
  return out;
}

// Runs backward of y on a new thread, as the engine's device thread would;
// returns the error message ("" when none).
std::string backward_on_other_thread(const at::Tensor& y) {
  std::string error;
  std::thread other([&] {
    g_other = std::this_thread::get_id();
    try {
      torch::autograd::backward({y});
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  other.join();
  return error;
}

}  // namespace

// Backward of the Lua graph from another thread while the Lua thread serves:
// the error message ("" when none); the Lua backward must have run once, here.
static std::string served_backward(const std::vector<at::Tensor>& yx) {
  std::string error;
  kinema::lua::serve_lua_while([&] { error = backward_on_other_thread(yx[0]); });
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  REQUIRE(g_seen.size() == 1);
  CHECK(g_seen[0] == std::this_thread::get_id());
  return error;
}

TEST_CASE("lua autograd.Function: a backward from another thread runs on the Lua thread while it serves") {
  kinema::Host host;
  auto yx = lua_graph(host.state());
  CHECK(served_backward(yx).empty());
  CHECK(at::allclose(yx[1].grad(), torch::full({3}, 2.0)));
}

TEST_CASE("lua autograd.Function: an error in a handed-over backward reaches the engine's caller") {
  kinema::Host host;
  auto yx = lua_graph(host.state(), "fail");
  CHECK(served_backward(yx).find("lua backward failed on purpose") != std::string::npos);
}

TEST_CASE("lua autograd.Function: a backward started inside a handed-over Lua backward runs on the handing thread") {
  kinema::Host host;
  auto yx = lua_graph(host.state(), "nested");
  CHECK(served_backward(yx).empty());
  CHECK(at::allclose(yx[1].grad(), torch::full({3}, 2.0)));
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  REQUIRE(g_probe.size() == 1);
  CHECK(g_probe[0] == g_other);  // not a new thread queued behind the waiting node
}

TEST_CASE("lua autograd.Function: a backward from another thread while the Lua thread does not serve is refused") {
  kinema::Host host;
  auto yx = lua_graph(host.state());
  const std::string error = backward_on_other_thread(yx[0]);
  CHECK(error.find("the backward of a Lua autograd.Function was called on a thread other than the Lua thread "
                   "while the Lua thread is not waiting for it") != std::string::npos);
  CHECK_FALSE(yx[1].grad().defined());
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  CHECK(g_seen.empty());  // Lua was not entered
}
