// `kinema preprocess`: re-encode a dataset's videos for training (see
// core/data/preprocess.h for what is written and how a run resumes).
#include <cxxopts.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <type_traits>

extern "C" {
#include <libavutil/log.h>
}

#include "core/commands.h"
#include "core/data/preprocess.h"
#include "core/exception_message.h"

namespace kinema {

namespace {

// A numeric flag, read from its text so that a bad value is named (cxxopts'
// own message does not say which flag it was).
template <typename T>
T number(const cxxopts::ParseResult& args, const char* flag) {
  const std::string text = args[flag].as<std::string>();
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const bool integral = std::is_integral<T>::value;
  const bool fits = !integral || (value == std::floor(value) && std::fabs(value) <= 1e9);
  if (used == 0 || used != text.size() || !std::isfinite(value) || !fits) {
    throw cxxopts::exceptions::exception(std::string("--") + flag + " expects " +
                                         (integral ? "an integer" : "a number") + ", got '" +
                                         text + "'");
  }
  return static_cast<T>(value);
}

int preprocess_main(int argc, char** argv) {
  data::PreprocessOptions o;
  cxxopts::Options options("kinema preprocess",
                           "Re-encode a dataset's videos for training: the same tree out, videos resized, "
                           "resampled and re-keyframed, other files copied");
  options.add_options()
    ("in", "input directory (a WebVid, MSR-VTT, ... tree)", cxxopts::value<std::string>())
    ("out", "output directory (new, empty, or an earlier preprocess output to resume; not overlapping --in)",
     cxxopts::value<std::string>())
    ("config", "a training config (a run's config.json): --short-side from its image_size, --frames from "
     "its frames", cxxopts::value<std::string>())
    // No cxxopts default for these two: whether they were given decides
    // whether --config's values apply, so the help states the defaults itself.
    ("short-side", "shorter side of the output in pixels (0 = keep) (default: " + std::to_string(o.short_side) +
     ", or --config's image_size)", cxxopts::value<std::string>())
    ("fps", "output frame rate, at most the source's (0 = keep)", cxxopts::value<std::string>()->default_value("0"))
    ("frames", "frames the loader samples per clip: keyframes at the start and middle of each of these segments "
     "(default: " + std::to_string(o.frames) + ", or --config's frames)", cxxopts::value<std::string>())
    ("keyframe-interval", "seconds between keyframes instead (0 = matched to --frames)",
     cxxopts::value<std::string>()->default_value("0"))
    ("jobs", "videos converted in parallel (0 = all cores)", cxxopts::value<std::string>()->default_value("0"))
    ("codec", "auto | libx264 | mpeg4", cxxopts::value<std::string>()->default_value(o.codec))
    ("crf", "quality, lower is closer to the source",
     cxxopts::value<std::string>()->default_value(std::to_string(o.crf)))
    ("no-progress", "no progress bar")
    ("h,help", "this help");
  const auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("in") || !args.count("out")) {
    (args.count("help") ? std::cout : std::cerr)
        << options.help()
        << "\nVideos become .mp4 (H.264 when libx264 is present) at the same relative path (a recipe reading\n"
           "another extension then needs --data.video_ext .mp4); annotation and side files are copied.\n"
           "A run that stops resumes where it left off with the same flags; unreadable videos are listed\n"
           "in OUT/preprocess_failures.tsv and the run goes on. The settings are kept in OUT/preprocess.json.\n";
    return args.count("help") ? 0 : 2;
  }
  o.in_dir = args["in"].as<std::string>();
  o.out_dir = args["out"].as<std::string>();
  if (args.count("config")) {
    data::apply_training_config(args["config"].as<std::string>(), o, args.count("short-side") > 0,
                                args.count("frames") > 0);
  }
  if (args.count("short-side")) o.short_side = number<int64_t>(args, "short-side");
  if (args.count("frames")) o.frames = number<int64_t>(args, "frames");
  o.fps = number<double>(args, "fps");
  o.keyframe_s = number<double>(args, "keyframe-interval");
  o.jobs = number<int>(args, "jobs");
  o.codec = args["codec"].as<std::string>();
  o.crf = number<int>(args, "crf");
  // Unreadable inputs are listed with their error; FFmpeg's own log lines
  // would only break the progress bar.
  av_log_set_level(AV_LOG_FATAL);
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
  if (!s.renamed.empty()) {
    std::cout << "  " << s.renamed.size() << " videos had another extension than .mp4 (first: " << s.renamed[0]
              << "): read the output with --data.video_ext .mp4\n";
  }
  for (const auto& f : s.failures) std::cout << "  failed: " << f.path << ": " << f.error << "\n";
  if (!s.failures.empty()) std::cout << "  (listed in " << o.out_dir << "/" << data::kPreprocessFailures << ")\n";
  return 0;
}

const CommandRegistrar registrar({"preprocess", "re-encode a dataset's videos for training",
                                  [](int argc, char** argv) {
                                    try {
                                      return preprocess_main(argc, argv);
                                    } catch (const cxxopts::exceptions::exception& e) {
                                      std::cerr << "kinema preprocess: " << e.what() << "\n";
                                      return 2;
                                    } catch (const std::exception& e) {
                                      std::cerr << "kinema preprocess: " << exception_message(e) << "\n";
                                      return 1;
                                    }
                                  }});

}  // namespace

}  // namespace kinema
