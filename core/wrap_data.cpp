// The data layer (core/data) seen from Lua: annotation readers producing a
// Dataset, the threaded Loader handing ready batches to Lua, and the synthetic
// benchmark generator. Workers never touch Lua: conversion to Lua values
// happens here, on the Lua thread, when a batch is taken.
#include <torch/torch.h>

#include "core/data/detections.h"
#include "core/data/formats.h"
#include "core/data/loader.h"
#include "core/data/synth.h"
#include "core/data/video_transform.h"
#include "core/runtime.h"
#include "core/wrap_data_text.h"

namespace kinema::lua {

namespace {

constexpr const char* kDatasetMeta = "kinema.Dataset";
constexpr const char* kLoaderMeta = "kinema.Loader";

using DatasetPtr = std::shared_ptr<const std::vector<data::Sample>>;

struct DatasetBox {
  DatasetPtr samples;
};

struct LoaderBox {
  std::unique_ptr<data::Loader> loader;
};

DatasetBox& check_dataset(lua_State* L, int idx) { return check_object<DatasetBox>(L, idx, kDatasetMeta); }

data::Loader& check_loader(lua_State* L, int idx) {
  auto& box = check_object<LoaderBox>(L, idx, kLoaderMeta);
  if (!box.loader) raise(L, "loader was closed");
  return *box.loader;
}

void push_dataset(lua_State* L, DatasetPtr samples) {
  push_object(L, kDatasetMeta, DatasetBox{std::move(samples)});
}

std::vector<std::string> strings_field(lua_State* L, int idx, const char* key) {
  std::vector<std::string> out;
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    out.emplace_back(lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    int n = static_cast<int>(lua_objlen(L, -1));
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING) raise(L, std::string("sample field '") + key + "' must hold strings");
      out.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    raise(L, std::string("sample field '") + key + "' must be a string or a list of strings");
  }
  lua_pop(L, 1);
  return out;
}

// ---- datasets ----------------------------------------------------------------------

// data.read_annotations{format=, path=, split=, json_split=, ans2label=, has_header=,
//                       video_root=, region_root=, video_ext=, detections_root=, meta=,
//                       on_error='raise'|'skip'}  (side files: formats.h ReadOptions)
// -> dataset, skipped_count
int read_annotations(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  Options opt(L, 1, "data.read");
  data::AnnotationSource source;
  source.format = opt.string("format", "");
  source.path = opt.string("path", "");
  source.split = opt.string("split", "");
  source.json_split = opt.string("json_split", "");
  source.ans2label = opt.string("ans2label", "");
  source.has_header = opt.boolean("has_header", false);
  data::ReadOptions options;
  options.video_root = opt.string("video_root", options.video_root);
  options.region_root = opt.string("region_root", options.region_root);
  options.video_ext = opt.string("video_ext", options.video_ext);
  options.detections_root = opt.string("detections_root", options.detections_root);
  options.meta = opt.string("meta", options.meta);
  options.allow_outside_root = opt.boolean("allow_outside_root", false);
  std::string on_error = opt.string("on_error", "raise");
  opt.finish();
  if (on_error != "raise" && on_error != "skip") raise(L, "data.read: option 'on_error' must be 'raise' or 'skip'");
  options.on_error = on_error == "skip" ? data::OnError::Skip : data::OnError::Raise;
  int64_t skipped = 0;
  options.skipped = &skipped;
  if (source.format.empty() || source.path.empty()) raise(L, "data.read: options 'format' and 'path' are required");
  return protect(L, [&] {
    auto samples = std::make_shared<const std::vector<data::Sample>>(data::read_annotations(source, options));
    push_dataset(L, std::move(samples));
    lua_pushnumber(L, static_cast<lua_Number>(skipped));
    return 2;
  });
}

// data.dataset{ {id=, video_path=, captions={...}, tags={...}, start_s=, end_s=}, ... }
int dataset_from_table(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  auto samples = std::make_shared<std::vector<data::Sample>>();
  int n = static_cast<int>(lua_objlen(L, 1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    int item = lua_gettop(L);
    if (!lua_istable(L, item)) raise(L, "data.dataset: element " + std::to_string(i) + " is not a table");
    // a sample is read like an options table: a misspelled field is refused by name
    Options fields(L, item, "data.dataset: element " + std::to_string(i));
    data::Sample s;
    s.id = fields.string("id", std::to_string(i - 1));
    s.video_path = fields.string("video_path", "");
    for (const char* key : {"captions", "caption", "tags"}) fields.has(key);  // read by strings_field
    s.captions = strings_field(L, item, "captions");
    if (s.captions.empty()) s.captions = strings_field(L, item, "caption");
    s.tags = strings_field(L, item, "tags");
    s.start_s = fields.number("start_s", -1);
    s.end_s = fields.number("end_s", -1);
    s.region_path = fields.string("region_path", "");
    fields.finish();
    if (s.video_path.empty()) raise(L, "data.dataset: element " + std::to_string(i) + " has no video_path");
    samples->push_back(std::move(s));
    lua_pop(L, 1);
  }
  push_dataset(L, std::move(samples));
  return 1;
}

int dataset_len(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_dataset(L, 1).samples->size()));
  return 1;
}

