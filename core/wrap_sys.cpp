// File-system and process primitives for Lua (kinema._sys; lua/kinema/sys.lua
// re-exports them). Lua's io.popen/os.execute go through /bin/sh, so a path
// holding `$(...)`, quotes or spaces would be run or split by the shell: every
// file operation the Lua layer needs is here instead, taking paths as plain
// strings, and programs are started with an argument vector, never a command line.
//   mkdir(path)              -- mkdir -p; true
//   list_dir(path)           -- sorted entry names (no '.' or '..')
//   exists(path), is_dir(path), is_file(path)   -- booleans (symlinks followed)
//   is_symlink(path)         -- boolean (the link itself)
//   file_size(path)          -- bytes
//   remove(path)             -- a file or an empty directory; false when absent
//   remove_tree(path)        -- rm -r (symlinks removed, never followed); entries removed
//   rename(from, to)         -- atomic within a file system
//   truncate(path, size)     -- cut a file to size bytes
//   fsync(path)              -- flush a file's data to the device
//   spawn(argv[, {stdin=, stdout=, stderr=}]) -- run a program (PATH searched),
//                               wait, return its exit status (128+N on signal N;
//                               a program that cannot be started raises);
//                               streams are redirected to paths ('/dev/null')
// Failures raise "kinema.sys.FN: cannot ... 'path': reason".
#include "core/runtime.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

extern char** environ;

