#pragma once
// Helpers shared by the core/io tests: a scratch directory, whole-file
// read/write, fixture paths, and a check that a call throws an error whose
// message contains all given fragments.
#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include "test_paths.h"

namespace kinema::io::testing {

inline std::string fixture(const std::string& name) { return std::string(KINEMA_FIXTURES) + "/" + name; }

struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kinema_io_XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  // Entries in the directory (to check no temporary files are left behind).
  size_t entries() const {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path),
                                             std::filesystem::directory_iterator()));
  }
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Runs f, which must throw; every fragment must occur in the message.
template <typename F>
void check_throws_containing(F&& f, std::initializer_list<std::string> fragments) {
  std::string message;
  bool threw = false;
  try {
    f();
  } catch (const c10::Error& e) {
    threw = true;
    message = e.msg();
  } catch (const std::exception& e) {
    threw = true;
    message = e.what();
  }
  REQUIRE_MESSAGE(threw, "expected an exception");
  for (const auto& fragment : fragments)
    CHECK_MESSAGE(message.find(fragment) != std::string::npos, "'", fragment,
                  "' not in message: ", message);
}

// Exact equality of dtype, shape and values.
inline bool same(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && at::equal(a, b);
}

}  // namespace kinema::io::testing
