// Readers for per-frame detections (bottom-up-attention .npz, VinVL JSON, the
// plain frames JSON) and their top-K padding.
#include "core/data/detections.h"

#include "core/data/detections_pickle.h"
#include "core/data/formats_detail.h"
#include "core/io/npz.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

namespace kinema::data {

using detail::fail_at;
using nlohmann::json;

namespace {

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

int64_t scalar_int(const std::map<std::string, at::Tensor>& arrays, const char* key,
                   const std::string& path) {
  const auto it = arrays.find(key);
  if (it == arrays.end()) fail_at(path, 0, std::string("missing array '") + key + "'");
  TORCH_CHECK(it->second.numel() == 1, path, ": '", key, "' must hold one number, got shape ",
              shape_of(it->second));
  return it->second.reshape({}).to(at::kLong).item<int64_t>();
}

// Fills name/label of `box` from a label id (bounds-checked against vocab).
void set_label_id(Box& box, int64_t id, const VgVocab& vocab, const std::string& path, int64_t line,
                  const std::string& where) {
  if (id == -1) return;  // written for boxes whose class was unknown
  if (id < 0 || id >= vocab.size()) {
    fail_at(path, line, where + "class id " + std::to_string(id) + " is outside the " +
                            std::to_string(vocab.size()) + "-class vocabulary");
  }
  box.label = id;
  box.name = vocab.name(id);
}

void set_label_name(Box& box, const std::string& name, const VgVocab& vocab) {
  box.name = name;
  box.label = vocab.id(name);
}

float json_number(const json& v, const std::string& path, int64_t line, const std::string& what) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || std::abs(v.get<double>()) > 1e9) {
    fail_at(path, line, what + " must be a finite number, got " + v.dump());
  }
  return v.get<float>();
}

Box json_rect(const json& rect, const std::string& path, int64_t line, const std::string& what) {
  if (!rect.is_array() || rect.size() != 4) fail_at(path, line, what + " must be [x1, y1, x2, y2]");
  Box b;
  b.x1 = json_number(rect[0], path, line, what);
  b.y1 = json_number(rect[1], path, line, what);
  b.x2 = json_number(rect[2], path, line, what);
  b.y2 = json_number(rect[3], path, line, what);
  if (!(b.x2 >= b.x1 && b.y2 >= b.y1)) fail_at(path, line, what + " has x2 < x1 or y2 < y1");
  return b;
}

// An image size member: absent = 0 (unknown: the video's size applies); present, a
// positive integer below 2^20 pixels.
int64_t json_size(const json& frame, const char* key, const std::string& path, int64_t line,
                  const std::string& where = "") {
  const auto it = frame.find(key);
  if (it == frame.end()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (int64_t{1} << 20)) {
    fail_at(path, line, where + "'" + key + "' must be a positive whole number of pixels, got " + it->dump());
  }
  return it->get<int64_t>();
}

// A frame index member: a whole number in [0, 2^31) (a video has fewer frames).
int64_t json_frame_index(const json& frame, const char* key, const std::string& path, int64_t line,
                         const std::string& where) {
  const json& v = frame[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (int64_t{1} << 31)) {
    fail_at(path, line, where + "'" + key + "' must be a frame number in 0..2^31-1, got " + v.dump());
  }
  return v.get<int64_t>();
}

// One VinVL prediction object.
FrameBoxes vinvl_frame(const json& pred, const std::string& path, int64_t line,
                       const VgVocab& vocab, const std::string& where) {
  if (!pred.is_object() || !pred.contains("objects") || !pred["objects"].is_array()) {
    fail_at(path, line, where + "expected an object with an 'objects' list");
  }
  FrameBoxes frame;
  frame.image_h = json_size(pred, "image_h", path, line, where);
  frame.image_w = json_size(pred, "image_w", path, line, where);
  for (const char* key : {"frame", "frame_index"}) {
    if (pred.contains(key)) frame.frame_index = json_frame_index(pred, key, path, line, where);
  }
  const json& objects = pred["objects"];
  for (size_t i = 0; i < objects.size(); ++i) {
    const std::string what = where + "objects[" + std::to_string(i) + "]";
    const json& o = objects[i];
    if (!o.is_object() || !o.contains("rect")) fail_at(path, line, what + ": missing 'rect'");
    Box b = json_rect(o["rect"], path, line, what + ".rect");
    set_label_name(b, detail::json_string(o, "class", path, line, what), vocab);
    if (o.contains("conf")) b.score = json_number(o["conf"], path, line, what + ".conf");
    frame.boxes.push_back(std::move(b));
  }
  return frame;
}

