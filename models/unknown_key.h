#pragma once
// kinema's one "did you mean" rule for a misspelled name, shared by the
// bindings' options reader (core/runtime.h's Options) and the blocks' Config;
// kinema.util.check_options follows the same rule in Lua.
#include <string>
#include <vector>

namespace kinema {

// "WHERE: unknown KIND 'KEY' (did you mean 'NEAR'?)" when a known name is a
// typo away (at most a third of the longer name edited, counting a swap of two
// neighbours as one edit: "tua" is one edit from "tau"), else
// "WHERE: unknown KIND 'KEY' (known: a, b, ...)", or "(it takes no KINDs)".
std::string unknown_key_message(const std::string& where, const std::string& kind, const std::string& key,
                                const std::vector<std::string>& known);

}  // namespace kinema
