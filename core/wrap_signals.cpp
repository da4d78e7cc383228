// kinema._signals: stop requests for training loops, and the REPL's Ctrl-C
// (see core/signals.h).
#include <signal.h>

#include <vector>

#include "core/runtime.h"
#include "core/signals.h"

extern "C" {
#include <lauxlib.h>
}

namespace kinema::signals {

namespace {

volatile sig_atomic_t g_pending = 0;
volatile sig_atomic_t g_prompt_interrupt = 0;
lua_State* volatile g_evaluating = nullptr;

struct Saved {
  struct sigaction int_action, term_action;
};
std::vector<Saved> g_saved;  // one per catch_stop() in effect

void stop_hook(lua_State* L, lua_Debug*) {
  lua_sethook(L, nullptr, 0, 0);
  luaL_error(L, "interrupted");
}

void repl_handler(int) {
  if (lua_State* L = g_evaluating) {
    lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  } else {
    g_prompt_interrupt = 1;
  }
}

// A second signal goes to the handler that was installed before catch_stop().
void stop_handler(int sig) {
  if (g_pending == 0) {
    g_pending = sig;
    return;
  }
  const Saved& before = g_saved.back();
  const struct sigaction& prev = sig == SIGINT ? before.int_action : before.term_action;
  if (prev.sa_handler == SIG_IGN) return;
  if (prev.sa_handler != SIG_DFL && !(prev.sa_flags & SA_SIGINFO)) {
    prev.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void catch_stop() {
  Saved saved;
  struct sigaction action {};
  action.sa_handler = stop_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &saved.int_action);
  sigaction(SIGTERM, &action, &saved.term_action);
  g_saved.push_back(saved);
  g_pending = 0;
}

void release_stop() {
  if (g_saved.empty()) return;
  const Saved saved = g_saved.back();
  sigaction(SIGINT, &saved.int_action, nullptr);
  sigaction(SIGTERM, &saved.term_action, nullptr);
  g_saved.pop_back();
  g_pending = 0;
}

void release_all_stops() {
  while (!g_saved.empty()) release_stop();
}

int pending() { return g_pending; }

void install_repl_handler() {
  struct sigaction action {};
  action.sa_handler = repl_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no restart: readline's read returns and calls its signal hook
  sigaction(SIGINT, &action, nullptr);
}

void set_evaluating(lua_State* L) {
  g_evaluating = L;
  if (L == nullptr) g_prompt_interrupt = 0;
}

bool take_prompt_interrupt() {
  bool yes = g_prompt_interrupt != 0;
  g_prompt_interrupt = 0;
  return yes;
}

}  // namespace kinema::signals

namespace kinema::lua {

namespace {

int l_catch(lua_State*) {
  signals::catch_stop();
  return 0;
}

int l_release(lua_State*) {
  signals::release_stop();
  return 0;
}

// The pending signal's name ('SIGINT', 'SIGTERM') or nil.
int l_pending(lua_State* L) {
  const int sig = signals::pending();
  if (sig == 0) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal");
  }
  return 1;
}

int luaopen_kinema_signals(lua_State* L) {
  const luaL_Reg functions[] = {
      {"catch", l_catch},
      {"release", l_release},
      {"pending", l_pending},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._signals", luaopen_kinema_signals);

}  // namespace kinema::lua
