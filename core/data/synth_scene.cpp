#include "core/data/synth_scene.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <c10/util/Exception.h>

#include "core/data/video_sampling.h"

namespace kinema::data::synth {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTravel = 0.45;      // fraction of the frame a move covers
constexpr double kJumpHeight = 0.35;  // fraction of the frame height
constexpr double kJumpPeriod = 1.2;   // seconds per hop
constexpr double kSpinPeriod = 2.5;   // seconds per turn
constexpr double kGrowMin = 0.6, kGrowMax = 1.6;

enum Action { kLeft, kRight, kUp, kDown, kJump, kSpin, kGrow, kShrink };
enum Shape { kCircle, kSquare, kTriangle, kStar, kDiamond, kHexagon, kPentagon, kCross };

const uint8_t kColours[][3] = {{220, 40, 40},  {40, 180, 60},  {40, 80, 230},  {235, 210, 40},
                               {150, 60, 190}, {245, 140, 30}, {240, 240, 240}, {40, 205, 215}};

// Unit outline (circumradius 1, y down) of each shape.
std::vector<std::array<double, 2>> unit_outline(int shape) {
  std::vector<std::array<double, 2>> p;
  auto regular = [&](int n, double phase) {
    for (int i = 0; i < n; ++i) {
      const double a = phase + 2 * kPi * i / n;
      p.push_back({std::cos(a), std::sin(a)});
    }
  };
  switch (shape) {
    case kCircle: regular(32, 0); break;
    case kSquare: regular(4, kPi / 4); break;
    case kTriangle: regular(3, -kPi / 2); break;
    case kStar:
      for (int i = 0; i < 10; ++i) {
        const double a = -kPi / 2 + kPi * i / 5, r = i % 2 ? 0.45 : 1.0;
        p.push_back({r * std::cos(a), r * std::sin(a)});
      }
      break;
    case kDiamond: p = {{0, -1}, {0.62, 0}, {0, 1}, {-0.62, 0}}; break;
    case kHexagon: regular(6, 0); break;
    case kPentagon: regular(5, -kPi / 2); break;
    case kCross: {
      const double a = 0.3, b = 0.95;
      p = {{-a, -b}, {a, -b}, {a, -a}, {b, -a}, {b, a},   {a, a},
           {a, b},   {-a, b}, {-a, a}, {-b, a}, {-b, -a}, {-a, -a}};
      break;
    }
  }
  return p;
}

double uniform(SplitMix64& rng, double lo, double hi) { return lo + (hi - lo) * rng.uniform01(); }

}  // namespace

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> v = {"circle",  "square",  "triangle", "star",
                                             "diamond", "hexagon", "pentagon", "cross"};
  return v;
}
const std::vector<std::string>& colour_names() {
  static const std::vector<std::string> v = {"red",    "green",  "blue",  "yellow",
                                             "purple", "orange", "white", "cyan"};
  return v;
}
const std::vector<std::string>& action_phrases() {
  static const std::vector<std::string> v = {"moves left", "moves right", "moves up", "moves down",
                                             "jumps",      "spins",       "grows",    "shrinks"};
  return v;
}
const std::vector<std::string>& action_verbs() {
  static const std::vector<std::string> v = {"moves", "moves", "moves", "moves",
                                             "jumps", "spins", "grows", "shrinks"};
  return v;
}

