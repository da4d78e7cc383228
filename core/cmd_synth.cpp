// `kinema synth`: the synthetic benchmark generator on the command line.
#include <cxxopts.hpp>

#include <iostream>

#include "core/commands.h"
#include "core/data/synth.h"
#include "core/exception_message.h"

namespace kinema {

namespace {

int synth_main(int argc, char** argv) {
  data::synth::SynthOptions o;
  cxxopts::Options options("kinema synth", "Generate the synthetic video-language benchmark");
  options.add_options()
    ("out", "output directory", cxxopts::value<std::string>())
    ("num-train", "training videos", cxxopts::value<int64_t>()->default_value(std::to_string(o.num_train)))
    ("num-test", "test videos", cxxopts::value<int64_t>()->default_value(std::to_string(o.num_test)))
    ("negatives-per-kind", "hard-negative captions per test video and kind (noun, verb)",
     cxxopts::value<int>()->default_value(std::to_string(o.negatives_per_kind)))
    ("width", "frame width", cxxopts::value<int64_t>()->default_value(std::to_string(o.width)))
    ("height", "frame height", cxxopts::value<int64_t>()->default_value(std::to_string(o.height)))
    ("fps", "frame rate", cxxopts::value<double>()->default_value(std::to_string(o.fps)))
    ("min-duration", "shortest video (s)", cxxopts::value<double>()->default_value(std::to_string(o.min_duration_s)))
    ("max-duration", "longest video (s)", cxxopts::value<double>()->default_value(std::to_string(o.max_duration_s)))
    ("gop", "seconds between keyframes", cxxopts::value<double>()->default_value(std::to_string(o.gop_s)))
    ("codec", "auto | libx264 | mpeg4", cxxopts::value<std::string>()->default_value(o.codec))
    ("miss-rate", "detections: missed-box probability", cxxopts::value<double>()->default_value(std::to_string(o.miss_rate)))
    ("false-rate", "detections: false boxes per frame", cxxopts::value<double>()->default_value(std::to_string(o.false_rate)))
    ("box-jitter", "detections: box noise", cxxopts::value<double>()->default_value(std::to_string(o.box_jitter)))
    ("region-frames", "frames with region features", cxxopts::value<int64_t>()->default_value(std::to_string(o.region_frames)))
    ("region-dim", "region feature size", cxxopts::value<int64_t>()->default_value(std::to_string(o.region_dim)))
    ("seed", "random seed", cxxopts::value<uint64_t>()->default_value("0"))
    ("threads", "videos generated in parallel (0 = all cores)", cxxopts::value<int>()->default_value("0"))
    ("h,help", "this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("out")) {
    std::cout << options.help() << "\nFiles written: see core/data/synth.h.\n";
    return args.count("help") ? 0 : 2;
  }
  o.out_dir = args["out"].as<std::string>();
  o.num_train = args["num-train"].as<int64_t>();
  o.num_test = args["num-test"].as<int64_t>();
  o.negatives_per_kind = args["negatives-per-kind"].as<int>();
  o.width = args["width"].as<int64_t>();
  o.height = args["height"].as<int64_t>();
  o.fps = args["fps"].as<double>();
  o.min_duration_s = args["min-duration"].as<double>();
  o.max_duration_s = args["max-duration"].as<double>();
  o.gop_s = args["gop"].as<double>();
  o.codec = args["codec"].as<std::string>();
  o.miss_rate = args["miss-rate"].as<double>();
  o.false_rate = args["false-rate"].as<double>();
  o.box_jitter = args["box-jitter"].as<double>();
  o.region_frames = args["region-frames"].as<int64_t>();
  o.region_dim = args["region-dim"].as<int64_t>();
  o.seed = args["seed"].as<uint64_t>();
  o.threads = args["threads"].as<int>();
  data::synth::SynthSummary s = data::synth::generate(o);
  std::cout << "kinema synth: " << s.videos << " videos (" << s.frames << " frames, " << s.encoder << ") in "
            << s.out_dir << " (" << s.seconds << " s)\n";
  return 0;
}

const CommandRegistrar registrar({"synth", "generate the synthetic benchmark", [](int argc, char** argv) {
                                    try {
                                      return synth_main(argc, argv);
                                    } catch (const std::exception& e) {
                                      std::cerr << "kinema synth: " << exception_message(e) << "\n";
                                      return 1;
                                    }
                                  }});

}  // namespace

}  // namespace kinema
