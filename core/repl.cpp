// The interactive REPL: readline editing with a persistent history, multi-line
// input, results printed without `return`, completion and :help through the
// Lua side (lua/kinema/repl.lua), errors reported without leaving (located at
// stdin:LINE), `_` holding the last value, Ctrl-C interrupting the running
// command (core/signals.h) or emptying the input line.
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "core/runtime.h"
#include "core/signals.h"

namespace kinema {

namespace {

lua_State* g_repl_state = nullptr;
bool g_prompt_cancelled = false;
std::vector<std::string> g_matches;

// Calls require('kinema.repl')[fn](arg) leaving its single result on the stack.
bool call_repl_function(lua_State* L, const char* fn, const std::string& arg) {
  lua_getglobal(L, "require");
  lua_pushstring(L, "kinema.repl");
  if (lua::pcall_traceback(L, 1, 1) != 0) return false;
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushlstring(L, arg.data(), arg.size());
  return lua::pcall_traceback(L, 1, 1) == 0;
}

char* completion_generator(const char*, int state) {
  static size_t next = 0;
  if (state == 0) next = 0;
  if (next < g_matches.size()) return strdup(g_matches[next++].c_str());
  return nullptr;
}

char** complete(const char* text, int, int) {
  rl_attempted_completion_over = 1;  // never fall back to file names
  g_matches.clear();
  lua_State* L = g_repl_state;
  int top = lua_gettop(L);
  if (call_repl_function(L, "complete", text) && lua_istable(L, -1)) {
    int n = static_cast<int>(lua_objlen(L, -1));
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      if (const char* s = lua_tostring(L, -1)) g_matches.emplace_back(s);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  if (g_matches.empty()) return nullptr;
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, completion_generator);
}

bool read_line(const char* prompt, std::string& out, bool interactive) {
  if (interactive) {
    char* line = readline(prompt);
    if (!line) return false;
    out = line;
    std::free(line);
    return true;
  }
  std::cout << prompt << std::flush;
  return static_cast<bool>(std::getline(std::cin, out));
}

// Compiles `code`, preferring `return code` so expressions print their value.
// Returns 0 ok, 1 incomplete (needs more lines), 2 syntax error (message on stack).
int compile(lua_State* L, const std::string& code) {
  std::string expr = "return " + code;
  if (luaL_loadbuffer(L, expr.data(), expr.size(), "=stdin") == 0) return 0;
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, code.data(), code.size(), "=stdin") == 0) return 0;
  const char* msg = lua_tostring(L, -1);
  if (msg && std::strstr(msg, "<eof>")) {
    lua_pop(L, 1);
    return 1;
  }
  return 2;
}

// The traceback handler of typed commands: an error raised inside a C function
// carries no position, so the innermost line of the typed chunk is put first.
int repl_traceback_handler(lua_State* L) {
  const char* raw = lua_tostring(L, 1);
  std::string msg = raw ? raw : "(error object is not a string)";
  if (msg.rfind("stdin:", 0) != 0) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); ++level) {
      if (lua_getinfo(L, "Sl", &ar) && std::strcmp(ar.source, "=stdin") == 0 && ar.currentline > 0) {
        msg = "stdin:" + std::to_string(ar.currentline) + ": " + msg;
        break;
      }
    }
  }
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_pushstring(L, msg.c_str());
  lua_pushinteger(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

// Runs the compiled chunk on top of the stack; Ctrl-C interrupts it. The
// chunk (and every function it defines) runs in LuaJIT's interpreter: compiled
// traces never look at the hook, so a typed `while true do end` could not be
// interrupted otherwise.
int run_command(lua_State* L) {
  lua_getglobal(L, "jit");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "off");
    lua_pushvalue(L, -3);
    lua_pushboolean(L, 1);
    if (lua_pcall(L, 2, 0, 0) != 0) lua_pop(L, 1);
  }
  lua_pop(L, 1);
  int base = lua_gettop(L);
  lua_pushcfunction(L, repl_traceback_handler);
  lua_insert(L, base);
  signals::set_evaluating(L);
  int status = lua_pcall(L, 0, LUA_MULTRET, base);
  signals::set_evaluating(nullptr);
  signals::release_all_stops();
  lua_sethook(L, nullptr, 0, 0);  // a Ctrl-C that came after the last instruction
  lua_remove(L, base);
  return status;
}

// At the prompt, Ctrl-C ends the line being typed (readline calls this when
// the signal interrupts its read).
int prompt_signal_hook() {
  if (signals::take_prompt_interrupt()) {
    g_prompt_cancelled = true;
    rl_replace_line("", 0);
    rl_crlf();
    rl_set_prompt("kinema> ");
    rl_on_new_line();
    rl_redisplay();
  }
  return 0;
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.kinema_history";
}

}  // namespace

int run_repl(lua_State* L) {
  g_repl_state = L;
  const bool interactive = isatty(STDIN_FILENO);
  const std::string history = history_path();
  if (interactive) {
    rl_readline_name = "kinema";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = const_cast<char*>(" \t\n\"\\'`@$><=;|&{(,+-*/%^#[");
    using_history();
    stifle_history(2000);
    read_history(history.c_str());
    rl_catch_signals = 0;  // SIGINT is ours (below); readline only restarts its read
    rl_signal_event_hook = prompt_signal_hook;
    std::printf("kinema REPL — :help NAME for help, Ctrl-C interrupts, Ctrl-D quits\n");
  }
  signals::install_repl_handler();
  std::string buffer, line;
  while (read_line(buffer.empty() ? "kinema> " : "     >> ", line, interactive)) {
    if (g_prompt_cancelled) {  // Ctrl-C at the prompt dropped the lines typed before
      g_prompt_cancelled = false;
      buffer.clear();
    }
    if (buffer.empty() && line.empty()) continue;
    if (buffer.empty() && line.rfind(":help", 0) == 0) {
      std::string name = line.substr(5);
      name.erase(0, name.find_first_not_of(" \t"));
      if (interactive) add_history(line.c_str());
      if (!call_repl_function(L, "help", name)) {
        std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      } else if (const char* text = lua_tostring(L, -1)) {
        std::printf("%s\n", text);
      }
      lua_settop(L, 0);
      continue;
    }
    buffer += buffer.empty() ? line : "\n" + line;
    int status = compile(L, buffer);
    if (status == 1) continue;  // incomplete: read more lines
    if (interactive) add_history(buffer.c_str());
    buffer.clear();
    if (status == 2) {
      std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      lua_settop(L, 0);
      continue;
    }
    int base = lua_gettop(L) - 1;
    if (run_command(L) != 0) {
      std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      lua_settop(L, 0);
      continue;
    }
    int nresults = lua_gettop(L) - base;
    if (nresults > 0) {
      lua_pushvalue(L, base + 1);  // `_` holds the last value
      lua_setglobal(L, "_");
      // Print through kinema.repl.show(...), which formats tables and tensors.
      lua_getglobal(L, "require");
      lua_pushstring(L, "kinema.repl");
      if (lua::pcall_traceback(L, 1, 1) == 0) {
        lua_getfield(L, -1, "show");
        lua_remove(L, -2);
        lua_insert(L, base + 1);
        if (lua::pcall_traceback(L, nresults, 0) != 0) std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      } else {
        std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      }
    }
    std::fflush(stdout);
    lua_settop(L, 0);
  }
  if (interactive) {
    write_history(history.c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace kinema
