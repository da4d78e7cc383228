// core/io/atomic_file: the target is either the old file or the complete new
// one; failures leave no temporary files and name the path and the errno text.
#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "test_io_util.h"

#include <doctest/doctest.h>

#include <csignal>
#include <sys/resource.h>
#include <sys/stat.h>

#include <filesystem>

using namespace kinema::io;
using namespace kinema::io::testing;

TEST_CASE("atomic_file: creates, replaces and leaves no temporary file") {
  ScratchDir dir;
  const std::string path = dir.file("out.bin");
  write_file_atomic(path, std::string("first"));
  CHECK(read_bytes(path) == "first");
  write_file_atomic(path, std::string("second, longer"));
  CHECK(read_bytes(path) == "second, longer");
  write_file_atomic(path, std::string());
  CHECK(read_bytes(path).empty());
  CHECK(dir.entries() == 1);
  // Permissions follow the umask like a plain open(2) with 0666.
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  CHECK((st.st_mode & 0777) == (0666 & ~mask));
}

TEST_CASE("atomic_file: streaming writes are invisible until commit") {
  ScratchDir dir;
  const std::string path = dir.file("out.bin");
  write_file_atomic(path, std::string("old"));
  {
    AtomicFile file(path);
    file.write(std::string("new "));
    file.write("content", 7);
    CHECK(file.bytes_written() == 11);
    CHECK(read_bytes(path) == "old");
    CHECK(std::filesystem::exists(file.temp_path()));
    CHECK(file.temp_path().rfind(dir.path, 0) == 0);  // same directory: rename stays atomic
    file.commit();
  }
  CHECK(read_bytes(path) == "new content");
  CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: abandoned write (exception before commit) keeps the old file") {
  ScratchDir dir;
  const std::string path = dir.file("out.bin");
  write_file_atomic(path, std::string("old"));
  try {
    AtomicFile file(path);
    file.write(std::string("partial"));
    throw std::runtime_error("producer failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(read_bytes(path) == "old");
  CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: missing directory -> error naming the path and errno text") {
  ScratchDir dir;
  const std::string path = dir.file("no/such/dir/out.bin");
  check_throws_containing([&] { write_file_atomic(path, std::string("x")); },
                          {path, "No such file or directory"});
}

TEST_CASE("atomic_file: rename onto a directory fails, the directory and its content stay") {
  ScratchDir dir;
  const std::string path = dir.file("taken");
  std::filesystem::create_directory(path);
  write_bytes(path + "/inside", "keep");
  check_throws_containing([&] { write_file_atomic(path, std::string("x")); },
                          {path, "rename", "Is a directory"});
  CHECK(read_bytes(path + "/inside") == "keep");
  CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: a failing write(2) (file size limit) keeps the old file") {
  ScratchDir dir;
  const std::string path = dir.file("out.bin");
  write_file_atomic(path, std::string("old"));
  // RLIMIT_FSIZE makes write(2) fail with EFBIG once the temp file reaches 64 bytes.
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    write_file_atomic(path, std::string(1000, 'x'));
  } catch (const c10::Error& e) {
    message = e.msg();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("File too large") != std::string::npos);
  CHECK(read_bytes(path) == "old");
  CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: a writer refusing its input leaves the old checkpoint intact") {
  ScratchDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", at::ones({2})}});
  const std::string before = read_bytes(path);
  check_throws_containing(
      [&] { save_safetensors(path, {{"a", at::ones({2})}, {"b", at::Tensor()}}); },
      {path, "'b'", "undefined"});
  CHECK(read_bytes(path) == before);
  CHECK(dir.entries() == 1);
}
