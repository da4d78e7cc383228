// `kinema extract-regions`: region features for given boxes with a given
// backbone (RoIAlign over its feature map), written in the bottom-up-attention
// .npz layout, one file per annotated frame.
#include <cxxopts.hpp>

#include <iostream>

#include "core/commands.h"
#include "core/data/detections.h"
#include "core/data/extract_regions.h"
#include "core/exception_message.h"

namespace kinema {

namespace {

int extract_regions_main(int argc, char** argv) {
  data::RegionExtractOptions o;
  cxxopts::Options options("kinema extract-regions",
                           "Extract region features of a video's boxes with a TorchScript backbone");
  options.add_options()
    ("video", "the video file", cxxopts::value<std::string>())
    ("boxes", "per-frame boxes: plain frames JSON (kinema synth layout) or VinVL JSON", cxxopts::value<std::string>())
    ("boxes-format", "frames | vinvl", cxxopts::value<std::string>()->default_value("frames"))
    ("backbone", "TorchScript module: float [N,3,H,W] -> [N,C,h,w]", cxxopts::value<std::string>())
    ("out", "output directory ({i}.npz per frame)", cxxopts::value<std::string>())
    ("device", "cpu | cuda | cuda:N", cxxopts::value<std::string>()->default_value("cpu"))
    ("output-size", "RoIAlign bins per side", cxxopts::value<int64_t>()->default_value(std::to_string(o.output_size)))
    ("sampling-ratio", "RoIAlign samples per bin side (<= 0 adaptive)", cxxopts::value<int64_t>()->default_value(std::to_string(o.sampling_ratio)))
    ("max-boxes", "most confident boxes kept per frame (<= 0 all)", cxxopts::value<int64_t>()->default_value(std::to_string(o.max_boxes)))
    ("h,help", "this help");
  auto args = options.parse(argc, argv);
  for (const char* required : {"video", "boxes", "backbone", "out"}) {
    if (args.count("help") || !args.count(required)) {
      std::cout << options.help();
      return args.count("help") ? 0 : 2;
    }
  }
  o.output_size = args["output-size"].as<int64_t>();
  o.sampling_ratio = args["sampling-ratio"].as<int64_t>();
  o.max_boxes = args["max-boxes"].as<int64_t>();
  const std::string format = args["boxes-format"].as<std::string>();
  TORCH_CHECK(format == "frames" || format == "vinvl", "--boxes-format must be 'frames' or 'vinvl', got '", format, "'");
  const std::string boxes_path = args["boxes"].as<std::string>();
  std::vector<data::FrameBoxes> boxes =
      format == "vinvl" ? data::read_vinvl(boxes_path) : data::read_frame_boxes_json(boxes_path);
  data::RegionBackbone backbone(args["backbone"].as<std::string>(), c10::Device(args["device"].as<std::string>()));
  int64_t written = data::extract_video_regions(backbone, args["video"].as<std::string>(), boxes,
                                                args["out"].as<std::string>(), o);
  std::cout << "kinema extract-regions: " << written << " frames written to " << args["out"].as<std::string>()
            << "\n";
  return 0;
}

const CommandRegistrar registrar({"extract-regions", "region features for given boxes",
                                  [](int argc, char** argv) {
                                    try {
                                      return extract_regions_main(argc, argv);
                                    } catch (const std::exception& e) {
                                      std::cerr << "kinema extract-regions: " << exception_message(e) << "\n";
                                      return 1;
                                    }
                                  }});

}  // namespace

}  // namespace kinema
