// core/io/npz: files written by numpy (tests/fixtures/make_io_fixture.py) read
// with the values the script's formulas give; kinema-written files round-trip
// and match numpy's bytes; corrupt input fails with the path in the message.
#include "core/io/npz.h"
#include "test_io_util.h"

#include <doctest/doctest.h>

#include <random>

using namespace kinema::io;
using namespace kinema::io::testing;

namespace {
at::Tensor iota(int64_t n, at::ScalarType t = at::kDouble) {
  return at::arange(n, at::TensorOptions().dtype(at::kDouble)).to(t);
}
}  // namespace

TEST_CASE("npy: numpy-written arrays of every supported dtype") {
  auto f4 = load_npy(fixture("io_f4.npy"));
  CHECK(same(f4, (iota(6) * 0.5 - 1).reshape({2, 3}).to(at::kFloat)));

  auto f8 = load_npy(fixture("io_f8_be.npy"));  // big-endian on disk
  CHECK(same(f8, (iota(6) / 3).reshape({2, 3})));

  auto i8 = load_npy(fixture("io_i8_fortran.npy"));  // Fortran order on disk
  CHECK(same(i8, (iota(6, at::kLong) * 10 - 7).reshape({2, 3})));
  CHECK(i8.is_contiguous());

  auto f3 = load_npy(fixture("io_f4_fortran3d.npy"));
  CHECK(same(f3, iota(24, at::kFloat).reshape({2, 3, 4})));

  CHECK(same(load_npy(fixture("io_f2.npy")), (iota(4) - 1.5).to(at::kHalf)));
  CHECK(same(load_npy(fixture("io_i4_be.npy")),
             at::tensor({1, -2, 2147483647}, at::TensorOptions().dtype(at::kInt))));
  CHECK(same(load_npy(fixture("io_i2.npy")), at::tensor({-32768, 0, 32767}).to(at::kShort)));
  CHECK(same(load_npy(fixture("io_i1.npy")), at::tensor({-128, 5}).to(at::kChar)));
  CHECK(same(load_npy(fixture("io_u1.npy")), at::tensor({0, 200, 255}).to(at::kByte)));
  CHECK(same(load_npy(fixture("io_b1.npy")),
             at::tensor({1, 0, 0, 1}).to(at::kBool).reshape({2, 2})));

  auto scalar = load_npy(fixture("io_scalar.npy"));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item<double>() == 2.5);

  auto empty = load_npy(fixture("io_empty.npy"));
  CHECK(empty.sizes() == at::IntArrayRef({0, 4}));
  CHECK((empty.scalar_type() == at::kFloat));
}

TEST_CASE("npy: object arrays and non-npy files are refused with the path") {
  const std::string object = fixture("io_object.npy");
  check_throws_containing([&] { load_npy(object); }, {object, "object arrays"});
  const std::string not_npy = fixture("io_reference.safetensors");
  check_throws_containing([&] { load_npy(not_npy); }, {not_npy, "not a .npy file"});
  check_throws_containing([&] { load_npy("/nonexistent/x.npy"); },
                          {"/nonexistent/x.npy", "No such file"});
}

TEST_CASE("npy: kinema writes the same bytes as numpy") {
  // numpy 1.24 wrote io_f4.npy from the same values (header padded to 64 bytes).
  ScratchDir dir;
  const std::string path = dir.file("f4.npy");
  save_npy(path, (iota(6) * 0.5 - 1).reshape({2, 3}).to(at::kFloat));
  CHECK(read_bytes(path) == read_bytes(fixture("io_f4.npy")));
  save_npy(path, at::scalar_tensor(2.5, at::TensorOptions().dtype(at::kDouble)));
  CHECK(read_bytes(path) == read_bytes(fixture("io_scalar.npy")));
  save_npy(path, at::zeros({0, 4}));
  CHECK(read_bytes(path) == read_bytes(fixture("io_empty.npy")));
  save_npy(path, at::tensor({0, 200, 255}).to(at::kByte));
  CHECK(read_bytes(path) == read_bytes(fixture("io_u1.npy")));
}

