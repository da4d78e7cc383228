// core/io/torch_pickle: files written by Python's torch.save / torch.jit.save
// (tests/fixtures/make_io_fixture.py) read through LibTorch's unpickler, and
// what it cannot read refused with a message naming the file.
#include "core/io/torch_pickle.h"
#include "test_io_util.h"

#include <doctest/doctest.h>

#include <random>

using namespace kinema::io;
using namespace kinema::io::testing;

namespace {

at::Tensor iota(int64_t n, at::ScalarType t = at::kDouble) {
  return at::arange(n, at::TensorOptions().dtype(at::kDouble)).to(t);
}

std::map<std::string, at::Tensor> as_map(const NamedTensors& named) {
  return std::map<std::string, at::Tensor>(named.begin(), named.end());
}

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("torch_pickle: OrderedDict state dict with views, shared storage and odd dtypes") {
  const NamedTensors named = load_pt(fixture("io_state_dict.pt"));
  CHECK(names_of(named) ==
        std::vector<std::string>{"encoder.weight", "decoder.weight", "encoder.row1",
                                 "encoder.weight_t", "encoder.every_other", "half", "brain",
                                 "steps", "mask", "scalar", "empty"});
  auto sd = as_map(named);
  const at::Tensor base = iota(12, at::kFloat).reshape({3, 4});
  CHECK(same(sd["encoder.weight"], base));
  CHECK(same(sd["decoder.weight"], base));
  CHECK(same(sd["encoder.row1"], base[1]));
  CHECK(same(sd["encoder.weight_t"], base.t()));
  CHECK(same(sd["encoder.every_other"], base.slice(1, 0, 4, 2)));
  // Tied weights and views still share one storage after loading.
  CHECK(sd["decoder.weight"].data_ptr() == sd["encoder.weight"].data_ptr());
  CHECK(sd["encoder.row1"].storage().is_alias_of(sd["encoder.weight"].storage()));
  CHECK(sd["encoder.row1"].storage_offset() == 4);
  CHECK(sd["encoder.weight_t"].strides() == at::IntArrayRef({1, 4}));
  CHECK(sd["encoder.every_other"].strides() == at::IntArrayRef({4, 2}));
  sd["encoder.weight"][0][0].fill_(100);  // tie observable through the other name
  CHECK(sd["decoder.weight"][0][0].item<float>() == 100);
  CHECK(sd["encoder.weight_t"][0][0].item<float>() == 100);

  CHECK(same(sd["half"], (iota(4) - 1.5).to(at::kHalf)));
  CHECK(same(sd["brain"], at::tensor({1.0, -2.5, 3.140625, 0.0}).to(at::kBFloat16)));
  CHECK(same(sd["steps"], iota(3, at::kLong) * -7));
  CHECK(same(sd["mask"], at::tensor({1, 0, 1}).to(at::kBool)));
  CHECK(sd["scalar"].dim() == 0);
  CHECK((sd["scalar"].scalar_type() == at::kDouble));
  CHECK(sd["scalar"].item<double>() == 4.25);
  CHECK(sd["empty"].sizes() == at::IntArrayRef({0, 3}));
}

TEST_CASE("torch_pickle: nested checkpoints flatten with dotted names; scalars stay in the object") {
  const NamedTensors named = load_pt(fixture("io_checkpoint.pt"));
  CHECK(names_of(named) ==
        std::vector<std::string>{"model.weight", "model.bias", "optimizer.momentum.0"});
  auto sd = as_map(named);
  CHECK(same(sd["model.weight"], iota(6, at::kFloat).reshape({2, 3})));
  CHECK(same(sd["model.bias"], at::ones({2})));
  CHECK(same(sd["optimizer.momentum.0"], at::zeros({2})));

  const c10::IValue object = load_pt_object(fixture("io_checkpoint.pt"));
  REQUIRE(object.isGenericDict());
  const auto dict = object.toGenericDict();
  CHECK(dict.at("epoch").toInt() == 3);
  CHECK(dict.at("optimizer").toGenericDict().at("lr").toDouble() == doctest::Approx(0.1));

  auto wrapped = as_map(load_pt(fixture("io_wrapped.pt")));
  CHECK(wrapped.size() == 2);
  CHECK(same(wrapped["state_dict.weight"], iota(6, at::kFloat).reshape({2, 3})));
  // A prefix can be given to flatten_tensors for a sub-object.
  const auto inner = flatten_tensors(dict.at("model"), "encoder");
  CHECK(names_of(inner) == std::vector<std::string>{"encoder.weight", "encoder.bias"});
}

TEST_CASE("torch_pickle: TorchScript archives give parameters and buffers") {
  const std::vector<std::string> expected = {"fc.weight",       "fc.bias",
                                             "norm.weight",     "norm.bias",
                                             "norm.running_mean", "norm.running_var",
                                             "norm.num_batches_tracked"};
  const NamedTensors named = load_torchscript(fixture("io_script.pt"));
  CHECK(names_of(named) == expected);
  auto sd = as_map(named);
  CHECK(same(sd["fc.weight"], (iota(6) * 0.5).reshape({2, 3}).to(at::kFloat)));
  CHECK(same(sd["fc.bias"], at::tensor({1.0, -1.0}).to(at::kFloat)));
  CHECK(same(sd["norm.running_mean"], at::full({2}, 0.25)));
  CHECK(same(sd["norm.running_var"], at::ones({2})));
  CHECK((sd["norm.num_batches_tracked"].scalar_type() == at::kLong));
  CHECK_FALSE(sd["fc.weight"].requires_grad());
  // load_pt recognises the archive and answers the same.
  CHECK(names_of(load_pt(fixture("io_script.pt"))) == expected);
  const std::string script = fixture("io_script.pt");
  check_throws_containing([&] { load_pt_object(script); }, {script, "load_torchscript"});
  const std::string plain = fixture("io_state_dict.pt");
  check_throws_containing([&] { load_torchscript(plain); }, {"load_torchscript", plain});
}

TEST_CASE("torch_pickle: the legacy (non-zip) format is read too") {
  const NamedTensors named = load_pt(fixture("io_legacy.pt"));
  CHECK(names_of(named) == std::vector<std::string>{"weight", "bias"});
  CHECK(same(named[0].second, iota(6, at::kFloat).reshape({2, 3})));
  CHECK(same(named[1].second, at::ones({2})));
}

TEST_CASE("torch_pickle: foreign files are refused clearly") {
  const std::string legacy = fixture("io_legacy.pt");
  check_throws_containing([&] { load_torchscript(legacy); }, {legacy, "legacy"});
  const std::string npy = fixture("io_f4.npy");
  check_throws_containing([&] { load_pt(npy); }, {npy, "not a PyTorch file"});
  const std::string npz = fixture("io_regions.npz");
  check_throws_containing([&] { load_pt(npz); }, {npz, "without data.pkl"});
  check_throws_containing([&] { load_pt("/nonexistent.pt"); }, {"/nonexistent.pt", "No such file"});
}

TEST_CASE("torch_pickle: truncated and corrupted files fail with the path, never crash") {
  ScratchDir dir;
  const std::string path = dir.file("cut.pt");
  for (const char* source : {"io_state_dict.pt", "io_script.pt", "io_legacy.pt"}) {
    CAPTURE(source);
    const std::string bytes = read_bytes(fixture(source));
    for (size_t n : {size_t(0), size_t(2), size_t(4), size_t(20), size_t(64), size_t(300),
                     bytes.size() / 3, bytes.size() / 2, bytes.size() - 100, bytes.size() - 22,
                     bytes.size() - 1}) {
      CAPTURE(n);
      write_bytes(path, bytes.substr(0, n));
      check_throws_containing([&] { load_pt(path); }, {path});
    }
    std::mt19937 rng(5);
    int refused = 0;
    for (int trial = 0; trial < 60; ++trial) {
      std::string corrupt = bytes;
      for (int k = 0; k < 4; ++k) corrupt[rng() % corrupt.size()] ^= static_cast<char>(1 + rng() % 255);
      write_bytes(path, corrupt);
      try {
        load_pt(path);
      } catch (const c10::Error& e) {
        ++refused;
        CHECK(std::string(e.msg()).find(path) != std::string::npos);
      }
    }
    CHECK(refused > 0);
  }
}
