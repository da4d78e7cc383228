// `kinema preprocess`: re-encode a dataset's videos for training (see
// core/data/preprocess.h for what is written and how a run resumes).
#include <cxxopts.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "core/commands.h"
#include "core/data/preprocess.h"
#include "core/runtime.h"

namespace kinema {

namespace {

int preprocess_main(int argc, char** argv) {
  data::PreprocessOptions o;
  cxxopts::Options options("kinema preprocess",
                           "Re-encode a dataset's videos for training: same tree out, videos resized / "
                           "resampled / re-keyframed, other files copied");
  options.add_options()
    ("in", "input directory (a WebVid, MSR-VTT, ... tree)", cxxopts::value<std::string>())
    ("out", "output directory (created; must not be inside --in)", cxxopts::value<std::string>())
    ("short-side", "shorter side of the output in pixels (0 = keep)",
     cxxopts::value<int64_t>()->default_value("0"))
    ("fps", "output frame rate (0 = keep)", cxxopts::value<double>()->default_value("0"))
    ("keyframe-interval", "seconds between keyframes", cxxopts::value<double>()->default_value("1"))
    ("jobs", "videos converted in parallel (0 = all cores)", cxxopts::value<int>()->default_value("0"))
    ("codec", "auto | libx264 | mpeg4", cxxopts::value<std::string>()->default_value(o.codec))
    ("crf", "libx264 quality, lower is closer to the source", cxxopts::value<int>()->default_value(std::to_string(o.crf)))
    ("no-progress", "no progress bar")
    ("h,help", "this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("in") || !args.count("out")) {
    std::cout << options.help()
              << "\nVideos become .mp4 (H.264) at the same relative path; a run that stops resumes where it\n"
                 "left off; unreadable videos are listed in OUT/preprocess_failures.tsv.\n";
    return args.count("help") ? 0 : 2;
  }
  o.in_dir = args["in"].as<std::string>();
  o.out_dir = args["out"].as<std::string>();
  o.short_side = args["short-side"].as<int64_t>();
  o.fps = args["fps"].as<double>();
  o.keyframe_s = args["keyframe-interval"].as<double>();
  o.jobs = args["jobs"].as<int>();
  o.codec = args["codec"].as<std::string>();
  o.crf = args["crf"].as<int>();
  const bool bar = !args.count("no-progress") && isatty(STDERR_FILENO);
  data::PreprocessProgress progress;
  if (bar) {
    progress = [](int64_t done, int64_t total, int64_t failed) {
      constexpr int kWidth = 30;
      const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld videos, %lld failed", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, ' ').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), static_cast<long long>(failed));
      if (done == total) std::fputc('\n', stderr);
      std::fflush(stderr);
    };
  }
  const data::PreprocessSummary s = data::preprocess(o, progress);
  std::cout << "kinema preprocess: " << s.videos << " videos: " << s.converted << " converted, " << s.skipped
            << " already done, " << s.failures.size() << " failed; " << s.copied << " other files copied ("
            << s.seconds << " s)\n";
  for (const auto& f : s.failures) std::cout << "  failed: " << f.path << ": " << f.error << "\n";
  if (!s.failures.empty()) std::cout << "  (listed in " << o.out_dir << "/preprocess_failures.tsv)\n";
  return 0;
}

const CommandRegistrar registrar({"preprocess", "re-encode a dataset's videos for training",
                                  [](int argc, char** argv) {
                                    try {
                                      return preprocess_main(argc, argv);
                                    } catch (const std::exception& e) {
                                      std::cerr << "kinema preprocess: " << lua::exception_message(e) << "\n";
                                      return 1;
                                    }
                                  }});

}  // namespace

}  // namespace kinema