// The frame number a VinVL key ends with ("frame_000012.jpg" -> 12), or -1.
int64_t key_frame_index(std::string key) {
  const size_t dot = key.rfind('.');
  if (dot != std::string::npos && dot + 5 >= key.size()) key.resize(dot);  // an image extension
  size_t start = key.size();
  while (start > 0 && std::isdigit(static_cast<unsigned char>(key[start - 1]))) --start;
  if (start == key.size() || key.size() - start > 9) return -1;
  return std::stoll(key.substr(start));
}

}  // namespace

FrameDetections read_butd_npz(const std::string& path, const VgVocab& vocab) {
  std::map<std::string, at::Tensor> arrays;
  try {
    arrays = io::load_npz(path);
  } catch (const c10::Error& e) {
    // bottom-up-attention.pytorch's own layout: ids, confidences (and sizes)
    // inside a pickled 'info' dict.
    if (std::string(e.what_without_backtrace()).find("object arrays") == std::string::npos) throw;
    arrays = load_npz_with_pickled_dicts(path);
    for (const char* key : {"objects_id", "objects_conf", "image_h", "image_w"}) {
      const auto it = arrays.find(std::string("info.") + key);
      if (!arrays.count(key) && it != arrays.end()) arrays[key] = it->second;
    }
  }
  const auto bbox_it = arrays.find("bbox");
  if (bbox_it == arrays.end()) fail_at(path, 0, "missing array 'bbox'");
  const at::Tensor bbox = bbox_it->second.to(at::kFloat).contiguous();
  TORCH_CHECK(bbox.dim() == 2 && bbox.size(1) == 4, path, ": 'bbox' must be [N,4], got ",
              shape_of(bbox));
  int64_t n = bbox.size(0);
  if (arrays.count("num_bbox")) {
    const int64_t num = scalar_int(arrays, "num_bbox", path);
    TORCH_CHECK(num >= 0 && num <= n, path, ": num_bbox ", num, " does not fit 'bbox' rows ", n);
    n = num;
  }

  FrameDetections out;
  out.boxes.image_h = scalar_int(arrays, "image_h", path);
  out.boxes.image_w = scalar_int(arrays, "image_w", path);
  TORCH_CHECK(out.boxes.image_h > 0 && out.boxes.image_w > 0, path,
              ": image_h and image_w must be positive");

  if (arrays.count("x")) {
    const at::Tensor x = arrays["x"];
    TORCH_CHECK(x.dim() == 2 && x.size(0) >= n, path, ": 'x' must be [N,D] with N >= ", n,
                ", got ", shape_of(x));
    out.features = x.narrow(0, 0, n).to(at::kFloat).contiguous();
  }

  at::Tensor ids, conf;
  // objects_id/objects_conf (bottom-up-attention) or cls/conf (kinema synth).
  const char* id_key = arrays.count("objects_id") ? "objects_id" : "cls";
  const char* conf_key = arrays.count("objects_id") ? "objects_conf" : "conf";
  if (arrays.count(id_key)) {
    ids = arrays[id_key].to(at::kLong).reshape({-1}).contiguous();
    TORCH_CHECK(ids.size(0) >= n, path, ": '", id_key, "' has ", ids.size(0), " entries for ", n, " boxes");
    if (arrays.count(conf_key)) {
      conf = arrays[conf_key].to(at::kFloat).reshape({-1}).contiguous();
      TORCH_CHECK(conf.size(0) >= n, path, ": '", conf_key, "' has ", conf.size(0), " entries for ", n,
                  " boxes");
    }
  } else if (arrays.count("cls_prob")) {
    at::Tensor prob = arrays["cls_prob"].to(at::kFloat);
    TORCH_CHECK(prob.dim() == 2 && prob.size(0) >= n &&
                    (prob.size(1) == vocab.size() || prob.size(1) == vocab.size() + 1),
                path, ": 'cls_prob' must be [N,", vocab.size(), "] or [N,", vocab.size() + 1,
                "] (with background), got ", shape_of(prob));
    if (prob.size(1) == vocab.size() + 1) prob = prob.narrow(1, 1, vocab.size());
    std::tie(conf, ids) = prob.max(1);
    conf = conf.contiguous();
    ids = ids.contiguous();
  }

  const auto b = bbox.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    Box box;
    box.x1 = b[i][0];
    box.y1 = b[i][1];
    box.x2 = b[i][2];
    box.y2 = b[i][3];
    if (ids.defined()) {
      set_label_id(box, ids.data_ptr<int64_t>()[i], vocab, path, 0, "box " + std::to_string(i) + ": ");
    }
    if (conf.defined()) box.score = conf.data_ptr<float>()[i];
    out.boxes.boxes.push_back(std::move(box));
  }
  return out;
}