TEST_CASE("npy: round trip of every dtype, 0-d, empty and non-contiguous input") {
  ScratchDir dir;
  const std::string path = dir.file("t.npy");
  const at::ScalarType types[] = {at::kDouble, at::kFloat, at::kHalf, at::kLong, at::kInt,
                                  at::kShort,  at::kChar,  at::kByte, at::kBool,
                                  at::kComplexFloat, at::kComplexDouble};
  for (auto type : types) {
    CAPTURE(type);
    at::Tensor t = (iota(12) - 5).reshape({3, 4}).to(type);
    save_npy(path, t);
    CHECK(same(load_npy(path), t));
    at::Tensor transposed = t.t();  // written as its logical (C-order) values
    save_npy(path, transposed);
    CHECK(same(load_npy(path), transposed.contiguous()));
    save_npy(path, t[1][2]);
    CHECK(same(load_npy(path), t[1][2]));
    save_npy(path, t.narrow(0, 0, 0));
    CHECK(same(load_npy(path), t.narrow(0, 0, 0)));
  }
  check_throws_containing([&] { save_npy(path, at::ones({2}, at::kBFloat16)); },
                          {path, "BFloat16", "no NumPy equivalent"});
  check_throws_containing([&] { save_npy(path, at::Tensor()); }, {path, "undefined"});
}

TEST_CASE("npy: every truncation and random corruption fails cleanly") {
  const std::string bytes = read_bytes(fixture("io_i8_fortran.npy"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(parse_npy(bytes.data(), n, "cut.npy"), c10::Error);
  }
  std::mt19937 rng(7);
  int loaded = 0, refused = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = bytes;
    corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
    try {
      parse_npy(corrupt.data(), corrupt.size(), "flip.npy");
      ++loaded;
    } catch (const c10::Error& e) {
      ++refused;
      CHECK(std::string(e.msg()).find("flip.npy") != std::string::npos);
    }
  }
  CHECK(loaded + refused == 300);
  CHECK(refused > 0);
}

TEST_CASE("npz: numpy savez and savez_compressed archives") {
  for (const char* name : {"io_regions.npz", "io_regions_compressed.npz"}) {
    CAPTURE(name);
    auto arrays = load_npz(fixture(name));
    REQUIRE(arrays.count("boxes"));
    REQUIRE(arrays.count("features"));
    REQUIRE(arrays.count("num_boxes"));
    CHECK(same(arrays["boxes"], (iota(8) * 10).reshape({2, 4}).to(at::kFloat)));
    CHECK(same(arrays["features"], (iota(6) / 4).reshape({2, 3}).to(at::kHalf)));
    CHECK(arrays["num_boxes"].dim() == 0);
    CHECK(arrays["num_boxes"].item<int64_t>() == 2);
  }
  auto compressed = load_npz(fixture("io_regions_compressed.npz"));
  CHECK(same(compressed["mask"], at::tensor({1, 0}).to(at::kBool)));
}

TEST_CASE("npz: round trip, stored and deflated") {
  ScratchDir dir;
  std::map<std::string, at::Tensor> arrays = {
      {"boxes", at::rand({5, 4})},
      {"labels", iota(5, at::kLong)},
      {"valid", at::tensor({1, 0, 1}).to(at::kBool)},
      {"count", at::scalar_tensor(5, at::kLong)},
      {"none", at::zeros({0, 2048}, at::kHalf)},
      {"big", at::zeros({64, 64})},  // compresses well
  };
  for (bool compress : {false, true}) {
    const std::string path = dir.file(compress ? "c.npz" : "s.npz");
    save_npz(path, arrays, compress);
    auto back = load_npz(path);
    REQUIRE(back.size() == arrays.size());
    for (const auto& entry : arrays) {  // CAPTURE cannot see a structured binding under clang
      const auto& [name, t] = entry;
      CAPTURE(entry.first);
      CHECK(same(back.at(name), t));
    }
  }
  CHECK(read_bytes(dir.file("c.npz")).size() < read_bytes(dir.file("s.npz")).size());
  save_npz(dir.file("empty.npz"), {});
  CHECK(load_npz(dir.file("empty.npz")).empty());
}

TEST_CASE("npz: corrupt archives fail with the path, never crash") {
  ScratchDir dir;
  const std::string path = dir.file("bad.npz");
  for (const char* source : {"io_regions.npz", "io_regions_compressed.npz"}) {
    const std::string bytes = read_bytes(fixture(source));
    for (size_t n : {size_t(0), size_t(3), size_t(30), bytes.size() / 2, bytes.size() - 1}) {
      CAPTURE(n);
      write_bytes(path, bytes.substr(0, n));
      check_throws_containing([&] { load_npz(path); }, {path});
    }
    std::mt19937 rng(11);
    for (int trial = 0; trial < 100; ++trial) {
      std::string corrupt = bytes;
      for (int k = 0; k < 3; ++k) corrupt[rng() % corrupt.size()] ^= static_cast<char>(1 + rng() % 255);
      write_bytes(path, corrupt);
      try {
        load_npz(path);  // a flip in a stored member's padding may go unnoticed
      } catch (const c10::Error& e) {
        CHECK(std::string(e.msg()).find(path) != std::string::npos);
      }
    }
  }
}
