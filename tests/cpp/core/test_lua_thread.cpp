// The Lua-thread rule (core/lua_thread.h) for Lua autograd Functions: a
// backward the engine runs on another thread (as its CUDA device threads do)
// is handed to the Lua thread while it serves, and refused with an error
// naming the rule when it does not; Lua is never entered from that thread.
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
std::vector<std::thread::id> g_seen;  // the threads the Lua backward ran on

int record_thread(lua_State*) {
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  g_seen.push_back(std::this_thread::get_id());
  return 0;
}

// sum(F(x)) for x = ones(3) requiring grad, F doubling with a Lua backward
// that records its thread (and raises when `fail` is set); returns {y, x}.
std::vector<at::Tensor> lua_graph(lua_State* L, bool fail) {
  lua_pushcfunction(L, record_thread);
  lua_setglobal(L, "record_thread");
  lua_pushboolean(L, fail);
  lua_setglobal(L, "fail_backward");
  const char* code =
      "local F = torch.autograd.Function{\n"
      "  forward = function(ctx, x) return x * 2 end,\n"
      "  backward = function(ctx, g)\n"
      "    record_thread()\n"
      "    if fail_backward then error('lua backward failed on purpose') end\n"
      "    return g * 2\n"
      "  end}\n"
      "local x = torch.ones(3, {requires_grad = true})\n"
      "return F(x):sum(), x\n";
  REQUIRE(luaL_dostring(L, code) == 0);
  std::vector<at::Tensor> out{kinema::lua::check_tensor(L, -2), kinema::lua::check_tensor(L, -1)};
  lua_pop(L, 2);
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  g_seen.clear();
  return out;
}

// Runs backward of y on a new thread, as the engine's device thread would;
// returns the error message ("" when none).
std::string backward_on_other_thread(const at::Tensor& y) {
  std::string error;
  std::thread other([&] {
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
  auto yx = lua_graph(host.state(), false);
  CHECK(served_backward(yx).empty());
  CHECK(at::allclose(yx[1].grad(), torch::full({3}, 2.0)));
}

TEST_CASE("lua autograd.Function: an error in a handed-over backward reaches the engine's caller") {
  kinema::Host host;
  auto yx = lua_graph(host.state(), true);
  CHECK(served_backward(yx).find("lua backward failed on purpose") != std::string::npos);
}

TEST_CASE("lua autograd.Function: a backward from another thread while the Lua thread does not serve is refused") {
  kinema::Host host;
  auto yx = lua_graph(host.state(), false);
  const std::string error = backward_on_other_thread(yx[0]);
  CHECK(error.find("the backward of a Lua autograd.Function was called on a thread other than the Lua thread "
                   "while the Lua thread is not waiting for it") != std::string::npos);
  CHECK_FALSE(yx[1].grad().defined());
  std::lock_guard<std::mutex> lock(g_seen_mutex);
  CHECK(g_seen.empty());  // Lua was not entered
}