std::vector<FrameDetections> read_butd_frames(const std::string& dir,
                                              const std::vector<int64_t>& frame_indices,
                                              const VgVocab& vocab) {
  std::vector<FrameDetections> frames;
  frames.reserve(frame_indices.size());
  for (const int64_t index : frame_indices) {
    frames.push_back(read_butd_npz(join_path(dir, std::to_string(index) + ".npz"), vocab));
    frames.back().boxes.frame_index = index;
  }
  return frames;
}

std::vector<std::pair<int64_t, std::string>> list_region_frames(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> frames;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npz") != 0) continue;
    std::string stem = name.substr(0, name.size() - 4);
    if (stem.rfind("frame_", 0) == 0) stem = stem.substr(6);
    if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos) continue;
    TORCH_CHECK(stem.size() <= 9, entry.path().string(), ": frame number too large in the file name");
    frames.emplace_back(std::stoll(stem), entry.path().string());
  }
  TORCH_CHECK(!ec, "kinema::data::list_region_frames: cannot list '", dir, "': ", ec.message());
  std::sort(frames.begin(), frames.end());
  return frames;
}

int64_t count_butd_frames(const std::string& dir) {
  int64_t n = 0;
  while (std::filesystem::exists(join_path(dir, std::to_string(n) + ".npz"))) ++n;
  return n;
}

std::vector<FrameBoxes> read_vinvl(const std::string& path, const VgVocab& vocab) {
  const std::string text = detail::read_file(path);
  std::vector<FrameBoxes> frames;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    const json doc = detail::parse_json(text, path);
    if (doc.is_array()) {
      for (size_t i = 0; i < doc.size(); ++i) {
        frames.push_back(vinvl_frame(doc[i], path, 0, vocab, "[" + std::to_string(i) + "] "));
      }
    } else {
      frames.push_back(vinvl_frame(doc, path, 0, vocab, ""));
    }
    return frames;
  }
  // predictions.tsv: "key \t json" per line.
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string row = text.substr(pos, end - pos);
    pos = end + 1;
    if (row.find_first_not_of(" \t\r") == std::string::npos) continue;
    const size_t tab = row.find('\t');
    if (tab == std::string::npos) fail_at(path, line, "expected 'key<TAB>{json}'");
    frames.push_back(vinvl_frame(detail::parse_json(row.substr(tab + 1), path, line), path, line,
                                 vocab, ""));
    if (frames.back().frame_index < 0) frames.back().frame_index = key_frame_index(row.substr(0, tab));
  }
  return frames;
}

