// core/io/safetensors: byte-exact agreement with the reference writer (its own
// test vectors, and the independent writer in make_io_fixture.py), round trips
// of every dtype, and validation errors that name the file and the problem.
#include "core/io/safetensors.h"
#include "test_io_util.h"

#include <doctest/doctest.h>

#include <random>

using namespace kinema::io;
using namespace kinema::io::testing;

namespace {

at::Tensor iota(int64_t n, at::ScalarType t = at::kDouble) {
  return at::arange(n, at::TensorOptions().dtype(at::kDouble)).to(t);
}

std::string as_string(const std::vector<int>& bytes) {
  std::string s;
  for (int b : bytes) s += static_cast<char>(b);
  return s;
}

// A file with the given header text (unpadded) and data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

// The tensors of tests/fixtures/io_reference.safetensors (reference_tensors() in the script).
std::map<std::string, at::Tensor> reference_tensors() {
  return {
      {"weight", (iota(6) * 0.5 - 1).reshape({2, 3}).to(at::kFloat)},
      {"bias", iota(3) / 3},
      {"half", (iota(4) - 1.5).reshape({2, 2}).to(at::kHalf)},
      {"brain", at::tensor({1.0, -2.5, 3.140625, 0.0}).to(at::kBFloat16)},
      {"index", iota(3, at::kLong) * -7},
      {"count", at::tensor({2147483647, -2147483647 - 1}).to(at::kInt)},
      {"short", (iota(3) - 1).to(at::kShort)},
      {"tiny", at::tensor({-128, 127}).to(at::kChar)},
      {"bytes", at::tensor({0, 128, 255}).to(at::kByte)},
      {"mask", at::tensor({1, 0, 0, 1}).to(at::kBool).reshape({2, 2})},
      {"scalar", at::scalar_tensor(4.25, at::kFloat)},
      {"empty", at::zeros({0, 3})},
      {"a.b.c", at::tensor({7.0}).to(at::kFloat)},
  };
}

}  // namespace

