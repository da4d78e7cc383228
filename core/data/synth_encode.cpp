#include "core/data/synth_encode.h"

#include <cmath>
#include <cstring>

#include <c10/util/Exception.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace kinema::data::synth {

namespace {

std::string av_err(int e) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(e, buf, sizeof(buf));
  return buf;
}

// Frame buffers with their padding zeroed: SIMD converters and encoders may
// read past the visible width, and stale heap bytes there would make the output
// depend on memory history instead of only on the pixels.
int alloc_zeroed(AVFrame* f, int align) {
  const int err = av_frame_get_buffer(f, align);
  if (err < 0) return err;
  for (AVBufferRef* b : f->buf)
    if (b) std::memset(b->data, 0, b->size);
  return 0;
}

}  // namespace

std::string resolve_encoder(const std::string& codec) {
  if (codec == "auto") return avcodec_find_encoder_by_name("libx264") ? "libx264" : "mpeg4";
  TORCH_CHECK(codec == "libx264" || codec == "mpeg4",
              "kinema::data::synth: unknown codec '", codec, "' (expected auto, libx264, mpeg4)");
  TORCH_CHECK(avcodec_find_encoder_by_name(codec.c_str()),
              "kinema::data::synth: this libavcodec has no '", codec, "' encoder");
  return codec;
}

struct Mp4Writer::Impl {
  std::string path, encoder;
  AVFormatContext* oc = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* st = nullptr;
  AVFrame* frame = nullptr;
  AVFrame* rgb = nullptr;  // aligned copy of the caller's pixels
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int64_t next_pts = 0;
  bool header_written = false, finished = false;

  ~Impl() {
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    av_frame_free(&rgb);
    avcodec_free_context(&enc);
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
    }
  }

  void check(int err, const char* what) const {
    TORCH_CHECK(err >= 0, "kinema::data::synth: '", path, "': ", what, ": ", av_err(err));
  }

  void drain(bool flush) {
    check(avcodec_send_frame(enc, flush ? nullptr : frame), "encoding");
    while (true) {
      const int err = avcodec_receive_packet(enc, pkt);
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
      check(err, "encoding");
      av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      check(av_interleaved_write_frame(oc, pkt), "writing a packet");
    }
  }
};

