#pragma once
// Helpers shared by the core/data tests: fixture paths and the message of the
// error a call raises.
#include <c10/util/Exception.h>

#include <string>

#include "test_paths.h"

namespace kinema::data::testing {

inline std::string fixture(const std::string& name) { return std::string(KINEMA_FIXTURES) + "/" + name; }

// Message of the c10::Error `fn` throws ("" if it does not throw).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace kinema::data::testing
