#pragma once
// Writes RGB frames to an .mp4 through libavcodec/libavformat: H.264 via
// libx264 when this libavcodec has it, else the native MPEG-4 Part 2 encoder.
// Encoding is single-threaded and bit-exact so the same frames give the same
// bytes.
#include <cstdint>
#include <memory>
#include <string>

namespace kinema::data::synth {

struct EncodeOptions {
  std::string codec = "auto";  // "auto" (libx264, else mpeg4), "libx264" or "mpeg4"
  int64_t gop = 10;            // frames between keyframes (scene cuts disabled)
  std::string preset = "veryfast";  // libx264 preset
  int crf = 23;                     // libx264 quality; mpeg4 uses qscale = crf / 6
};

// The encoder "auto" resolves to on this system.
std::string resolve_encoder(const std::string& codec);

class Mp4Writer {
 public:
  Mp4Writer(const std::string& path, int64_t width, int64_t height, double fps,
            const EncodeOptions& options);
  ~Mp4Writer();
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;

  // One packed RGB24 frame (rows of `stride` bytes); `keyframe` forces this
  // frame to be a keyframe (besides those every `gop` frames).
  void write(const uint8_t* rgb, int64_t stride, bool keyframe = false);
  // Flushes the encoder and writes the trailer; called by the destructor if needed.
  void finish();
  const std::string& encoder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kinema::data::synth