std::vector<FrameBoxes> read_frame_boxes_json(const std::string& path, const VgVocab& vocab) {
  const json doc = detail::parse_json(detail::read_file(path), path);
  if (!doc.is_object() || !doc.contains("frames") || !doc["frames"].is_array()) {
    fail_at(path, 0, "expected a top-level 'frames' list");
  }
  // A top-level "classes" list (kinema synth) names the label ids instead of VG.
  VgVocab own_classes;
  const VgVocab* names = &vocab;
  if (doc.contains("classes")) {
    const json& classes = doc["classes"];
    if (!classes.is_array() || classes.empty()) fail_at(path, 0, "'classes' must be a non-empty list of names");
    std::string text;
    for (const json& c : classes) {
      if (!c.is_string()) fail_at(path, 0, "'classes' must hold strings");
      text += c.get<std::string>() + "\n";
    }
    own_classes = VgVocab::from_text(text, path + ": classes");
    names = &own_classes;
  }
  std::vector<FrameBoxes> frames;
  const json& list = doc["frames"];
  for (size_t f = 0; f < list.size(); ++f) {
    const std::string where = "frames[" + std::to_string(f) + "]";
    const json& fr = list[f];
    if (!fr.is_object()) fail_at(path, 0, where + ": expected an object");
    FrameBoxes frame;
    frame.frame_index = fr.contains("frame_index") ? json_frame_index(fr, "frame_index", path, 0, where + ": ") : -1;
    frame.time_s = fr.contains("time") ? json_number(fr["time"], path, 0, where + ".time") : -1;
    if (fr.contains("time") && !(frame.time_s >= 0 && frame.time_s < 1e7)) {
      fail_at(path, 0, where + ".time must be a time in seconds >= 0");
    }
    frame.image_w = json_size(fr, "image_w", path, 0, where + ": ");
    frame.image_h = json_size(fr, "image_h", path, 0, where + ": ");
    const json empty = json::array();
    const json& boxes = fr.contains("boxes") ? fr["boxes"] : empty;
    const json& labels = fr.contains("labels") ? fr["labels"] : empty;
    const json& scores = fr.contains("scores") ? fr["scores"] : empty;
    if (!boxes.is_array()) fail_at(path, 0, where + ".boxes must be a list");
    if (!labels.empty() && (!labels.is_array() || labels.size() != boxes.size())) {
      fail_at(path, 0, where + ".labels must be a list as long as boxes");
    }
    if (!scores.empty() && (!scores.is_array() || scores.size() != boxes.size())) {
      fail_at(path, 0, where + ".scores must be a list as long as boxes");
    }
    for (size_t i = 0; i < boxes.size(); ++i) {
      const std::string what = where + ".boxes[" + std::to_string(i) + "]";
      Box b = json_rect(boxes[i], path, 0, what);
      if (!labels.empty()) {
        const json& l = labels[i];
        if (l.is_string()) {
          set_label_name(b, l.get<std::string>(), *names);
        } else if (l.is_number_integer()) {
          set_label_id(b, l.get<int64_t>(), *names, path, 0, where + ".labels[" + std::to_string(i) + "]: ");
        } else {
          fail_at(path, 0, where + ".labels[" + std::to_string(i) + "] must be a name or an id");
        }
      }
      if (!scores.empty()) b.score = json_number(scores[i], path, 0, where + ".scores[" + std::to_string(i) + "]");
      frame.boxes.push_back(std::move(b));
    }
    frames.push_back(std::move(frame));
  }
  return frames;
}

std::vector<FrameBoxes> read_video_detections(const std::string& path, const VgVocab& vocab) {
  if (std::filesystem::is_directory(path)) {
    std::vector<FrameBoxes> frames;
    for (const auto& [index, file] : list_region_frames(path)) {
      frames.push_back(read_butd_npz(file, vocab).boxes);
      frames.back().frame_index = index;
    }
    TORCH_CHECK(!frames.empty(), path, ": no frame files ({i}.npz or frame_{i}.npz) in this detections folder");
    return frames;
  }
  const auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".tsv")) return read_vinvl(path, vocab);
  TORCH_CHECK(ends_with(".json"), path, ": unknown detections file (expected {id}.json, {id}.tsv or a folder "
              "{id}/ of .npz frames)");
  const std::string text = detail::read_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    const json doc = detail::parse_json(text, path);
    if (doc.is_object() && doc.contains("frames")) return read_frame_boxes_json(path, vocab);
  }
  return read_vinvl(path, vocab);
}

std::vector<int64_t> top_k_indices(const FrameBoxes& frame, int64_t k, bool unique_labels) {
  TORCH_CHECK(k >= 0, "kinema::data::top_k_indices: k must be >= 0, got ", k);
  std::vector<int64_t> order(frame.boxes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return frame.boxes[a].score > frame.boxes[b].score;
  });
  std::vector<int64_t> picked;
  std::set<std::string> seen;
  for (const int64_t i : order) {
    if (static_cast<int64_t>(picked.size()) >= k) break;
    if (unique_labels) {
      const Box& b = frame.boxes[i];
      const std::string key = b.label >= 0 ? "#" + std::to_string(b.label) : b.name;
      if (!seen.insert(key).second) continue;
    }
    picked.push_back(i);
  }
  return picked;
}