// ds:get(i) with a 0-based index -> a table of the sample's fields.
int dataset_get(lua_State* L) {
  const auto& samples = *check_dataset(L, 1).samples;
  auto i = static_cast<int64_t>(luaL_checknumber(L, 2));
  if (i < 0 || i >= static_cast<int64_t>(samples.size()))
    return luaL_error(L, "dataset index %d out of range [0, %d)", static_cast<int>(i), static_cast<int>(samples.size()));
  const data::Sample& s = samples[static_cast<size_t>(i)];
  lua_newtable(L);
  lua_pushstring(L, s.id.c_str());
  lua_setfield(L, -2, "id");
  lua_pushstring(L, s.video_path.c_str());
  lua_setfield(L, -2, "video_path");
  push_string_list(L, s.captions);
  lua_setfield(L, -2, "captions");
  push_string_list(L, s.tags);
  lua_setfield(L, -2, "tags");
  if (!s.region_path.empty()) {
    lua_pushstring(L, s.region_path.c_str());
    lua_setfield(L, -2, "region_path");
  }
  if (!s.boxes_path.empty()) {
    lua_pushstring(L, s.boxes_path.c_str());
    lua_setfield(L, -2, "boxes_path");
  }
  // Boxes kept in a file are read here: this view is for inspection.
  size_t box_frames = s.frames.size();
  if (!s.boxes_path.empty())
    protect(L, [&] {
      box_frames = data::read_video_detections(s.boxes_path).size();
      return 0;
    });
  lua_pushnumber(L, static_cast<lua_Number>(box_frames));
  lua_setfield(L, -2, "num_box_frames");
  if (!s.parts.empty()) {
    lua_createtable(L, static_cast<int>(s.parts.size()), 0);
    for (size_t c = 0; c < s.parts.size(); ++c) {
      lua_newtable(L);
      push_string_list(L, s.parts[c].nouns);
      lua_setfield(L, -2, "nouns");
      push_string_list(L, s.parts[c].verbs);
      lua_setfield(L, -2, "verbs");
      push_string_list(L, s.parts[c].noun_phrases);
      lua_setfield(L, -2, "noun_phrases");
      lua_rawseti(L, -2, static_cast<int>(c + 1));
    }
    lua_setfield(L, -2, "parts");
  }
  if (!s.question.empty()) {
    lua_pushstring(L, s.question.c_str());
    lua_setfield(L, -2, "question");
    lua_pushstring(L, s.answer.c_str());
    lua_setfield(L, -2, "answer");
    lua_pushnumber(L, static_cast<lua_Number>(s.answer_label));
    lua_setfield(L, -2, "answer_label");
  }
  if (!s.options.empty()) {
    push_string_list(L, s.options);
    lua_setfield(L, -2, "options");
    lua_pushnumber(L, static_cast<lua_Number>(s.answer_label));
    lua_setfield(L, -2, "answer_label");
  }
  if (s.start_s >= 0) {
    lua_pushnumber(L, s.start_s);
    lua_setfield(L, -2, "start_s");
    lua_pushnumber(L, s.end_s);
    lua_setfield(L, -2, "end_s");
  }
  lua_newtable(L);
  for (const auto& kv : s.extra) {
    lua_pushstring(L, kv.second.c_str());
    lua_setfield(L, -2, kv.first.c_str());
  }
  lua_setfield(L, -2, "extra");
  return 1;
}