Scene make_scene(const SceneOptions& o, uint64_t seed) {
  TORCH_CHECK(o.width >= 16 && o.height >= 16 && o.width % 2 == 0 && o.height % 2 == 0,
              "kinema::data::synth: frame size must be even and >= 16, got ", o.width, "x",
              o.height);
  TORCH_CHECK(o.fps > 0, "kinema::data::synth: argument 'fps' must be > 0, got ", o.fps);
  TORCH_CHECK(o.min_duration_s > 0 && o.max_duration_s >= o.min_duration_s,
              "kinema::data::synth: need 0 < min_duration_s <= max_duration_s, got ",
              o.min_duration_s, " and ", o.max_duration_s);
  TORCH_CHECK(o.min_objects >= 1 && o.max_objects >= o.min_objects && o.max_objects <= 3,
              "kinema::data::synth: objects per video must satisfy 1 <= min <= max <= 3, got ",
              o.min_objects, "..", o.max_objects);
  SplitMix64 rng(seed);
  Scene s;
  s.seed = seed;
  s.width = o.width;
  s.height = o.height;
  s.fps = o.fps;
  s.num_frames = std::max<int64_t>(1, std::llround(uniform(rng, o.min_duration_s,
                                                           o.max_duration_s) * o.fps));
  s.duration_s = s.num_frames / o.fps;
  for (int c = 0; c < 3; ++c) {
    s.bg_top[c] = static_cast<uint8_t>(rng.uniform_int(20, 90));
    s.bg_bottom[c] = static_cast<uint8_t>(rng.uniform_int(20, 90));
  }
  const int64_t n = rng.uniform_int(o.min_objects, o.max_objects);
  s.connector = static_cast<int>(rng.uniform_int(0, 1));
  const double W = static_cast<double>(o.width), H = static_cast<double>(o.height);
  const double m = std::min(W, H);
  std::set<int> shapes_used, colours_used;
  for (int64_t i = 0; i < n; ++i) {
    Object ob;
    // Distinct shapes and colours within a video keep every caption unambiguous.
    do ob.shape = static_cast<int>(rng.uniform_int(0, shape_names().size() - 1));
    while (shapes_used.count(ob.shape));
    do ob.colour = static_cast<int>(rng.uniform_int(0, colour_names().size() - 1));
    while (colours_used.count(ob.colour));
    shapes_used.insert(ob.shape);
    colours_used.insert(ob.colour);
    do ob.action = static_cast<int>(rng.uniform_int(0, action_phrases().size() - 1));
    while (ob.shape == kCircle && ob.action == kSpin);  // a spinning circle looks still
    ob.radius = uniform(rng, 0.09, 0.14) * m;
    const double r = ob.radius, grow = kGrowMax * r;
    double x_lo = r, x_hi = W - r, y_lo = r, y_hi = H - r;
    switch (ob.action) {
      case kLeft: x_lo += kTravel * W; break;
      case kRight: x_hi -= kTravel * W; break;
      case kUp: y_lo += kTravel * H; break;
      case kDown: y_hi -= kTravel * H; break;
      case kJump: y_lo += kJumpHeight * H; break;
      case kGrow:
      case kShrink: x_lo = y_lo = grow, x_hi = W - grow, y_hi = H - grow; break;
      default: break;
    }
    x_hi = std::max(x_hi, x_lo);
    y_hi = std::max(y_hi, y_lo);
    // A few tries to start apart from the objects already placed.
    double best = -1;
    for (int attempt = 0; attempt < 12; ++attempt) {
      const double cx = uniform(rng, x_lo, x_hi), cy = uniform(rng, y_lo, y_hi);
      double gap = 1e9;
      for (const Object& other : s.objects)
        gap = std::min(gap, std::hypot(cx - other.cx, cy - other.cy) - other.radius - r);
      if (gap > best) {
        best = gap;
        ob.cx = cx;
        ob.cy = cy;
      }
      if (gap > 0) break;
    }
    s.objects.push_back(ob);
  }
  return s;
}

Pose pose_at(const Scene& s, const Object& o, double t) {
  const double u = s.duration_s > 0 ? std::clamp(t / s.duration_s, 0.0, 1.0) : 0.0;
  Pose p{o.cx, o.cy, o.radius, o.angle0};
  switch (o.action) {
    case kLeft: p.cx -= u * kTravel * s.width; break;
    case kRight: p.cx += u * kTravel * s.width; break;
    case kUp: p.cy -= u * kTravel * s.height; break;
    case kDown: p.cy += u * kTravel * s.height; break;
    case kJump: p.cy -= kJumpHeight * s.height * std::abs(std::sin(kPi * t / kJumpPeriod)); break;
    case kSpin: p.angle += 2 * kPi * t / kSpinPeriod; break;
    case kGrow: p.radius *= kGrowMin + (kGrowMax - kGrowMin) * u; break;
    case kShrink: p.radius *= kGrowMax - (kGrowMax - kGrowMin) * u; break;
  }
  return p;
}

std::vector<std::array<double, 2>> outline(const Object& o, const Pose& p) {
  auto pts = unit_outline(o.shape);
  const double c = std::cos(p.angle), sn = std::sin(p.angle);
  for (auto& q : pts) {
    const double x = q[0] * c - q[1] * sn, y = q[0] * sn + q[1] * c;
    q = {p.cx + p.radius * x, p.cy + p.radius * y};
  }
  return pts;
}

std::array<float, 4> box_of(const Scene& s, const Object& o, double t) {
  double x1 = 1e18, y1 = 1e18, x2 = -1e18, y2 = -1e18;
  for (const auto& q : outline(o, pose_at(s, o, t))) {
    x1 = std::min(x1, q[0]);
    y1 = std::min(y1, q[1]);
    x2 = std::max(x2, q[0]);
    y2 = std::max(y2, q[1]);
  }
  auto clip = [](double v, double hi) { return static_cast<float>(std::clamp(v, 0.0, hi)); };
  return {clip(x1, s.width), clip(y1, s.height), clip(x2, s.width), clip(y2, s.height)};
}

