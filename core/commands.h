#pragma once
// Subcommands of the kinema executable other than the Lua ones (run, repl, test):
// data tools such as `kinema synth`. Each registers itself from its own file.
#include <functional>
#include <string>
#include <vector>

namespace kinema {

struct Command {
  std::string name;
  std::string summary;
  std::function<int(int argc, char** argv)> run;  // argv[0] is the command name
};

const Command* find_command(const std::string& name);
const std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command command);
};

}  // namespace kinema
