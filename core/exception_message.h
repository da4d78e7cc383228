#pragma once
// The message of a C++ exception as a user should read it: a c10::Error
// without the C++ backtrace that its what() carries. Plain C++ (no Lua), so
// the data commands (kinema synth, extract-regions) report errors the same way
// as the Lua boundary (core/runtime.h) does.
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace kinema {

inline std::string exception_message(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

}  // namespace kinema