void render_frame(const Scene& s, int64_t index, double pixel_noise, uint8_t* rgb,
                  int64_t stride) {
  const int64_t W = s.width, H = s.height;
  const int amp = static_cast<int>(std::clamp(pixel_noise, 0.0, 64.0));
  for (int64_t y = 0; y < H; ++y) {
    uint8_t* row = rgb + y * stride;
    int base[3];
    for (int c = 0; c < 3; ++c)
      base[c] = s.bg_top[c] + static_cast<int>((s.bg_bottom[c] - s.bg_top[c]) * y / (H - 1));
    // Luminance noise, fresh every frame: gives the encoder and decoder real
    // work, like camera footage rather than flat colour.
    SplitMix64 rng(mix_seed(s.seed, static_cast<uint64_t>(index), static_cast<uint64_t>(y)));
    uint64_t bits = 0;
    for (int64_t x = 0; x < W; ++x) {
      if (x % 8 == 0) bits = rng.next();
      const int n = amp ? static_cast<int>(bits & 0xff) % (2 * amp + 1) - amp : 0;
      bits >>= 8;
      for (int c = 0; c < 3; ++c) row[3 * x + c] = static_cast<uint8_t>(std::clamp(base[c] + n, 0, 255));
    }
  }
  const double t = index / s.fps;
  std::vector<double> xs;
  for (const Object& o : s.objects) {
    const auto pts = outline(o, pose_at(s, o, t));
    double ymin = 1e18, ymax = -1e18;
    for (const auto& q : pts) ymin = std::min(ymin, q[1]), ymax = std::max(ymax, q[1]);
    const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(ymin)));
    const int64_t y1 = std::min<int64_t>(H - 1, static_cast<int64_t>(std::ceil(ymax)));
    const uint8_t* col = kColours[o.colour];
    // Even-odd scanline fill at pixel centres.
    for (int64_t y = y0; y <= y1; ++y) {
      const double yc = y + 0.5;
      xs.clear();
      for (size_t i = 0, j = pts.size() - 1; i < pts.size(); j = i++) {
        const double ya = pts[i][1], yb = pts[j][1];
        if ((ya <= yc && yc < yb) || (yb <= yc && yc < ya))
          xs.push_back(pts[i][0] + (yc - ya) * (pts[j][0] - pts[i][0]) / (yb - ya));
      }
      std::sort(xs.begin(), xs.end());
      uint8_t* row = rgb + y * stride;
      for (size_t k = 0; k + 1 < xs.size(); k += 2) {
        const int64_t xa = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(xs[k] - 0.5)));
        const int64_t xb = std::min<int64_t>(W - 1, static_cast<int64_t>(std::floor(xs[k + 1] - 0.5)));
        for (int64_t x = xa; x <= xb; ++x) {
          row[3 * x] = col[0];
          row[3 * x + 1] = col[1];
          row[3 * x + 2] = col[2];
        }
      }
    }
  }
}

std::string object_phrase(const Object& o) {
  const std::string& colour = colour_names()[o.colour];
  const bool vowel = std::string("aeiou").find(colour[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + colour + " " + shape_names()[o.shape];
}

namespace {

std::string join_clauses(const std::vector<std::string>& c, int connector) {
  if (c.size() == 1) return c[0];
  if (c.size() == 2) return c[0] + (connector == 0 ? " while " : " and ") + c[1];
  return connector == 0 ? c[0] + ", " + c[1] + " and " + c[2]
                        : c[0] + " while " + c[1] + " and " + c[2];
}

std::string caption_of(const std::vector<Object>& objects, int connector) {
  std::vector<std::string> clauses;
  for (const Object& o : objects) clauses.push_back(object_phrase(o) + " " + action_phrases()[o.action]);
  return join_clauses(clauses, connector);
}

}  // namespace

std::string caption(const Scene& s) { return caption_of(s.objects, s.connector); }

std::vector<HardNegative> hard_negatives(const Scene& s, int per_kind, uint64_t seed) {
  std::set<int> present;
  for (const Object& o : s.objects) present.insert(o.shape);
  std::vector<HardNegative> nouns, verbs;
  for (size_t i = 0; i < s.objects.size(); ++i) {
    for (int sh = 0; sh < static_cast<int>(shape_names().size()); ++sh) {
      if (present.count(sh)) continue;  // a shape absent from the video: surely false
      auto objs = s.objects;
      objs[i].shape = sh;
      nouns.push_back({caption_of(objs, s.connector), "noun"});
    }
    for (int a = 0; a < static_cast<int>(action_phrases().size()); ++a) {
      if (action_verbs()[a] == action_verbs()[s.objects[i].action]) continue;
      auto objs = s.objects;
      objs[i].action = a;
      verbs.push_back({caption_of(objs, s.connector), "verb"});
    }
  }
  SplitMix64 rng(seed);
  std::vector<HardNegative> out;
  for (auto* pool : {&nouns, &verbs}) {
    for (size_t k = 0; k < pool->size() && static_cast<int>(k) < per_kind; ++k) {
      std::swap((*pool)[k], (*pool)[rng.uniform_int(k, pool->size() - 1)]);
      out.push_back((*pool)[k]);
    }
  }
  return out;
}

CaptionPos caption_pos(const Scene& s) {
  CaptionPos p;
  for (const Object& o : s.objects) {
    p.nouns.push_back(shape_names()[o.shape]);
    p.verbs.push_back(action_verbs()[o.action]);
    p.noun_phrases.push_back(object_phrase(o));
    p.tags.push_back(shape_names()[o.shape]);
  }
  return p;
}

}  // namespace kinema::data::synth
