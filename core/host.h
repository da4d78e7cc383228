#pragma once
// The kinema host: one Lua state with the standard library (lua/) on its path,
// the native modules preloaded, and `torch` as a global.
#include <string>
#include <vector>

struct lua_State;

namespace kinema {

class Host {
 public:
  Host();
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  lua_State* state() const { return L_; }
  // Directory holding the Lua standard library (lua/ of the source tree, or
  // share/kinema/lua of an installation).
  const std::string& lua_dir() const { return lua_dir_; }

  // Each returns a process exit code; errors are printed to stderr with a traceback.
  int run_file(const std::string& path, const std::vector<std::string>& args);
  int run_chunk(const std::string& code, const std::vector<std::string>& args);
  int run_tests(const std::vector<std::string>& paths);
  int run_repl();

 private:
  void set_args(const std::string& script, const std::vector<std::string>& args);
  int report(int status);
  lua_State* L_;
  std::string lua_dir_;
};

std::string version_string();

}  // namespace kinema
