#pragma once
// `kinema synth`: generates a small but real video-language dataset: H.264
// mp4 videos of coloured shapes performing actions, captions, per-frame boxes,
// detector-like detections, region features, a WebVid-style CSV and a
// retrieval test split with hard negatives. Same options + seed -> byte-
// identical files.
//
// Options (SynthOptions; CLI flags are the same names with dashes):
//   out_dir            output directory: new, empty, or an earlier kinema synth
//                      output (synth.json or kIncompleteMarker); anything else is refused
//   num_train          training videos (default 200)
//   num_test           test videos (default 250: with negatives_per_kind 4, 1,000
//                      noun + 1,000 verb hard-negative pairs, enough to tell a
//                      few points of accuracy from chance)
//   width, height      frame size in pixels, even (default 112x112)
//   fps                frame rate (default 10)
//   min_duration_s, max_duration_s   video length, uniform in [min, max] (8..16)
//   min_objects, max_objects         objects per video, 1..3 (default 1..3)
//   gop_s              seconds between keyframes (default 1.0)
//   codec              "auto" (libx264 when available, else mpeg4), "libx264", "mpeg4"
//   preset, crf        libx264 preset (default "veryfast") and quality (23)
//   pixel_noise        amplitude of per-pixel background noise (default 4)
//   box_jitter         detections: box coordinates += N(0, jitter * box size) (0.05)
//   miss_rate          detections: probability that a box is missed (0.05)
//   false_rate         detections: probability of a false box per frame (0.1)
//   region_frames      frames per video with region features (default 8)
//   region_dim         region feature size (default 2048)
//   feature_noise      std of the noise added to region features (default 0.1)
//   negatives_per_kind hard negatives per test video and kind (noun/verb) (4)
//   seed               everything derives from it (default 0)
//   threads            videos generated in parallel (0 = hardware threads, max 8)
//
// Files under out_dir:
//   train.csv, test.csv   WebVid layout: videoid,contentUrl,duration,page_dir,name
//                         (duration as "PT00H00M12S"; page_dir is "train"/"test")
//   videos/<page_dir>/<videoid>.mp4
//   annotations/<videoid>.json   ground-truth boxes, plain per-frame JSON:
//       {"video_id","width","height","fps","num_frames","classes":[shape names],
//        "objects":[{"shape","colour","action"}],
//        "frames":[{"frame_index":i,"time":t,"image_w":W,"image_h":H,
//                   "boxes":[[x1,y1,x2,y2],...],"labels":["circle",...],
//                   "label_ids":[0,...],"attributes":["red",...],"scores":[1.0,...]}]}
//   detections/<videoid>.json    same layout with detector-like noise (false boxes
//                                have attribute "" and lower scores)
//   regions/<page_dir>/<videoid>/frame_<index:06d>.npz   bottom-up-attention layout
//       per sampled frame: x [N,region_dim] float32, bbox [N,4] float32 (x1,y1,x2,y2
//       pixels), num_bbox int64, image_h int64, image_w int64, cls [N] int64 (shape
//       id), conf [N] float32. Features are a fixed random projection (the same
//       for every seed) of the object's shape, colour, box and motion, plus noise.
//   train_meta.jsonl, test_meta.jsonl   per video: {"videoid","page_dir","caption",
//       "tags","nouns","verbs","noun_phrases","objects","duration","num_frames",
//       "fps","width","height"} (POS known from the generator)
//   test_hard_negatives.jsonl   {"videoid","positive","negatives":[{"caption","kind"}]}
//   vocab.txt    word-level WordPiece vocabulary of every caption (train, test and
//                hard negatives), built by build_word_vocab (vocab_builder.h)
//   synth.json   the options, the encoder used, the vocabulary and the counts
#include <cstdint>
#include <string>
#include <vector>

namespace kinema::data::synth {

// Present in out_dir while synth writes it (removed once synth.json is written):
// an interrupted run leaves a folder kinema may complete, never a finished one.
inline constexpr const char* kIncompleteMarker = ".kinema-synth-incomplete";

struct SynthOptions {
  std::string out_dir;
  int64_t num_train = 200, num_test = 250;
  int64_t width = 112, height = 112;
  double fps = 10;
  double min_duration_s = 8, max_duration_s = 16;
  int64_t min_objects = 1, max_objects = 3;
  double gop_s = 1.0;
  std::string codec = "auto", preset = "veryfast";
  int crf = 23;
  double pixel_noise = 4;
  double box_jitter = 0.05, miss_rate = 0.05, false_rate = 0.1;
  int64_t region_frames = 8, region_dim = 2048;
  double feature_noise = 0.1;
  int negatives_per_kind = 4;
  uint64_t seed = 0;
  int threads = 0;
};

struct SynthSummary {
  std::string out_dir;
  std::string encoder;  // "libx264" or "mpeg4"
  int64_t videos = 0, frames = 0;
  double seconds = 0;  // wall time
  std::vector<std::string> files;  // the top-level files written
};

// Throws c10::Error naming the option or file on bad input / I/O failure.
SynthSummary generate(const SynthOptions& options);

}  // namespace kinema::data::synth
