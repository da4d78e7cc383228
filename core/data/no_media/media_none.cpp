// The media half of core/data in a build without FFmpeg and OpenCV
// (cmake -DKINEMA_WITH_MEDIA=OFF, used by `scripts/dev.sh gpu-check` with the
// GPU bundle, which cannot carry FFmpeg's codec libraries): the same API,
// every entry point failing with an error that names the file and the reason.
#include <stdexcept>

#include "core/data/png.h"
#include "core/data/synth_encode.h"
#include "core/data/video_reader.h"

namespace kinema::data {

namespace {
constexpr const char* kNoMedia = "this kinema was built without media support (cmake -DKINEMA_WITH_MEDIA=OFF: no FFmpeg, no OpenCV)";

[[noreturn]] void no_media(const std::string& what) { throw std::runtime_error(what + ": " + kNoMedia); }
}  // namespace

VideoError::VideoError(const std::string& path, const std::string& what)
    : std::runtime_error("kinema::data::VideoReader: '" + path + "': " + what), path_(path) {}

struct VideoReader::Impl {};

VideoReader::VideoReader(const std::string& path, DecodeOptions) { throw VideoError(path, kNoMedia); }
VideoReader::~VideoReader() = default;
// Unreachable: no VideoReader is ever constructed in this build.
const VideoInfo& VideoReader::info() const { no_media("kinema::data::VideoReader"); }
const std::string& VideoReader::path() const { no_media("kinema::data::VideoReader"); }
const DecodeStats& VideoReader::stats() const { no_media("kinema::data::VideoReader"); }
at::Tensor VideoReader::read_frames(const std::vector<int64_t>&, uint64_t) { no_media("kinema::data::VideoReader"); }
at::Tensor VideoReader::sample(const SamplingOptions&, uint64_t, double, double) { no_media("kinema::data::VideoReader"); }

at::Tensor read_video(const std::string& path, const SamplingOptions&, const DecodeOptions&, uint64_t, double,
                      double) {
  throw VideoError(path, kNoMedia);
}

std::string encode_png(const at::Tensor&) {
  no_media("encode_png");
}

namespace synth {

std::string resolve_encoder(const std::string&) { no_media("synth"); }

struct Mp4Writer::Impl {};

Mp4Writer::Mp4Writer(const std::string& path, int64_t, int64_t, double, const EncodeOptions&) {
  no_media("synth: cannot write '" + path + "'");
}
Mp4Writer::~Mp4Writer() = default;
void Mp4Writer::write(const uint8_t*, int64_t, bool) { no_media("synth"); }
void Mp4Writer::finish() { no_media("synth"); }
const std::string& Mp4Writer::encoder() const { no_media("synth"); }

}  // namespace synth
}  // namespace kinema::data
