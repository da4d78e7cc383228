// Forward + backward of kinema's VideoEncoder, timed per iteration. Prints one
// JSON line: {"impl":"kinema", "times_ms":[...] (wall), "cpu_ms":[...] (process CPU),
// "median_ms":..., "peak_rss_mb":...}.
// The peer is bench_video_encoder.py (same architecture in Python torch);
// run_bench_video_encoder.py runs both in separate processes and compares.
#include <sys/resource.h>
#include <time.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "models/video_encoder.h"

namespace {

struct Args {
  std::string config = "tiny";
  std::string attention = "frame";
  int iters = 5, warmup = 1, threads = 0;
  bool checkpoint = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--config") a.config = next();
    else if (k == "--attention") a.attention = next();
    else if (k == "--iters") a.iters = std::stoi(next());
    else if (k == "--warmup") a.warmup = std::stoi(next());
    else if (k == "--threads") a.threads = std::stoi(next());
    else if (k == "--checkpoint") a.checkpoint = true;
    else {
      std::fprintf(stderr, "usage: %s [--config tiny|base] [--attention frame|joint|divided] "
                   "[--iters N] [--warmup N] [--threads N] [--checkpoint]\n", argv[0]);
      std::exit(2);
    }
  }
  return a;
}

// CPU time of the process: under a loaded machine it measures the work done,
// where wall time also measures the scheduler.
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  if (args.threads > 0) torch::set_num_threads(args.threads);
  kinema::models::VideoEncoderOptions o;
  int64_t batch = 2, frames = 8, image = 224;
  if (args.config == "tiny") {
    o.depth = 2;
    o.layer.dim = 64;
    o.layer.num_heads = 4;
    image = 64;
    frames = 4;
  } else if (args.config != "base") {
    std::fprintf(stderr, "unknown --config %s\n", args.config.c_str());
    return 2;
  }
  o.image_size = image;
  o.num_frames = frames;
  o.attention = args.attention;
  o.grad_checkpoint = args.checkpoint;
  torch::manual_seed(0);
  kinema::models::VideoEncoder enc(o);
  enc->train();
  at::Tensor video = torch::randn({batch, frames, 3, image, image});
  std::vector<double> times, cpu_times;
  for (int i = 0; i < args.warmup + args.iters; ++i) {
    auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_ms();
    enc->zero_grad();
    auto r = enc->forward(video);
    r.tokens.pow(2).mean().backward();
    auto end = std::chrono::steady_clock::now();
    if (i >= args.warmup) {
      times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
      cpu_times.push_back(cpu_ms() - cpu_start);
    }
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"impl\": \"kinema\", \"config\": \"%s\", \"threads\": %d, \"times_ms\": [", args.config.c_str(),
              torch::get_num_threads());
  for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.2f", i ? ", " : "", times[i]);
  std::printf("], \"cpu_ms\": [");
  for (size_t i = 0; i < cpu_times.size(); ++i) std::printf("%s%.2f", i ? ", " : "", cpu_times[i]);
  std::printf("], \"median_ms\": %.2f, \"peak_rss_mb\": %.1f}\n", sorted[sorted.size() / 2],
              usage.ru_maxrss / 1024.0);
  return 0;
}