TEST_CASE("safetensors: the reference crate's serialisation test vectors, byte for byte") {
  ScratchDir dir;
  const std::string path = dir.file("t.safetensors");
  const at::Tensor data = iota(6, at::kFloat);
  // serialize({"attn.0": F32 [1,2,3]}) in safetensors/src/tensor.rs
  save_safetensors(path, {{"attn.0", data.reshape({1, 2, 3})}});
  const std::string expected_header =
      R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  REQUIRE(expected_header.size() == 64);
  const std::string raw(static_cast<const char*>(data.data_ptr()), 24);
  CHECK(read_bytes(path) == make_file(expected_header, raw));
  // Same with "attn0" and shape [1,1,2,3]: 65 bytes of JSON padded with spaces to 72.
  save_safetensors(path, {{"attn0", data.reshape({1, 1, 2, 3})}});
  CHECK(read_bytes(path) ==
        make_file(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
                      std::string(7, ' '),
                  raw));
  // No tensors: "{}" + 6 spaces; with metadata {"framework": "pt"}: 40 bytes.
  save_safetensors(path, {});
  CHECK(read_bytes(path) == as_string({8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  save_safetensors(path, {}, {{"framework", "pt"}});
  CHECK(read_bytes(path) == make_file(R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '), ""));
}

TEST_CASE("safetensors: reads the independently written fixture with its values and order") {
  const auto content = load_safetensors(fixture("io_reference.safetensors"));
  const auto expected = reference_tensors();
  REQUIRE(content.tensors.size() == expected.size());
  for (const auto& entry : expected) {  // CAPTURE cannot see a structured binding under clang
    const auto& [name, t] = entry;
    CAPTURE(entry.first);
    const at::Tensor* got = content.find(name);
    REQUIRE(got != nullptr);
    CHECK(same(*got, t));
  }
  CHECK(content.metadata.at("format") == "pt");
  CHECK(content.metadata.at("note") == "kinema io fixture");
  // File order = the reference order: 8-byte dtypes, then 4, 2, 1; names ascending within.
  std::vector<std::string> order;
  for (const auto& [name, t] : content.tensors) order.push_back(name);
  CHECK(order == std::vector<std::string>{"index", "bias", "a.b.c", "empty", "scalar", "weight",
                                          "count", "brain", "half", "short", "tiny", "bytes",
                                          "mask"});
  CHECK(content.find("missing") == nullptr);
}

TEST_CASE("safetensors: kinema writes the fixture's exact bytes") {
  ScratchDir dir;
  const std::string path = dir.file("ref.safetensors");
  save_safetensors(path, reference_tensors(), {{"format", "pt"}, {"note", "kinema io fixture"}});
  CHECK(read_bytes(path) == read_bytes(fixture("io_reference.safetensors")));
}

TEST_CASE("safetensors: round trip of every dtype, 0-d, empty and non-contiguous tensors") {
  ScratchDir dir;
  const std::string path = dir.file("rt.safetensors");
  std::map<std::string, at::Tensor> tensors;
  const at::ScalarType types[] = {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16, at::kLong,
                                  at::kInt,    at::kShort, at::kChar, at::kByte,     at::kBool};
  for (auto type : types) {
    const std::string n = c10::toString(type);
    const at::Tensor base = (iota(20) - 7).reshape({4, 5}).to(type);
    tensors[n] = base;
    tensors[n + ".t"] = base.t();           // non-contiguous
    tensors[n + ".s"] = base.select(1, 2);  // strided view
    tensors[n + ".0d"] = base[3][4];
    tensors[n + ".empty"] = base.narrow(1, 0, 0);
  }
  save_safetensors(path, tensors, {{"step", "42"}});
  const auto back = load_safetensors(path);
  REQUIRE(back.tensors.size() == tensors.size());
  for (const auto& entry : back.to_map()) {
    const auto& [name, t] = entry;
    CAPTURE(entry.first);
    CHECK(same(t, tensors.at(name)));
    CHECK(t.is_contiguous());
  }
  CHECK(back.metadata == std::map<std::string, std::string>{{"step", "42"}});
  // bfloat16 bits survive exactly (no float round trip).
  const at::Tensor bits = at::randint(0, 1 << 15, {64}, at::kShort).view(at::kBFloat16);
  save_safetensors(path, {{"b", bits}});
  CHECK(at::equal(load_safetensors(path).find("b")->view(at::kShort), bits.view(at::kShort)));
}

TEST_CASE("safetensors: loaded tensors own their memory") {
  ScratchDir dir;
  const std::string path = dir.file("own.safetensors");
  save_safetensors(path, {{"w", iota(4, at::kFloat)}});
  auto content = load_safetensors(path);
  std::filesystem::remove(path);
  save_safetensors(path, {{"w", at::zeros({4})}});  // reuses the name, different bytes
  CHECK(same(*content.find("w"), iota(4, at::kFloat)));
  content.find("w")->add_(1);  // writable
}

TEST_CASE("safetensors: writer refuses what the format cannot hold") {
  ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  check_throws_containing([&] { save_safetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}}); },
                          {path, "'c'", "ComplexFloat"});
  check_throws_containing([&] { save_safetensors(path, {{"__metadata__", at::ones({2})}}); },
                          {path, "reserved"});
  check_throws_containing([&] { save_safetensors(path, {{"x", at::Tensor()}}); },
                          {path, "'x'", "undefined"});
  CHECK(dir.entries() == 0);
}

TEST_CASE("safetensors: malformed headers are refused with the file name and the problem") {
  ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  auto expect_error = [&](const std::string& bytes, const std::string& problem) {
    CAPTURE(problem);
    write_bytes(path, bytes);
    check_throws_containing([&] { load_safetensors(path); }, {path, problem});
  };
  const std::string f32x2(8, '\0');
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write_bytes(path, make_file(ok, f32x2));
  CHECK(load_safetensors(path).tensors.size() == 1);

  expect_error("", "too short");
  expect_error(std::string("\xff\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "beyond the file size");
  expect_error(make_file("{\"a\":", ""), "not valid JSON");
  expect_error(make_file("[1,2]", ""), "not a JSON object");
  expect_error(make_file(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", f32x2),
               "unknown dtype 'F31'");
  expect_error(make_file(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", f32x2),
               "no LibTorch equivalent");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
               "need 12");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
               "non-negative");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32x2),
               "end before they begin");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         std::string(12, '\0')),
               "'b' overlaps");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         std::string(12, '\0')),
               "gap before tensor 'a'");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2 + "xx"),
               "2 trailing bytes");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2),
               "truncated");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         f32x2),
               "duplicate tensor name 'a'");
  expect_error(make_file(R"({"__metadata__":{"k":1}})", ""), "not a string");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2), "data_offsets");
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                         f32x2),
               "overflows");
  check_throws_containing([&] { load_safetensors(dir.file("absent")); },
                          {dir.file("absent"), "No such file"});
}

TEST_CASE("safetensors: every truncation and random byte flips fail cleanly") {
  const std::string bytes = read_bytes(fixture("io_reference.safetensors"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(parse_safetensors(bytes.data(), n, "cut"), c10::Error);
  }
  std::mt19937 rng(3);
  int refused = 0;
  for (int trial = 0; trial < 500; ++trial) {
    std::string corrupt = bytes;
    corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
    try {
      parse_safetensors(corrupt.data(), corrupt.size(), "flip");
    } catch (const c10::Error& e) {
      ++refused;
      CHECK(std::string(e.msg()).find("'flip'") != std::string::npos);
    }
  }
  CHECK(refused > 0);
}