// ds:column(name) -> one string per sample ('id', 'video_path', 'boxes_path',
// 'region_path'; '' where a sample has none) or, for 'captions', every caption
// of every sample: cheap views for checks over a whole dataset.
int dataset_column(lua_State* L) {
  const auto& samples = *check_dataset(L, 1).samples;
  const std::string name = luaL_checkstring(L, 2);
  std::vector<std::string> out;
  out.reserve(samples.size());
  for (const data::Sample& s : samples) {
    if (name == "id") {
      out.push_back(s.id);
    } else if (name == "video_path") {
      out.push_back(s.video_path);
    } else if (name == "boxes_path") {
      out.push_back(s.boxes_path);
    } else if (name == "region_path") {
      out.push_back(s.region_path);
    } else if (name == "captions") {
      out.insert(out.end(), s.captions.begin(), s.captions.end());
    } else {
      raise(L, "dataset:column: unknown column '" + name + "' (id, video_path, boxes_path, region_path, captions)");
    }
  }
  push_string_list(L, out);
  return 1;
}

// data.video_info(path) -> {width=, height=, fps=, num_frames=, duration_s=,
// codec=}: opens the file's header (a missing or unreadable file raises naming it).
int video_info(lua_State* L) {
  const std::string path = luaL_checkstring(L, 1);
  return protect(L, [&] {
    const data::VideoReader reader(path);
    const data::VideoInfo& info = reader.info();
    lua_newtable(L);
    const std::pair<const char*, double> numbers[] = {{"width", static_cast<double>(info.width)},
                                                      {"height", static_cast<double>(info.height)},
                                                      {"fps", info.fps},
                                                      {"num_frames", static_cast<double>(info.num_frames)},
                                                      {"duration_s", info.duration_s}};
    for (const auto& [key, value] : numbers) {
      lua_pushnumber(L, value);
      lua_setfield(L, -2, key);
    }
    lua_pushstring(L, info.codec.c_str());
    lua_setfield(L, -2, "codec");
    return 1;
  });
}

// data.num_classes(ds): the detection class vocabulary size, batch-independent:
// the "classes" list of the first detection file (kinema synth: its shapes; one
// detector writes a dataset's files) or 1600 (Visual Genome) without one; at
// least max label + 1 of inline boxes. 0 when no sample has detections.
int dataset_num_classes(lua_State* L) {
  const auto& samples = *check_dataset(L, 1).samples;
  int64_t n = 0;
  for (const data::Sample& s : samples) {
    auto it = s.extra.find("num_classes");
    if (it != s.extra.end()) n = std::max<int64_t>(n, std::stoll(it->second));
    for (const data::FrameBoxes& f : s.frames)
      for (const data::Box& b : f.boxes) n = std::max<int64_t>(n, b.label + 1);
  }
  lua_pushnumber(L, static_cast<lua_Number>(n));
  return 1;
}

// ---- loader ------------------------------------------------------------------------

