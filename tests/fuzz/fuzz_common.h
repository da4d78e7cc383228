#pragma once
// libFuzzer targets: each feeds the input bytes to one of kinema's parsers
// through a file (the readers take paths, and so reach MappedFile/libzip as
// in real use). Any clean exception is an accepted outcome; a crash, a
// sanitizer report, a leak or a timeout is a bug.
#include <c10/util/Exception.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace kinema::fuzz {

// One scratch file per process and extension (readers dispatch on it),
// rewritten for every input; scripts/dev.sh fuzz points TMPDIR at the build folder.
inline std::string scratch_path(const char* ext) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/kinema_fuzz_" + std::to_string(::getpid()) + ext;
}

inline std::string write_input(const uint8_t* data, size_t size, const char* ext) {
  const std::string path = scratch_path(ext);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  if (std::fclose(f) != 0) std::abort();
  return path;
}

template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
    // Refusing bad input with an error is the correct outcome.
  }
}

}  // namespace kinema::fuzz
