#pragma once
// The world of `kinema synth`: coloured shapes performing actions on a plain
// background. A Scene is drawn from a seed; everything else (frames, boxes,
// captions, hard negatives, region descriptors) is a pure function of it.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kinema::data::synth {

// Vocabulary. Indices are the class ids written to annotations.
const std::vector<std::string>& shape_names();   // circle, square, triangle, ...
const std::vector<std::string>& colour_names();  // red, green, blue, ...
const std::vector<std::string>& action_phrases();  // "moves left", "jumps", ...
// The verb of each action phrase ("moves" for all four moves).
const std::vector<std::string>& action_verbs();

struct Object {
  int shape = 0, colour = 0, action = 0;
  double cx = 0, cy = 0;  // centre at t = 0, pixels
  double radius = 0;      // circumradius at t = 0, pixels
  double angle0 = 0;      // initial rotation, radians
};

// Where an object is at time t.
struct Pose {
  double cx, cy, radius, angle;
};

struct Scene {
  int64_t width = 0, height = 0;
  double duration_s = 0, fps = 0;
  int64_t num_frames = 0;
  std::array<uint8_t, 3> bg_top{}, bg_bottom{};
  std::vector<Object> objects;
  int connector = 0;  // caption template for joining clauses
  uint64_t seed = 0;  // drives per-frame pixel noise
};

struct SceneOptions {
  int64_t width = 112, height = 112;
  double fps = 10, min_duration_s = 8, max_duration_s = 16;
  int64_t min_objects = 1, max_objects = 3;
};

Scene make_scene(const SceneOptions& options, uint64_t seed);

Pose pose_at(const Scene& scene, const Object& object, double t);
// Polygon outline (pixels) of an object in a pose.
std::vector<std::array<double, 2>> outline(const Object& object, const Pose& pose);
// Axis-aligned box [x1, y1, x2, y2] of the outline, clipped to the frame.
std::array<float, 4> box_of(const Scene& scene, const Object& object, double t);

// Draws frame `index` as packed RGB24 rows of `stride` bytes.
void render_frame(const Scene& scene, int64_t index, double pixel_noise, uint8_t* rgb,
                  int64_t stride);

// Captions and their parts.
std::string object_phrase(const Object& o);  // "a red circle"
std::string caption(const Scene& scene);     // "a red circle jumps while a blue square moves left"

struct HardNegative {
  std::string caption;
  std::string kind;  // "noun" or "verb"
};
// Captions that differ from caption(scene) in exactly one noun (a shape) or
// one verb (an action with a different verb); up to `per_kind` of each kind.
std::vector<HardNegative> hard_negatives(const Scene& scene, int per_kind, uint64_t seed);

struct CaptionPos {
  std::vector<std::string> nouns, verbs, noun_phrases, tags;
};
CaptionPos caption_pos(const Scene& scene);

}  // namespace kinema::data::synth
