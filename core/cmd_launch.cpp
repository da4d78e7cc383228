// `kinema launch`: torchrun's job for one node without Python. Starts N
// `kinema run SCRIPT` processes with torchrun's environment (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), lets them write to
// the launcher's stdout/stderr, and waits. When a rank fails the others are
// stopped (SIGTERM, then SIGKILL after a grace period) and its exit code is
// returned, so a crashed rank never leaves its peers hanging in a collective.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "core/commands.h"

extern char** environ;

namespace kinema {

namespace {

const char* kLaunchUsage =
    "usage: kinema launch [OPTIONS] SCRIPT.lua [ARGS...]\n"
    "  --nproc N           processes (ranks) on this node (default 1)\n"
    "  --nnodes M          nodes in the job (default 1)\n"
    "  --node-rank K       this node's index (default 0); ranks are K*N .. K*N+N-1\n"
    "  --master-addr A     rendezvous host (default 127.0.0.1)\n"
    "  --master-port P     rendezvous port (default: a free port; required with --nnodes > 1)\n"
    "Each rank runs `kinema run SCRIPT.lua ARGS...` with RANK, WORLD_SIZE, LOCAL_RANK,\n"
    "LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (and OMP_NUM_THREADS = cores / N when\n"
    "unset); call require('kinema.dist').init() in the script.\n";

constexpr auto kGracePeriod = std::chrono::seconds(5);

// Children's pids for the signal handler (0: exited). Written before the
// handlers are installed, then only read there.
std::vector<pid_t> g_children;

void forward_signal(int sig) {
  for (pid_t pid : g_children)
    if (pid > 0) kill(pid, sig);
}

int parse_count(const std::string& flag, const std::string& value, int min, int max) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min || v > max)
    throw std::invalid_argument("option '" + flag + "' must be an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "], got '" + value + "'");
  return static_cast<int>(v);
}

// A port nobody listens on now (the kernel's pick for port 0). Rank 0's store
// binds it moments later; a collision is possible but unlikely.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  close(fd);
  if (!ok) throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(err));
  return ntohs(addr.sin_port);
}

// The parent's environment with `overrides` (NAME=value) replacing their names.
std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    const bool replaced = std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) {
      return o.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int launch_main(int argc, char** argv) {
  int nproc = 1, nnodes = 1, node_rank = 0, master_port = -1;
  std::string master_addr = "127.0.0.1";
  int i = 1;
  for (; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << kLaunchUsage;
      return 0;
    }
    if (flag == "--") {
      ++i;
      break;
    }
    if (flag.rfind("--", 0) != 0) break;  // the script
    std::string value;
    const size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw std::invalid_argument("option '" + flag + "' needs a value");
      value = argv[++i];
    }
    if (flag == "--nproc" || flag == "--nproc-per-node" || flag == "--nproc_per_node") {
      nproc = parse_count(flag, value, 1, 1024);
    } else if (flag == "--nnodes") {
      nnodes = parse_count(flag, value, 1, 65536);
    } else if (flag == "--node-rank" || flag == "--node_rank") {
      node_rank = parse_count(flag, value, 0, 65535);
    } else if (flag == "--master-addr" || flag == "--master_addr") {
      master_addr = value;
    } else if (flag == "--master-port" || flag == "--master_port") {
      master_port = parse_count(flag, value, 1, 65535);
    } else {
      throw std::invalid_argument("unknown option '" + flag + "'");
    }
  }
  if (i >= argc) {
    std::cerr << "kinema launch: missing SCRIPT.lua\n" << kLaunchUsage;
    return 2;
  }
  if (node_rank >= nnodes)
    throw std::invalid_argument("option '--node-rank' = " + std::to_string(node_rank) + " must be below --nnodes");
  if (master_port < 0) {
    if (nnodes > 1) throw std::invalid_argument("option '--master-port' is required with --nnodes > 1");
    master_port = free_port();
  }
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const int world_size = nnodes * nproc;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const bool set_threads = std::getenv("OMP_NUM_THREADS") == nullptr && nproc > 1;

  g_children.assign(nproc, 0);
  for (int local = 0; local < nproc; ++local) {
    std::vector<std::string> args{exe, "run"};
    args.insert(args.end(), argv + i, argv + argc);
    std::vector<std::string> overrides{
        "RANK=" + std::to_string(node_rank * nproc + local), "WORLD_SIZE=" + std::to_string(world_size),
        "LOCAL_RANK=" + std::to_string(local),               "LOCAL_WORLD_SIZE=" + std::to_string(nproc),
        "MASTER_ADDR=" + master_addr,                        "MASTER_PORT=" + std::to_string(master_port)};
    // As torchrun: N ranks with all cores each would oversubscribe the node.
    if (set_threads) overrides.push_back("OMP_NUM_THREADS=" + std::to_string(std::max(1u, cores / nproc)));
    std::vector<std::string> env = child_environment(overrides);
    std::vector<char*> c_args = c_strings(args), c_env = c_strings(env);
    const pid_t pid = fork();
    if (pid < 0) {
      const int err = errno;
      forward_signal(SIGTERM);
      throw std::runtime_error(std::string("fork failed for local rank ") + std::to_string(local) + ": " +
                               std::strerror(err));
    }
    if (pid == 0) {
      execve(exe.c_str(), c_args.data(), c_env.data());
      std::perror(("kinema launch: cannot execute " + exe).c_str());
      _exit(127);
    }
    g_children[local] = pid;
  }
  signal(SIGINT, forward_signal);
  signal(SIGTERM, forward_signal);

  int result = 0;
  int running = nproc;
  bool stopping = false;
  auto kill_deadline = std::chrono::steady_clock::now();
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;  // no children left
    if (pid == 0) {      // stopping and nobody exited yet
      if (std::chrono::steady_clock::now() > kill_deadline) forward_signal(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto it = std::find(g_children.begin(), g_children.end(), pid);
    if (it == g_children.end()) continue;
    const int local = static_cast<int>(it - g_children.begin());
    *it = 0;
    --running;
    if (exit_code(status) == 0) continue;
    const std::string who = "kinema launch: rank " + std::to_string(node_rank * nproc + local) + " (local rank " +
                            std::to_string(local) + ", pid " + std::to_string(pid) + ") ";
    if (!stopping) {
      result = exit_code(status);
      std::cerr << who << describe_status(status);
      if (running > 0) std::cerr << "; stopping the other " << running << " rank(s)";
      std::cerr << "\n";
      stopping = true;
      kill_deadline = std::chrono::steady_clock::now() + kGracePeriod;
      forward_signal(SIGTERM);
    } else if (!(WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL))) {
      // Failed on its own too (often a peer's error: the first rank's exit
      // broke its connections); shown so the first failure stays findable.
      std::cerr << who << "also " << describe_status(status) << "\n";
    }
  }
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  return result;
}

const CommandRegistrar registrar({"launch", "run a Lua script as N ranks (torchrun's environment)",
                                  [](int argc, char** argv) {
                                    try {
                                      return launch_main(argc, argv);
                                    } catch (const std::exception& e) {
                                      std::cerr << "kinema launch: " << e.what() << "\n";
                                      return 2;
                                    }
                                  }});

}  // namespace

}  // namespace kinema