at::Tensor box_location_7d(const at::Tensor& boxes, double image_w, double image_h) {
  TORCH_CHECK(boxes.dim() >= 1 && boxes.size(-1) == 4,
              "kinema::data::box_location_7d: boxes must be [..., 4], got ", shape_of(boxes));
  TORCH_CHECK(image_w > 0 && image_h > 0, "kinema::data::box_location_7d: image size must be positive, got ",
              image_w, "x", image_h);
  const at::Tensor b = boxes.to(at::kFloat);
  const at::Tensor x1 = b.select(-1, 0) / image_w, y1 = b.select(-1, 1) / image_h;
  const at::Tensor x2 = b.select(-1, 2) / image_w, y2 = b.select(-1, 3) / image_h;
  const at::Tensor w = x2 - x1, h = y2 - y1;
  return at::stack({x1, y1, x2, y2, w, h, w * h}, -1);
}

namespace {

PaddedDetections pad_impl(const std::vector<const FrameBoxes*>& frames,
                          const std::vector<at::Tensor>& features, int64_t k, bool unique_labels) {
  TORCH_CHECK(k > 0, "kinema::data::pad_top_k: k must be positive, got ", k);
  const int64_t f = static_cast<int64_t>(frames.size());
  PaddedDetections out;
  out.boxes = at::zeros({f, k, 4}, at::kFloat);
  out.location = at::zeros({f, k, 7}, at::kFloat);
  out.labels = at::full({f, k}, -1, at::kLong);
  out.scores = at::zeros({f, k}, at::kFloat);
  out.valid = at::zeros({f, k}, at::kBool);
  bool all_features = f > 0;
  int64_t dim = -1;
  for (const auto& x : features) {
    if (!x.defined()) {
      all_features = false;
    } else {
      TORCH_CHECK(dim < 0 || x.size(1) == dim, "kinema::data::pad_top_k: frames have region features of "
                  "different sizes (", dim, " and ", x.size(1), ")");
      dim = x.size(1);
    }
  }
  if (all_features) out.features = at::zeros({f, k, dim}, at::kFloat);
  auto boxes = out.boxes.accessor<float, 3>();
  auto labels = out.labels.accessor<int64_t, 2>();
  auto scores = out.scores.accessor<float, 2>();
  auto valid = out.valid.accessor<bool, 2>();
  for (int64_t t = 0; t < f; ++t) {
    const FrameBoxes& frame = *frames[t];
    const auto picked = top_k_indices(frame, k, unique_labels);
    for (size_t j = 0; j < picked.size(); ++j) {
      const Box& b = frame.boxes[picked[j]];
      boxes[t][j][0] = b.x1;
      boxes[t][j][1] = b.y1;
      boxes[t][j][2] = b.x2;
      boxes[t][j][3] = b.y2;
      labels[t][j] = b.label;
      scores[t][j] = b.score;
      valid[t][j] = true;
      if (all_features) out.features[t][j].copy_(features[t][picked[j]]);
    }
    if (!picked.empty()) {
      TORCH_CHECK(frame.image_w > 0 && frame.image_h > 0, "kinema::data::pad_top_k: frame ", t,
                  " has boxes but no image size (needed for the location feature)");
      const int64_t n = static_cast<int64_t>(picked.size());
      out.location[t].narrow(0, 0, n).copy_(
          box_location_7d(out.boxes[t].narrow(0, 0, n), frame.image_w, frame.image_h));
    }
  }
  return out;
}

}  // namespace

PaddedDetections pad_top_k(const std::vector<FrameDetections>& frames, int64_t k, bool unique_labels) {
  std::vector<const FrameBoxes*> boxes;
  std::vector<at::Tensor> features;
  for (const auto& fr : frames) {
    boxes.push_back(&fr.boxes);
    features.push_back(fr.features);
  }
  return pad_impl(boxes, features, k, unique_labels);
}

PaddedDetections pad_top_k(const std::vector<FrameBoxes>& frames, int64_t k, bool unique_labels) {
  std::vector<const FrameBoxes*> boxes;
  for (const auto& fr : frames) boxes.push_back(&fr);
  return pad_impl(boxes, std::vector<at::Tensor>(frames.size()), k, unique_labels);
}

}  // namespace kinema::data
