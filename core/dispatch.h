#pragma once
// Lua -> c10::Dispatcher bridge (DESIGN principle 1): any registered operator is
// callable from Lua by name; Lua values are converted by the schema's argument
// types, overloads are resolved by the values given, and the call is boxed.
#include <string>
#include <vector>

#include "core/runtime.h"

namespace kinema::lua {

struct OverloadSet;

// All overloads of "ns::name" (e.g. "aten::add"), or nullptr.
const OverloadSet* find_operator(const std::string& qualified_name);
// Re-scan the dispatcher (after a library registered new operators).
void refresh_operators();
// Names (without namespace) of the operators in a namespace, sorted.
std::vector<std::string> operator_names(const std::string& ns);
// Every overload's schema, one per line (for errors and :help).
std::string operator_signatures(const OverloadSet& ops);

// Call with the Lua values at stack indices [first, last]; a trailing table with
// string keys supplies keyword arguments. Returns the number of results pushed.
int call_operator(lua_State* L, const OverloadSet& ops, int first, int last);
// Push a Lua function that calls `ops` with all its arguments.
void push_operator_function(lua_State* L, const OverloadSet& ops);

}  // namespace kinema::lua