// data.Loader(dataset, {batch_size, num_workers, prefetch, prefetch_next_epoch, shuffle, seed, rank,
//   world_size, drop_last, num_frames, sampling, fps, size, short_side,
//   random_crop, normalize='none'|'clip'|'imagenet', random_caption, timeout_s,
//   video, text, detections, regions, anchor, cut_paste})  (recipe options:
//   wrap_data_recipe.cpp; fields: core/data/recipe_item.h, text_item.h)
int loader_new(lua_State* L) {
  DatasetPtr samples = check_dataset(L, 1).samples;
  Options opt(L, 2, "data.Loader");
  data::LoaderOptions lo;
  lo.batch_size = opt.integer("batch_size", 8);
  lo.num_workers = opt.integer("num_workers", 2);
  lo.prefetch = opt.integer("prefetch", 4);
  lo.prefetch_next_epoch = opt.boolean("prefetch_next_epoch", false);
  lo.shuffle = opt.boolean("shuffle", true);
  lo.seed = static_cast<uint64_t>(opt.integer("seed", 0));
  lo.rank = opt.integer("rank", 0);
  lo.world_size = opt.integer("world_size", 1);
  lo.drop_last = opt.boolean("drop_last", false);
  const std::string on_error = opt.string("on_error", "replace");
  if (on_error == "raise") {
    lo.on_item_error = data::ItemErrors::Raise;
  } else if (on_error == "drop") {
    lo.on_item_error = data::ItemErrors::Drop;
  } else if (on_error != "replace") {
    raise(L, "data.Loader: option 'on_error' must be 'replace', 'raise' or 'drop', got '" + on_error + "'");
  }

  data::VideoItemOptions vo;
  vo.random_caption = opt.boolean("random_caption", true);
  vo.sampling.num_frames = opt.integer("num_frames", 8);
  vo.sampling.fps = opt.number("fps", 1.0);
  int64_t size = opt.integer("size", 224);
  vo.decode.resize.out_h = vo.decode.resize.out_w = size;
  vo.decode.resize.short_side = opt.integer("short_side", 0);
  vo.decode.resize.random_crop = opt.boolean("random_crop", false);
  vo.decode.timeout_s = opt.number("timeout_s", vo.decode.timeout_s);
  std::string sampling = opt.string("sampling", "uniform");
  std::string normalize = opt.string("normalize", "none");
  RecipeOptions recipe = parse_recipe_options(L, opt, vo);
  opt.finish();
  const data::RecipeItemOptions& ri = recipe.item;
  const bool use_recipe = ri.text || ri.detections || ri.regions || ri.anchor || !ri.decode_video;
  return protect(L, [&] {
    vo.sampling.strategy = data::parse_frame_sampling(sampling);
    recipe.item.video.sampling.strategy = vo.sampling.strategy;
    data::VideoNorm norm = data::parse_video_norm(normalize);
    data::BatchFn cut_paste;
    if (recipe.cut_paste_clip_len > 0)
      cut_paste = data::make_cut_paste_batch_fn(recipe.cut_paste_clip_len, lo.seed);
    const int64_t anchor_patch = ri.anchor ? ri.anchor->patch_size : 0;
    if (norm != data::VideoNorm::None || cut_paste) {
      // Cut-and-paste and normalisation run on the worker, once per batch.
      lo.batch_fn = [norm, cut_paste, anchor_patch](data::Batch& batch) {
        if (cut_paste) cut_paste(batch);
        if (norm == data::VideoNorm::None) return;
        for (const char* key : {"video", "anchor"}) {
          auto it = batch.tensors.find(key);
          if (it != batch.tensors.end()) it->second = data::normalize_video(it->second, norm);
        }
        if (anchor_patch > 0) data::zero_masked_anchor_patches(batch, anchor_patch);
      };
    }
    data::ItemFn item_fn = use_recipe ? data::make_recipe_item_fn(recipe.item) : data::make_video_item_fn(vo);
    push_object(L, kLoaderMeta, LoaderBox{std::make_unique<data::Loader>(*samples, std::move(item_fn), lo)});
    return 1;
  });
}

