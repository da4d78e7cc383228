#include "core/data/video_reader.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <sys/stat.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

namespace kinema::data {

VideoError::VideoError(const std::string& path, const std::string& what)
    : std::runtime_error("kinema::data::VideoReader: '" + path + "': " + what), path_(path) {}

namespace {

using Clock = std::chrono::steady_clock;

std::string av_error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecCloser {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};

// The demuxers kinema opens, over FFmpeg's "file" protocol only. Playlists
// (hls, concat), image sequences (image2) and network protocols would make a
// "video" read other local files or URLs it names.
constexpr const char* kDemuxerWhitelist =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,flv,ogg,mpeg,asf,gif";

}  // namespace

struct VideoReader::Impl {
  std::string path;
  DecodeOptions opt;
  VideoInfo info;
  DecodeStats stats;
  Clock::time_point deadline;
  bool timed_out = false;

  std::unique_ptr<AVFormatContext, FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecCloser> dec;
  std::unique_ptr<AVPacket, PacketFree> pkt{av_packet_alloc()};
  std::unique_ptr<AVFrame, FrameFree> frame{av_frame_alloc()};
  std::unique_ptr<SwsContext, SwsFree> sws;
  std::vector<uint8_t> rgb;  // scratch: one resized RGB24 frame

  int stream = -1;
  AVRational tb{1, 1};
  int64_t start_pts = 0;
  std::vector<int64_t> keyframes;  // stream timestamps of keyframes, ascending
  // Decoder position: index of the last frame received; -1 before the first.
  int64_t position = -1;
  bool at_eof = false;
  // Timestamp the demuxer has reached (the last seek point or decoded frame):
  // what a seek is weighed against.
  int64_t here = INT64_MIN;

  [[noreturn]] void fail(const std::string& what) const {
    throw VideoError(path, timed_out ? what + " (timed out after " +
                                           std::to_string(opt.timeout_s) + " s)"
                                     : what);
  }

  static int interrupt_cb(void* self) {
    auto* impl = static_cast<Impl*>(self);
    if (Clock::now() > impl->deadline) {
      impl->timed_out = true;
      return 1;
    }
    return 0;
  }

  // Only regular files (a FIFO would block, a device never end), and only
  // containers on the whitelist: probed here first so the error names what
  // the file is (an HLS playlist saved as .mp4 is refused, not followed).
  void check_plain_video_file() {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(std::string("cannot open: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
    std::vector<unsigned char> head(4096 + AVPROBE_PADDING_SIZE, 0);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(head.data()), 4096);
    AVProbeData probe{};
    const std::string filename = path;
    probe.filename = filename.c_str();
    probe.buf = head.data();
    probe.buf_size = static_cast<int>(in.gcount());
    const AVInputFormat* format = av_probe_input_format(&probe, 1);
    if (format && av_match_list(format->name, kDemuxerWhitelist, ',') <= 0)
      fail(std::string("is a '") + format->name + "' file, not a video container kinema reads (" +
           kDemuxerWhitelist + "); playlists and image sequences are refused");
  }

  void arm_deadline() {
    timed_out = false;
    deadline = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(opt.timeout_s * 1e6));
  }

