#include "core/commands.h"

namespace kinema {

static std::vector<Command>& command_list() {
  static std::vector<Command> list;
  return list;
}

const std::vector<Command>& commands() { return command_list(); }

const Command* find_command(const std::string& name) {
  for (const Command& c : command_list())
    if (c.name == name) return &c;
  return nullptr;
}

CommandRegistrar::CommandRegistrar(Command command) { command_list().push_back(std::move(command)); }

}  // namespace kinema
