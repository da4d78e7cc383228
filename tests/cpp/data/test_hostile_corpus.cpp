// The bad-input corpus (tests/fixtures/hostile, written by
// tests/fixtures/make_hostile_fixture.py): every file must end in a clear
// error naming it: never a signal, a hang, a huge allocation, code from the
// file running, or a silent result. Plus the faults that need a live setup
// (FIFOs, the loader's retries) and the TorchScript weights read without
// running the archive's code.
#include "core/data/detections_pickle.h"
#include "core/data/loader.h"
#include "core/data/video_reader.h"
#include "core/io/npz.h"
#include "core/io/safetensors.h"
#include "core/io/torch_pickle.h"

#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include "test_data_util.h"

using namespace kinema;
using kinema::data::testing::fixture;

namespace {

// Runs f; returns its error message, or "" if it returned normally.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.msg();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void read_with(const std::string& reader, const std::string& path) {
  if (reader == "pt") io::load_pt(path);
  else if (reader == "torchscript") io::load_torchscript(path);
  else if (reader == "npz") io::load_npz(path);
  else if (reader == "regions") data::load_npz_with_pickled_dicts(path);
  else if (reader == "video") data::VideoReader reader_of(path);
  else FAIL("unknown reader '", reader, "' in MANIFEST.tsv");
}

std::map<std::string, at::Tensor> as_map(const io::NamedTensors& named) {
  return {named.begin(), named.end()};
}

}  // namespace

TEST_CASE("hostile corpus: every file ends in a clear error naming it") {
  std::ifstream manifest(fixture("hostile/MANIFEST.tsv"));
  REQUIRE(manifest.good());
  std::string line;
  int cases = 0;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string file, reader, fragment;
    std::getline(fields, file, '\t');
    std::getline(fields, reader, '\t');
    std::getline(fields, fragment);
    const std::string path = fixture("hostile/" + file);
    CAPTURE(path);
    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_of([&] { read_with(reader, path); });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(message);
    CHECK_FALSE(message.empty());
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find(fragment) != std::string::npos);
    CHECK(seconds < 10);  // bombs are refused before they expand
    ++cases;
  }
  CHECK(cases >= 15);
}

TEST_CASE("hostile corpus: TorchScript weights are read without running the archive's code") {
  // io_script_nested.pt: nested modules, a mangled class, a parameter set to
  // None (Linear without bias), a plain tensor attribute that is no state.
  // The names are PyTorch's state_dict() of the scripted module.
  const std::string path = fixture("io_script_nested.pt");
  const auto safe = io::load_torchscript(path);
  std::vector<std::string> names;
  for (const auto& [n, t] : safe) names.push_back(n);
  // Parameters then buffers, each depth-first in attribute order (as
  // torch::jit::Module::named_parameters / named_buffers list them).
  CHECK(names == std::vector<std::string>{"logit_scale", "blocks.0.fc.weight", "blocks.0.fc.bias",
                                          "blocks.1.fc.weight", "norm.weight", "norm.bias",
                                          "blocks.0.scale", "blocks.1.scale", "norm.running_mean",
                                          "norm.running_var", "norm.num_batches_tracked"});
  // The same tensors as LibTorch's own loader, which runs the code.
  const auto reference = as_map(io::load_torchscript(path, /*run_code=*/true));
  REQUIRE(reference.size() == safe.size());
  for (const auto& [name, tensor] : safe) {
    CAPTURE(name);
    REQUIRE(reference.count(name));
    CHECK((tensor.scalar_type() == reference.at(name).scalar_type()));
    CHECK(tensor.equal(reference.at(name)));
    CHECK_FALSE(tensor.requires_grad());
  }
  auto sd = as_map(safe);
  CHECK(sd["blocks.1.fc.weight"].equal(at::arange(6, at::kFloat).reshape({2, 3}) * 2));
  CHECK(sd["blocks.1.scale"].equal(at::full({2}, 4.0f)));
  CHECK(sd["norm.running_mean"].equal(at::full({2}, 0.25f)));
  CHECK(std::abs(sd["logit_scale"].item<float>() - 4.6052f) < 1e-6f);
  // load_pt recognises the archive and reads it the same, safe way.
  CHECK(as_map(io::load_pt(path)).size() == safe.size());
}

TEST_CASE("hostile corpus: FIFOs and other non-regular files are refused, not waited on") {
  char dir_template[] = "/tmp/kinema_fifo_XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string fifo = dir + "/weights.pt";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const auto& read : std::vector<std::function<void()>>{
           [&] { io::load_pt(fifo); }, [&] { io::load_npz(fifo); },
           [&] { io::load_safetensors(fifo); }, [&] { io::load_npy(fifo); },
           [&] { data::VideoReader reader(fifo); }}) {
    const std::string message = error_of(read);
    CAPTURE(message);
    CHECK(message.find(fifo) != std::string::npos);
    CHECK(message.find("not a regular file") != std::string::npos);
  }
  CHECK(error_of([&] { io::load_pt(dir); }).find("is a directory") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("hostile corpus: a deterministic failure is not retried on the same sample") {
  std::vector<data::Sample> one(1);
  one[0].id = "s0";
  std::atomic<int> calls{0};
  data::ItemFn broken = [&](const data::Sample&, uint64_t) -> data::Item {
    ++calls;
    throw std::runtime_error("bomb.npz: refused");
  };
  data::LoaderOptions o;
  o.batch_size = 1;
  o.num_workers = 1;
  data::Loader loader(one, broken, o);
  CHECK(error_of([&] { loader.next_batch(); }).find("bomb.npz: refused") != std::string::npos);
  CHECK(calls.load() == 1);  // not 1 + max_replacements (17)
}

TEST_CASE("hostile corpus: checkpoints with numpy scalars and argparse.Namespace still load") {
  const c10::IValue object = io::load_pt_object(fixture("io_checkpoint_numpy.pt"));
  const auto dict = object.toGenericDict();
  CHECK(dict.at("best_acc").toDouble() == 0.875);
  CHECK(dict.at("epoch").toInt() == 12);
  const auto args = dict.at("args").toGenericDict();
  CHECK(args.at("lr").toDouble() == 0.001);
  CHECK(args.at("name").toStringRef() == "run1");
  CHECK(dict.at("mean").toTensor().equal(at::tensor({0.5, 0.25}, at::kDouble)));
  CHECK(dict.at("w").toTensor().equal(at::ones({2})));
}