Mp4Writer::Mp4Writer(const std::string& path, int64_t width, int64_t height, double fps,
                     const EncodeOptions& o)
    : impl_(std::make_unique<Impl>()) {
  // x264 prints statistics for every file at the default level.
  if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_ERROR);
  Impl& m = *impl_;
  m.path = path;
  m.encoder = resolve_encoder(o.codec);
  TORCH_CHECK(width > 0 && height > 0 && width % 2 == 0 && height % 2 == 0,
              "kinema::data::synth: frame size must be even, got ", width, "x", height);
  TORCH_CHECK(o.gop >= 1, "kinema::data::synth: argument 'gop' must be >= 1, got ", o.gop);
  m.check(avformat_alloc_output_context2(&m.oc, nullptr, "mp4", path.c_str()), "creating mp4");
  m.oc->flags |= AVFMT_FLAG_BITEXACT;  // no library version strings in the file
  const AVCodec* codec = avcodec_find_encoder_by_name(m.encoder.c_str());
  m.enc = avcodec_alloc_context3(codec);
  TORCH_CHECK(m.enc, "kinema::data::synth: out of memory");
  // Frame rates like 29.97 keep their exact ratio.
  const AVRational rate = av_d2q(fps, 100000);
  m.enc->width = static_cast<int>(width);
  m.enc->height = static_cast<int>(height);
  m.enc->time_base = av_inv_q(rate);
  m.enc->framerate = rate;
  m.enc->pix_fmt = AV_PIX_FMT_YUV420P;
  m.enc->gop_size = static_cast<int>(o.gop);
  m.enc->keyint_min = static_cast<int>(o.gop);
  m.enc->thread_count = 1;  // determinism: threaded encoders may split work differently
  m.enc->flags |= AV_CODEC_FLAG_BITEXACT;
  if (m.oc->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (m.encoder == "libx264") {
    av_opt_set(m.enc->priv_data, "preset", o.preset.c_str(), 0);
    av_opt_set(m.enc->priv_data, "crf", std::to_string(o.crf).c_str(), 0);
    // Keyframes exactly every `gop` frames (no scene cuts). Macroblock-tree
    // rate control is off: measured here, it made the bytes depend on which
    // thread encoded the video.
    av_opt_set(m.enc->priv_data, "x264-params", "scenecut=0:mbtree=0", 0);
    // A forced keyframe is an IDR frame (a seek point), not a plain I frame.
    av_opt_set(m.enc->priv_data, "forced-idr", "1", 0);
  } else {
    m.enc->flags |= AV_CODEC_FLAG_QSCALE;
    m.enc->global_quality = FF_QP2LAMBDA * std::max(2, o.crf / 6);
    m.enc->max_b_frames = 2;
  }
  m.check(avcodec_open2(m.enc, codec, nullptr), "opening the encoder");
  m.st = avformat_new_stream(m.oc, nullptr);
  TORCH_CHECK(m.st, "kinema::data::synth: out of memory");
  m.st->time_base = m.enc->time_base;
  m.st->avg_frame_rate = rate;
  m.check(avcodec_parameters_from_context(m.st->codecpar, m.enc), "stream parameters");
  m.check(avio_open(&m.oc->pb, path.c_str(), AVIO_FLAG_WRITE), "opening for writing");
  m.check(avformat_write_header(m.oc, nullptr), "writing the header");
  m.header_written = true;
  m.frame = av_frame_alloc();
  m.rgb = av_frame_alloc();
  m.pkt = av_packet_alloc();
  TORCH_CHECK(m.frame && m.rgb && m.pkt, "kinema::data::synth: out of memory");
  m.rgb->format = AV_PIX_FMT_RGB24;
  m.rgb->width = m.enc->width;
  m.rgb->height = m.enc->height;
  m.check(alloc_zeroed(m.rgb, 64), "allocating a frame");
  m.frame->format = AV_PIX_FMT_YUV420P;
  m.frame->width = m.enc->width;
  m.frame->height = m.enc->height;
  m.check(alloc_zeroed(m.frame, 64), "allocating a frame");
  m.sws = sws_getContext(m.enc->width, m.enc->height, AV_PIX_FMT_RGB24, m.enc->width,
                         m.enc->height, AV_PIX_FMT_YUV420P,
                         // Bit-exact conversion: the same pixels give the same
                         // bytes whatever the SIMD path or buffer alignment.
                         SWS_BILINEAR | SWS_BITEXACT | SWS_ACCURATE_RND, nullptr, nullptr,
                         nullptr);
  TORCH_CHECK(m.sws, "kinema::data::synth: cannot create the colour converter");
}

Mp4Writer::~Mp4Writer() {
  if (!impl_->finished && impl_->header_written) {
    try {
      finish();
    } catch (...) {
      // A destructor must not throw; the caller saw or will see the failure.
    }
  }
}

void Mp4Writer::write(const uint8_t* rgb, int64_t stride, bool keyframe) {
  Impl& m = *impl_;
  TORCH_CHECK(!m.finished, "kinema::data::synth: '", m.path, "': write after finish");
  if (!av_frame_is_writable(m.frame)) {
    // The encoder still references the last frame: give this one fresh buffers.
    av_frame_unref(m.frame);
    m.frame->format = AV_PIX_FMT_YUV420P;
    m.frame->width = m.enc->width;
    m.frame->height = m.enc->height;
    m.check(alloc_zeroed(m.frame, 64), "allocating a frame");
  }
  for (int y = 0; y < m.enc->height; ++y)
    std::memcpy(m.rgb->data[0] + static_cast<int64_t>(y) * m.rgb->linesize[0], rgb + y * stride,
                static_cast<size_t>(m.enc->width) * 3);
  sws_scale(m.sws, m.rgb->data, m.rgb->linesize, 0, m.enc->height, m.frame->data,
            m.frame->linesize);
  m.frame->pts = m.next_pts++;
  m.frame->pict_type = keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  m.drain(false);
}

void Mp4Writer::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  m.finished = true;
  m.drain(true);
  m.check(av_write_trailer(m.oc), "writing the trailer");
  m.check(avio_closep(&m.oc->pb), "closing");
}

const std::string& Mp4Writer::encoder() const { return impl_->encoder; }

}  // namespace kinema::data::synth