namespace kinema::lua {
namespace {

namespace fs = std::filesystem;

std::string check_path(lua_State* L, int idx, const char* fn) {
  if (lua_type(L, idx) != LUA_TSTRING) {
    raise(L, std::string("kinema.sys.") + fn + ": bad argument #" + std::to_string(idx) +
                 " (path string expected, got " + luaL_typename(L, idx) + ")");
  }
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  std::string path(s, len);
  if (path.empty()) raise(L, std::string("kinema.sys.") + fn + ": empty path");
  if (path.find('\0') != std::string::npos) {
    raise(L, std::string("kinema.sys.") + fn + ": path holds a NUL byte");
  }
  return path;
}

[[noreturn]] void fail(lua_State* L, const char* fn, const std::string& what, const std::string& path,
                       const std::string& reason) {
  raise(L, std::string("kinema.sys.") + fn + ": cannot " + what + " '" + path + "': " + reason);
}

int sys_mkdir(lua_State* L) {
  const std::string path = check_path(L, 1, "mkdir");
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) fail(L, "mkdir", "create directory", path, ec.message());
  if (!fs::is_directory(path, ec)) fail(L, "mkdir", "create directory", path, "it exists and is not a directory");
  lua_pushboolean(L, 1);
  return 1;
}

int sys_list_dir(lua_State* L) {
  const std::string path = check_path(L, 1, "list_dir");
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(path, ec), end;
  for (; !ec && it != end; it.increment(ec)) names.push_back(it->path().filename().string());
  if (ec) fail(L, "list_dir", "list directory", path, ec.message());
  std::sort(names.begin(), names.end());
  lua_createtable(L, static_cast<int>(names.size()), 0);
  for (size_t i = 0; i < names.size(); ++i) {
    lua_pushlstring(L, names[i].data(), names[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

int sys_exists(lua_State* L) {
  struct stat st;
  lua_pushboolean(L, ::stat(check_path(L, 1, "exists").c_str(), &st) == 0);
  return 1;
}

int sys_is_dir(lua_State* L) {
  struct stat st;
  lua_pushboolean(L, ::stat(check_path(L, 1, "is_dir").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  return 1;
}

int sys_is_file(lua_State* L) {
  struct stat st;
  lua_pushboolean(L, ::stat(check_path(L, 1, "is_file").c_str(), &st) == 0 && S_ISREG(st.st_mode));
  return 1;
}

int sys_is_symlink(lua_State* L) {
  struct stat st;
  lua_pushboolean(L, ::lstat(check_path(L, 1, "is_symlink").c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  return 1;
}

int sys_file_size(lua_State* L) {
  const std::string path = check_path(L, 1, "file_size");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail(L, "file_size", "stat", path, std::strerror(errno));
  lua_pushnumber(L, static_cast<lua_Number>(st.st_size));
  return 1;
}

int sys_remove(lua_State* L) {
  const std::string path = check_path(L, 1, "remove");
  if (::remove(path.c_str()) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (errno == ENOENT) {
    lua_pushboolean(L, 0);
    return 1;
  }
  fail(L, "remove", "remove", path, std::strerror(errno));
}

int sys_remove_tree(lua_State* L) {
  const std::string path = check_path(L, 1, "remove_tree");
  std::error_code ec;
  const auto removed = fs::remove_all(path, ec);  // removes symlinks themselves, never their targets
  if (ec) fail(L, "remove_tree", "remove", path, ec.message());
  lua_pushnumber(L, static_cast<lua_Number>(removed));
  return 1;
}

int sys_rename(lua_State* L) {
  const std::string from = check_path(L, 1, "rename");
  const std::string to = check_path(L, 2, "rename");
  if (::rename(from.c_str(), to.c_str()) != 0) {
    fail(L, "rename", "rename", from, std::string("to '") + to + "': " + std::strerror(errno));
  }
  lua_pushboolean(L, 1);
  return 1;
}

int sys_truncate(lua_State* L) {
  const std::string path = check_path(L, 1, "truncate");
  const lua_Number size = luaL_checknumber(L, 2);
  if (!(size >= 0) || size != static_cast<lua_Number>(static_cast<off_t>(size))) {
    raise(L, "kinema.sys.truncate: bad argument #2 'size' (a non-negative integer expected)");
  }
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) fail(L, "truncate", "truncate", path, std::strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

int sys_fsync(lua_State* L) {
  const std::string path = check_path(L, 1, "fsync");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(L, "fsync", "open", path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some special files (pipes, /dev/null) cannot be synced; that is not a lost write.
  if (rc != 0 && err != EINVAL && err != EROFS) fail(L, "fsync", "sync", path, std::strerror(err));
  lua_pushboolean(L, 1);
  return 1;
}

// spawn(argv[, {stdin=path, stdout=path, stderr=path}]) -> exit status.
int sys_spawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  std::vector<std::string> args;
  const int n = static_cast<int>(lua_objlen(L, 1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      raise(L, "kinema.sys.spawn: argv[" + std::to_string(i) + "] is a " + luaL_typename(L, -1) +
                   ", not a string");
    }
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    args.emplace_back(s, len);
    lua_pop(L, 1);
    if (args.back().find('\0') != std::string::npos) {
      raise(L, "kinema.sys.spawn: argv[" + std::to_string(i) + "] holds a NUL byte");
    }
  }
  if (args.empty() || args[0].empty()) raise(L, "kinema.sys.spawn: argv[1] (the program) is required");
  const char* stream_names[3] = {"stdin", "stdout", "stderr"};
  std::string redirect[3];
  Options opt(L, 2, "kinema.sys.spawn");
  for (int s = 0; s < 3; ++s) redirect[s] = opt.string(stream_names[s], "");
  opt.finish();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int s = 0; s < 3; ++s) {
    if (redirect[s].empty()) continue;
    const int flags = s == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_TRUNC);
    posix_spawn_file_actions_addopen(&actions, s, redirect[s].c_str(), flags, 0666);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail(L, "spawn", "run", args[0], std::strerror(rc));
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited < 0) fail(L, "spawn", "wait for", args[0], std::strerror(errno));
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  lua_pushinteger(L, code);
  return 1;
}

int open_sys(lua_State* L) {
  static const luaL_Reg fns[] = {
      {"mkdir", sys_mkdir},         {"list_dir", sys_list_dir},       {"exists", sys_exists},
      {"is_dir", sys_is_dir},       {"is_file", sys_is_file},         {"is_symlink", sys_is_symlink},
      {"file_size", sys_file_size},
      {"remove", sys_remove},       {"remove_tree", sys_remove_tree}, {"rename", sys_rename},
      {"truncate", sys_truncate},   {"fsync", sys_fsync},             {"spawn", sys_spawn},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  luaL_register(L, nullptr, fns);
  return 1;
}

KINEMA_LUA_MODULE("kinema._sys", open_sys);

}  // namespace
}  // namespace kinema::lua
