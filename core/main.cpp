// The kinema executable: run scripts, chunks, tests, the REPL, and the data tools.
#include <cxxopts.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/commands.h"
#include "core/host.h"

namespace {

const char* kUsage =
    "usage:\n"
    "  kinema run FILE.lua [ARGS...]   run a Lua script (ARGS in the global `arg`)\n"
    "  kinema FILE.lua [ARGS...]       same as run\n"
    "  kinema -e 'CHUNK' [ARGS...]     run a chunk of Lua\n"
    "  kinema repl                     interactive REPL\n"
    "  kinema test [FILES|DIRS...]     run Lua test files (default: tests/lua)\n"
    "  kinema launch --nproc N FILE.lua [ARGS...]   N ranks of `kinema run` (torchrun's variables)\n"
    "  kinema inspect FILE...          tensors, metadata and optimizer state of a checkpoint or weight\n"
    "                                  file (.safetensors, .pt, .npz)\n"
    "  kinema report RUN_DIR [--out FILE.html]   one self-contained HTML page about a training run\n"
    "  kinema COMMAND --help           tools: launch, synth, extract-regions, preprocess\n"
    "  kinema --version                versions of kinema, LibTorch and LuaJIT\n";

int run_main(int argc, char** argv) {
  std::vector<std::string> rest(argv + 1, argv + argc);
  if (rest.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string& first = rest[0];
  if (first == "run" || (first.size() > 4 && first.compare(first.size() - 4, 4, ".lua") == 0)) {
    size_t file_at = first == "run" ? 1 : 0;
    if (rest.size() <= file_at) {
      std::cerr << "kinema run: missing FILE.lua\n" << kUsage;
      return 2;
    }
    kinema::Host host;
    return host.run_file(rest[file_at], {rest.begin() + file_at + 1, rest.end()});
  }
  if (first == "repl") {
    kinema::Host host;
    return host.run_repl();
  }
  if (first == "test") {
    kinema::Host host;
    std::vector<std::string> paths(rest.begin() + 1, rest.end());
    if (paths.empty()) paths.push_back("tests/lua");
    return host.run_tests(paths);
  }
  if (first == "inspect" || first == "report") {
    kinema::Host host;
    const char* chunk = first == "inspect" ? "require('kinema.cli').inspect_main(arg)"
                                           : "require('kinema.report').main(arg)";
    return host.run_chunk(chunk, {rest.begin() + 1, rest.end()});
  }
  if (const kinema::Command* cmd = kinema::find_command(first)) return cmd->run(argc - 1, argv + 1);

  // Top-level flags.
  cxxopts::Options options("kinema", "Video-language pre-training in Lua on LibTorch");
  options.add_options()("e,execute", "run a chunk of Lua", cxxopts::value<std::string>())(
      "v,version", "print versions")("h,help", "print usage");
  options.allow_unrecognised_options();
  auto parsed = options.parse(argc, argv);
  if (parsed.count("version")) {
    std::cout << kinema::version_string() << "\n";
    return 0;
  }
  if (parsed.count("execute")) {
    kinema::Host host;
    return host.run_chunk(parsed["execute"].as<std::string>(), parsed.unmatched());
  }
  if (parsed.count("help")) {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "kinema: unknown command '" << first << "'\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "kinema: " << e.what() << "\n";
    return 1;
  }
}