void push_batch(lua_State* L, const data::Batch& batch) {
  lua_newtable(L);
  for (const auto& kv : batch.tensors) {
    push_tensor(L, kv.second);
    lua_setfield(L, -2, kv.first.c_str());
  }
  for (const auto& kv : batch.lists) {
    lua_createtable(L, static_cast<int>(kv.second.size()), 0);
    for (size_t i = 0; i < kv.second.size(); ++i) {
      push_tensor(L, kv.second[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    lua_setfield(L, -2, kv.first.c_str());
  }
  for (const auto& kv : batch.strings) {
    push_string_list(L, kv.second);
    lua_setfield(L, -2, kv.first.c_str());
  }
  lua_createtable(L, static_cast<int>(batch.indices.size()), 0);
  for (size_t i = 0; i < batch.indices.size(); ++i) {
    lua_pushnumber(L, static_cast<lua_Number>(batch.indices[i]));
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setfield(L, -2, "indices");
  if (!batch.dropped_ids.empty()) {
    push_string_list(L, batch.dropped_ids);
    lua_setfield(L, -2, "dropped_ids");
    push_string_list(L, batch.dropped_errors);
    lua_setfield(L, -2, "dropped_errors");
  }
  lua_pushnumber(L, static_cast<lua_Number>(batch.epoch));
  lua_setfield(L, -2, "epoch");
  lua_pushnumber(L, static_cast<lua_Number>(batch.index));
  lua_setfield(L, -2, "index");
}

// loader:next() -> batch table, or nil at the end of the epoch.
int loader_next(lua_State* L) {
  data::Loader& loader = check_loader(L, 1);
  return protect(L, [&] {
    std::optional<data::Batch> batch = loader.next_batch();
    if (!batch) {
      lua_pushnil(L);
    } else {
      push_batch(L, *batch);
    }
    return 1;
  });
}

int loader_reset(lua_State* L) {
  data::Loader& loader = check_loader(L, 1);
  auto epoch = static_cast<int64_t>(luaL_optnumber(L, 2, 0));
  auto start = static_cast<int64_t>(luaL_optnumber(L, 3, 0));
  return protect(L, [&] {
    loader.reset(epoch, start);
    return 0;
  });
}

int loader_num_batches(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_loader(L, 1).num_batches()));
  return 1;
}

int loader_progress(lua_State* L) {
  data::LoaderProgress p = check_loader(L, 1).progress();
  lua_newtable(L);
  const std::pair<const char*, int64_t> fields[] = {{"epoch", p.epoch},
                                                    {"batches_done", p.batches_done},
                                                    {"samples_done", p.samples_done},
                                                    {"batches_per_epoch", p.batches_per_epoch},
                                                    {"skipped", p.skipped}};
  for (const auto& f : fields) {
    lua_pushnumber(L, static_cast<lua_Number>(f.second));
    lua_setfield(L, -2, f.first);
  }
  return 1;
}

int loader_skipped_errors(lua_State* L) {
  push_string_list(L, check_loader(L, 1).skipped_errors());
  return 1;
}

// loader:close() joins the workers now (otherwise at garbage collection).
int loader_close(lua_State* L) {
  check_object<LoaderBox>(L, 1, kLoaderMeta).loader.reset();
  return 0;
}

// ---- synthetic benchmark -------------------------------------------------------------

// data.synth{out_dir=, num_train=, num_test=, width=, height=, fps=, ...} -> summary
int synth(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  Options opt(L, 1, "data.synth");
  data::synth::SynthOptions o;
  o.out_dir = opt.string("out_dir", "");
  if (o.out_dir.empty()) raise(L, "data.synth: 'out_dir' is required");
  o.num_train = opt.integer("num_train", o.num_train);
  o.num_test = opt.integer("num_test", o.num_test);
  o.width = opt.integer("width", o.width);
  o.height = opt.integer("height", o.height);
  o.fps = opt.number("fps", o.fps);
  o.min_duration_s = opt.number("min_duration_s", o.min_duration_s);
  o.max_duration_s = opt.number("max_duration_s", o.max_duration_s);
  o.min_objects = opt.integer("min_objects", o.min_objects);
  o.max_objects = opt.integer("max_objects", o.max_objects);
  o.gop_s = opt.number("gop_s", o.gop_s);
  o.codec = opt.string("codec", o.codec);
  o.region_frames = opt.integer("region_frames", o.region_frames);
  o.region_dim = opt.integer("region_dim", o.region_dim);
  o.negatives_per_kind = static_cast<int>(opt.integer("negatives_per_kind", o.negatives_per_kind));
  o.miss_rate = opt.number("miss_rate", o.miss_rate);
  o.false_rate = opt.number("false_rate", o.false_rate);
  o.box_jitter = opt.number("box_jitter", o.box_jitter);
  o.seed = static_cast<uint64_t>(opt.integer("seed", 0));
  o.threads = static_cast<int>(opt.integer("threads", 0));
  opt.finish();
  return protect(L, [&] {
    data::synth::SynthSummary s = data::synth::generate(o);
    lua_newtable(L);
    lua_pushstring(L, s.out_dir.c_str());
    lua_setfield(L, -2, "out_dir");
    lua_pushstring(L, s.encoder.c_str());
    lua_setfield(L, -2, "encoder");
    lua_pushnumber(L, static_cast<lua_Number>(s.videos));
    lua_setfield(L, -2, "videos");
    lua_pushnumber(L, static_cast<lua_Number>(s.frames));
    lua_setfield(L, -2, "frames");
    lua_pushnumber(L, s.seconds);
    lua_setfield(L, -2, "seconds");
    push_string_list(L, s.files);
    lua_setfield(L, -2, "files");
    return 1;
  });
}

// data.synth_defaults() -> {num_train =, num_test =, negatives_per_kind =, ...}: the
// options data.synth and `kinema synth` use when none is given (the recipes'
// data.synth_options take theirs from here).
int synth_defaults(lua_State* L) {
  const data::synth::SynthOptions o;
  lua_newtable(L);
  const std::pair<const char*, lua_Number> numbers[] = {
      {"num_train", static_cast<lua_Number>(o.num_train)},
      {"num_test", static_cast<lua_Number>(o.num_test)},
      {"negatives_per_kind", static_cast<lua_Number>(o.negatives_per_kind)},
      {"width", static_cast<lua_Number>(o.width)},
      {"height", static_cast<lua_Number>(o.height)},
      {"fps", o.fps},
      {"min_duration_s", o.min_duration_s},
      {"max_duration_s", o.max_duration_s},
      {"region_frames", static_cast<lua_Number>(o.region_frames)},
      {"region_dim", static_cast<lua_Number>(o.region_dim)},
      {"seed", static_cast<lua_Number>(o.seed)}};
  for (const auto& [name, value] : numbers) {
    lua_pushnumber(L, value);
    lua_setfield(L, -2, name);
  }
  return 1;
}

int open_data(lua_State* L) {
  static const luaL_Reg dataset_methods[] = {{"get", dataset_get}, {"size", dataset_len}, {"column", dataset_column}, {nullptr, nullptr}};
  static const luaL_Reg dataset_meta[] = {{"__len", dataset_len}, {nullptr, nullptr}};
  register_type<DatasetBox>(L, kDatasetMeta, dataset_methods, dataset_meta);
  static const luaL_Reg loader_methods[] = {{"next", loader_next},
                                            {"reset", loader_reset},
                                            {"num_batches", loader_num_batches},
                                            {"progress", loader_progress},
                                            {"skipped_errors", loader_skipped_errors},
                                            {"close", loader_close},
                                            {nullptr, nullptr}};
  static const luaL_Reg loader_meta[] = {{"__len", loader_num_batches}, {nullptr, nullptr}};
  register_type<LoaderBox>(L, kLoaderMeta, loader_methods, loader_meta);

  lua_newtable(L);
  static const luaL_Reg functions[] = {{"read_annotations", read_annotations},
                                       {"video_info", video_info},
                                       {"dataset", dataset_from_table},
                                       {"Loader", loader_new},
                                       {"synth", synth},
                                       {"synth_defaults", synth_defaults},
                                       {"num_classes", dataset_num_classes},
                                       {nullptr, nullptr}};
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

KINEMA_LUA_MODULE("kinema._data", open_data);

}  // namespace kinema::lua
