#pragma once
// One annotated sample as every dataset reader produces it and the loader
// consumes it. Readers fill what their format carries; the rest stays empty.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kinema::data {

// A detected or annotated object box in pixels of the frame it belongs to.
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int64_t label = -1;  // class id (e.g. Visual Genome 1600 index), -1 unknown
  std::string name;    // class name when the source gives one
  float score = 1.0f;  // detector confidence
};

// The boxes of one frame of a video.
struct FrameBoxes {
  double time_s = -1;       // frame time when known
  int64_t frame_index = -1;  // frame index when known
  int64_t image_w = 0, image_h = 0;
  std::vector<Box> boxes;
};

// Part-of-speech annotations of one caption (precomputed or from the tagger).
struct CaptionParts {
  std::vector<std::string> nouns;
  std::vector<std::string> verbs;
  std::vector<std::string> noun_phrases;
};

struct Sample {
  std::string id;          // video id / clip name, unique within a dataset
  std::string video_path;  // resolved path of the video file
  std::vector<std::string> captions;
  double start_s = -1, end_s = -1;  // clip bounds inside the video, -1 = whole video

  std::vector<FrameBoxes> frames;   // per-frame boxes given inline (OA-Trans, STOA)
  // Per-frame boxes JSON (ReadOptions::detections_root), read by the loader's
  // worker when the sample is made, so a large dataset's boxes are not all in
  // memory at once; a malformed file is then reported and the sample replaced
  // like a corrupt video.
  std::string boxes_path;
  std::string region_path;          // pre-extracted region features (.npz, DemoVLP)
  std::vector<std::string> tags;    // object tags (OA-Trans)
  std::vector<CaptionParts> parts;  // aligned with captions when present

  // Question answering / multiple choice.
  std::string question;
  std::string answer;
  int64_t answer_label = -1;
  std::vector<std::string> options;

  // Anything else the source carries (e.g. split, category), kept verbatim.
  std::map<std::string, std::string> extra;
};

}  // namespace kinema::data