  void open() {
    // Our errors carry FFmpeg's message; keep its own chatter to real errors.
    if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_ERROR);
    arm_deadline();
    check_plain_video_file();
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) fail("out of memory");
    raw->interrupt_callback.callback = &Impl::interrupt_cb;
    raw->interrupt_callback.opaque = this;
    AVDictionary* options = nullptr;
    av_dict_set(&options, "protocol_whitelist", "file", 0);
    av_dict_set(&options, "format_whitelist", kDemuxerWhitelist, 0);
    // "file:" so that a name like "concat:a|b" or "http://x" is just a file name.
    const std::string url = "file:" + path;
    int err = avformat_open_input(&raw, url.c_str(), nullptr, &options);
    av_dict_free(&options);
    if (err < 0) fail("cannot open: " + av_error_string(err));  // raw is freed on failure
    fmt.reset(raw);
    err = avformat_find_stream_info(fmt.get(), nullptr);
    if (err < 0) fail("cannot read stream info: " + av_error_string(err));
    const AVCodec* codec = nullptr;
    stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream < 0 || !codec) fail("no decodable video stream");
    AVStream* st = fmt->streams[stream];
    dec.reset(avcodec_alloc_context3(codec));
    if (!dec) fail("out of memory");
    if ((err = avcodec_parameters_to_context(dec.get(), st->codecpar)) < 0)
      fail("bad codec parameters: " + av_error_string(err));
    dec->thread_count = 1;  // parallelism comes from decoding clips concurrently
    if ((err = avcodec_open2(dec.get(), codec, nullptr)) < 0)
      fail("cannot open decoder '" + std::string(codec->name) + "': " + av_error_string(err));
    if (dec->width <= 0 || dec->height <= 0) fail("video has no frame size");

    tb = st->time_base;
    start_pts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    info.width = dec->width;
    info.height = dec->height;
    info.codec = codec->name;
    info.container = fmt->iformat->name;
    AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    info.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      info.duration_s = st->duration * av_q2d(tb);
    else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
      info.duration_s = fmt->duration / static_cast<double>(AV_TIME_BASE);
    info.num_frames = st->nb_frames;

    // The index (mp4, avi, mkv cues) gives keyframe positions without reading
    // the file; it is in decode timestamps, close enough to choose seeks.
    const int entries = avformat_index_get_entries_count(st);
    for (int i = 0; i < entries; ++i) {
      const AVIndexEntry* e = avformat_index_get_entry(st, i);
      if (e && (e->flags & AVINDEX_KEYFRAME)) keyframes.push_back(e->timestamp);
    }
    if (info.num_frames <= 0 && entries > 1 && std::string(fmt->iformat->name).find("mp4") !=
                                                    std::string::npos)
      info.num_frames = entries;  // mov's index lists every sample

    const double expected = info.duration_s * info.fps;
    const bool inconsistent =
        std::abs(info.num_frames - expected) > std::max(2.0, 0.1 * std::max<double>(
                                                                 info.num_frames, expected));
    if (info.num_frames <= 0 || info.duration_s <= 0 || info.fps <= 0 || inconsistent) scan();
    std::sort(keyframes.begin(), keyframes.end());
    keyframes.erase(std::unique(keyframes.begin(), keyframes.end()), keyframes.end());
    here = keyframes.empty() ? start_pts : std::min(start_pts, keyframes.front());
  }

  // The container's numbers are missing or disagree: read every packet (no
  // decoding) to count frames, measure the duration and find the keyframes.
  void scan() {
    int64_t count = 0, first = INT64_MAX, last = INT64_MIN, last_dur = 0;
    std::vector<int64_t> keys;
    int err;
    while ((err = av_read_frame(fmt.get(), pkt.get())) >= 0) {
      if (pkt->stream_index == stream) {
        ++count;
        const int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        if (ts != AV_NOPTS_VALUE) {
          first = std::min(first, ts);
          if (ts >= last) {
            last = ts;
            last_dur = pkt->duration;
          }
          if (pkt->flags & AV_PKT_FLAG_KEY) keys.push_back(ts);
        }
      }
      av_packet_unref(pkt.get());
    }
    if (err != AVERROR_EOF) fail("cannot read packets: " + av_error_string(err));
    if (count == 0) fail("video stream has no packets");
    info.scanned = true;
    info.num_frames = count;
    if (first != INT64_MAX) {
      start_pts = first;
      const double span = (last - first + std::max<int64_t>(last_dur, 0)) * av_q2d(tb);
      if (span > 0) info.duration_s = span;
    }
    if (info.fps <= 0 && info.duration_s > 0) info.fps = count / info.duration_s;
    if (info.duration_s <= 0 && info.fps > 0) info.duration_s = count / info.fps;
    if (info.fps <= 0) fail("cannot determine the frame rate");
    if (!keys.empty()) keyframes = keys;
    seek_to(start_pts, /*backward=*/true);
  }

  int64_t index_of(int64_t pts) const {
    return std::llround((pts - start_pts) * av_q2d(tb) * info.fps);
  }
  int64_t pts_of(int64_t index) const {
    return start_pts + std::llround(index / info.fps / av_q2d(tb));
  }

  void seek_to(int64_t ts, bool backward) {
    const int err = av_seek_frame(fmt.get(), stream, ts, backward ? AVSEEK_FLAG_BACKWARD : 0);
    if (err < 0) {
      // Some demuxers refuse a seek before the first packet; rewind by bytes.
      if (avformat_seek_file(fmt.get(), -1, INT64_MIN, 0, 0, AVSEEK_FLAG_BYTE) < 0)
        fail("cannot seek: " + av_error_string(err));
    }
    avcodec_flush_buffers(dec.get());
    ++stats.seeks;
    position = -1;
    here = ts;
    at_eof = false;
  }

  // The keyframe to seek to for `target` (INT64_MIN: the start). Index
  // timestamps may be decode timestamps, which run ahead of presentation by
  // the reorder delay, hence the margin.
  int64_t seek_point(int64_t target) const {
    // has_b_frames may still be 0 before the first frames are decoded: assume
    // at least the usual B-pyramid delay of 2.
    const int64_t ts = pts_of(target - std::max(dec->has_b_frames, 2));
    auto it = std::upper_bound(keyframes.begin(), keyframes.end(), ts);
    return it == keyframes.begin() ? INT64_MIN : *(it - 1);
  }

  // Seek only when it beats decoding forward: the target is behind us, or a
  // keyframe lies between where the demuxer is and the target.
  bool should_seek(int64_t target) const {
    if (at_eof) return true;
    if (position >= 0 && target <= position) return true;
    if (keyframes.empty()) return (target - index_of(here)) / info.fps > opt.seek_ahead_s;
    return seek_point(target) > here;
  }

  // Converts the current frame into slot `slot` of `out` ([T,3,H,W] uint8).
  void convert(const CropWindow& w, at::Tensor& out, int64_t slot) {
    sws.reset(sws_getCachedContext(sws.release(), frame->width, frame->height,
                                   static_cast<AVPixelFormat>(frame->format), w.scaled_w,
                                   w.scaled_h, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr,
                                   nullptr));
    if (!sws) fail("cannot convert pixel format " + std::to_string(frame->format));
    const int stride = static_cast<int>((w.scaled_w * 3 + 63) / 64 * 64);
    rgb.resize(static_cast<size_t>(stride) * w.scaled_h + 64);
    uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {stride, 0, 0, 0};
    sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
    // Crop and go from interleaved RGB to planar [3, H, W] in one pass.
    const int64_t plane = w.out_h * w.out_w;
    uint8_t* o = out.data_ptr<uint8_t>() + slot * 3 * plane;
    for (int64_t y = 0; y < w.out_h; ++y) {
      const uint8_t* row = rgb.data() + (w.y0 + y) * stride + w.x0 * 3;
      uint8_t* r = o + y * w.out_w;
      uint8_t* g = r + plane;
      uint8_t* b = g + plane;
      for (int64_t x = 0; x < w.out_w; ++x) {
        r[x] = row[3 * x];
        g[x] = row[3 * x + 1];
        b[x] = row[3 * x + 2];
      }
    }
  }

  at::Tensor read_frames(const std::vector<int64_t>& indices, uint64_t crop_seed) {
    if (indices.empty()) fail("no frame indices requested");
    for (int64_t i : indices)
      if (i < 0) fail("negative frame index " + std::to_string(i));
    arm_deadline();
    const CropWindow w = crop_window(info.width, info.height, opt.resize, crop_seed);
    at::Tensor out = at::empty({static_cast<int64_t>(indices.size()), 3, w.out_h, w.out_w},
                               at::kByte);
    // Distinct targets ascending, each with the output slots it fills.
    std::map<int64_t, std::vector<int64_t>> slots;
    for (size_t s = 0; s < indices.size(); ++s) slots[indices[s]].push_back(s);
    auto next = slots.begin();
    int64_t last_slot = -1;  // most recent converted frame
    bool have_frame = false;

    auto fill = [&](int64_t first_slot, const std::vector<int64_t>& targets) {
      for (int64_t s : targets)
        if (s != first_slot) out[s].copy_(out[first_slot]);
    };
    // Hands the decoded frame to every target it satisfies: a target is
    // satisfied by the first frame at or after it (exact for constant rate).
    auto take_frame = [&]() {
      const int64_t ts = frame->best_effort_timestamp != AV_NOPTS_VALUE
                             ? frame->best_effort_timestamp
                             : frame->pts;
      const int64_t idx = ts != AV_NOPTS_VALUE ? index_of(ts) : position + 1;
      position = idx;
      if (ts != AV_NOPTS_VALUE) here = std::max(here, ts);
      ++stats.frames_decoded;
      bool converted = false;
      int64_t first_slot = -1;
      while (next != slots.end() && next->first <= idx) {
        if (!converted) {
          first_slot = next->second.front();
          convert(w, out, first_slot);
          converted = true;
        }
        fill(first_slot, next->second);
        ++next;
      }
      if (converted) {
        have_frame = true;
        last_slot = first_slot;
      }
    };

    int backoff_s = 1;
    bool checking_seek = false;  // verify the first frame after a seek lands early enough
    int64_t seek_target = -1;
    int64_t overshot = -1;  // a target whose keyframe seek landed after it
    while (next != slots.end()) {
      if (Clock::now() > deadline) {
        timed_out = true;
        fail("decoding did not finish");
      }
      // After an overshoot, reach that target by decoding forward from the
      // earlier point instead of seeking to the same keyframe again.
      if (!checking_seek && next->first != overshot && should_seek(next->first)) {
        seek_target = next->first;
        int64_t ts = pts_of(seek_target);
        if (!keyframes.empty()) {
          // Aim a little past the keyframe's index time: demuxers that compare
          // presentation times would otherwise land one keyframe early (a
          // whole GOP decoded for nothing). Still before the next keyframe.
          const int64_t k = seek_point(seek_target);
          ts = k == INT64_MIN ? start_pts : std::min(k + pts_of(2) - start_pts, pts_of(seek_target));
        }
        seek_to(ts, true);
        checking_seek = true;
      }
      int err = at_eof ? AVERROR_EOF : av_read_frame(fmt.get(), pkt.get());
      if (err == AVERROR_EOF) {
        at_eof = true;
        avcodec_send_packet(dec.get(), nullptr);  // drain the decoder
      } else if (err < 0) {
        fail("cannot read packet: " + av_error_string(err));
      } else if (pkt->stream_index != stream) {
        av_packet_unref(pkt.get());
        continue;
      } else {
        ++stats.packets;
        if (opt.skip_nonref) {
          const bool target = pkt->pts == AV_NOPTS_VALUE || slots.count(index_of(pkt->pts)) ||
                              (next != slots.end() && index_of(pkt->pts) >= next->first);
          dec->skip_frame = target ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
        }
        err = avcodec_send_packet(dec.get(), pkt.get());
        av_packet_unref(pkt.get());
        // Damaged packets are concealed by the decoder; missing frames show up
        // below as unsatisfied targets.
        if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_INVALIDDATA)
          fail("decoder error: " + av_error_string(err));
      }
      while (true) {
        err = avcodec_receive_frame(dec.get(), frame.get());
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
        if (err < 0) {
          if (err == AVERROR_INVALIDDATA) break;
          fail("decoder error: " + av_error_string(err));
        }
        if (checking_seek) {
          checking_seek = false;
          const int64_t ts = frame->best_effort_timestamp;
          if (ts != AV_NOPTS_VALUE && index_of(ts) > seek_target && pts_of(seek_target) > start_pts) {
            // The demuxer landed after the target: go back further.
            av_frame_unref(frame.get());
            overshot = seek_target;
            const int64_t back = pts_of(seek_target) -
                                 static_cast<int64_t>(backoff_s / av_q2d(tb));
            backoff_s *= 2;
            seek_to(std::max(back, start_pts), true);
            checking_seek = back > start_pts;
            continue;
          }
        }
        take_frame();
        av_frame_unref(frame.get());
        if (next == slots.end()) break;
      }
      if (at_eof && err == AVERROR_EOF) break;
    }
    if (next != slots.end()) {
      // The stream ended before the remaining targets.
      if (!have_frame) fail("no frame could be decoded (corrupt or truncated file)");
      const int64_t tolerance = std::max<int64_t>(2, info.num_frames / 20);
      if (position + tolerance < std::min(next->first, info.num_frames - 1))
        fail("truncated: the stream ends at frame " + std::to_string(position) + " of " +
             std::to_string(info.num_frames));
      for (; next != slots.end(); ++next) fill(last_slot, next->second);
    }
    return out;
  }
};

