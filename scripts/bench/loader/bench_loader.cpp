// kinema_bench_loader: the kinema side of scripts/bench/loader/bench_loader.py.
//   kinema_bench_loader synth OUT_DIR key=value...   (SynthOptions fields)
//   kinema_bench_loader read LIST frames=8 workers=2 size=224 repeat=1 dump=FILE
// `read` decodes every video listed in LIST (one path per line) through the
// Loader (batch size 1, uniform sampling, shorter side + centre crop to
// size x size) and prints clips/s; dump= writes all clips' uint8 frames, in list
// order, as raw [N, T, 3, size, size] bytes for the pixel comparison.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "core/data/loader.h"
#include "core/data/synth.h"

using namespace kinema::data;

namespace {

std::map<std::string, std::string> parse_kv(int argc, char** argv, int first) {
  std::map<std::string, std::string> kv;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) throw std::runtime_error("expected key=value, got '" + a + "'");
    kv[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return kv;
}

int run_synth(const std::string& out, std::map<std::string, std::string> kv) {
  synth::SynthOptions o;
  o.out_dir = out;
  auto num = [&](const char* k, auto& field) {
    if (kv.count(k)) {
      field = static_cast<std::decay_t<decltype(field)>>(std::stod(kv[k]));
      kv.erase(k);
    }
  };
  num("num_train", o.num_train);
  num("num_test", o.num_test);
  num("width", o.width);
  num("height", o.height);
  num("fps", o.fps);
  num("min_duration_s", o.min_duration_s);
  num("max_duration_s", o.max_duration_s);
  num("gop_s", o.gop_s);
  num("seed", o.seed);
  num("threads", o.threads);
  num("region_frames", o.region_frames);
  num("region_dim", o.region_dim);
  num("min_objects", o.min_objects);
  num("max_objects", o.max_objects);
  num("crf", o.crf);
  num("pixel_noise", o.pixel_noise);
  if (kv.count("preset")) o.preset = kv["preset"], kv.erase("preset");
  if (kv.count("codec")) o.codec = kv["codec"], kv.erase("codec");
  if (!kv.empty()) throw std::runtime_error("unknown synth option '" + kv.begin()->first + "'");
  const auto s = synth::generate(o);
  std::printf("{\"encoder\": \"%s\", \"videos\": %lld, \"frames\": %lld, \"seconds\": %.2f}\n",
              s.encoder.c_str(), static_cast<long long>(s.videos),
              static_cast<long long>(s.frames), s.seconds);
  return 0;
}

int run_read(const std::string& list, std::map<std::string, std::string> kv) {
  std::vector<Sample> samples;
  std::ifstream f(list);
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) {
      Sample s;
      s.id = std::to_string(samples.size());
      s.video_path = line;
      samples.push_back(s);
    }
  VideoItemOptions vo;
  vo.sampling.num_frames = kv.count("frames") ? std::stoll(kv["frames"]) : 8;
  const int64_t size = kv.count("size") ? std::stoll(kv["size"]) : 224;
  vo.decode.resize.out_h = vo.decode.resize.out_w = size;
  LoaderOptions lo;
  lo.batch_size = 1;
  lo.shuffle = false;
  lo.num_workers = kv.count("workers") ? std::stoll(kv["workers"]) : 2;
  lo.prefetch = 2 * lo.num_workers;
  const int64_t repeat = kv.count("repeat") ? std::stoll(kv["repeat"]) : 1;
  Loader loader(samples, make_video_item_fn(vo), lo);
  std::ofstream dump;
  if (kv.count("dump")) dump.open(kv["dump"], std::ios::binary);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t clips = 0;
  for (int64_t r = 0; r < repeat; ++r) {
    loader.reset(0, 0);
    while (auto b = loader.next_batch()) {
      ++clips;
      if (dump.is_open() && r == 0) {
        const at::Tensor& v = b->tensors.at("video");
        dump.write(reinterpret_cast<const char*>(v.data_ptr<uint8_t>()), v.numel());
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"clips\": %lld, \"seconds\": %.4f, \"clips_per_s\": %.2f, \"skipped\": %lld}\n",
              static_cast<long long>(clips), secs, clips / secs,
              static_cast<long long>(loader.progress().skipped));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 3 && std::string(argv[1]) == "synth") return run_synth(argv[2], parse_kv(argc, argv, 3));
    if (argc >= 3 && std::string(argv[1]) == "read") return run_read(argv[2], parse_kv(argc, argv, 3));
    std::cerr << "usage: kinema_bench_loader synth OUT_DIR [key=value...]\n"
                 "       kinema_bench_loader read LIST [frames=8 workers=2 size=224 repeat=1 dump=FILE]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kinema_bench_loader: " << e.what() << "\n";
    return 1;
  }
}