VideoReader::VideoReader(const std::string& path, DecodeOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->opt = options;
  if (!impl_->pkt || !impl_->frame) throw VideoError(path, "out of memory");
  impl_->open();
}

VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { return impl_->info; }
const std::string& VideoReader::path() const { return impl_->path; }
const DecodeStats& VideoReader::stats() const { return impl_->stats; }

at::Tensor VideoReader::read_frames(const std::vector<int64_t>& indices, uint64_t crop_seed) {
  return impl_->read_frames(indices, crop_seed);
}

at::Tensor VideoReader::sample(const SamplingOptions& sampling, uint64_t seed, double start_s,
                               double end_s) {
  std::vector<int64_t> idx;
  try {
    idx = sample_frame_indices(info().num_frames, info().fps, sampling, seed, start_s, end_s);
  } catch (const c10::Error& e) {
    throw VideoError(path(), e.what_without_backtrace());
  }
  return read_frames(idx, mix_seed(seed, 0x63726f70 /* "crop" */));
}

at::Tensor read_video(const std::string& path, const SamplingOptions& sampling,
                      const DecodeOptions& options, uint64_t seed, double start_s, double end_s) {
  VideoReader reader(path, options);
  return reader.sample(sampling, seed, start_s, end_s);
}

}  // namespace kinema::data
