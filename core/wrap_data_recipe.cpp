// data.Loader's recipe options (text, detections, regions, anchor, cut_paste,
// video) parsed into RecipeItemOptions. Each group is a table, or true for its
// defaults; false / nil leaves it off. Every group is read strictly (core/runtime.h
// Options): errors name the option with its group ("data.Loader: option
// 'text.max_len' must be an integer", "data.Loader: unknown option 'text.max_lne'
// (did you mean 'text.max_len'?)"); value checks happen in core/data with the
// same naming.
#include "core/wrap_data_text.h"

namespace kinema::lua {

namespace {

// The option group `key` of `parent` pushed on the stack (a table, or nil when
// off); true pushes an empty table. Returns whether it is on.
bool push_group(lua_State* L, Options& parent, const char* key) {
  const int type = parent.push(key);
  if (type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, -1))) return false;
  if (type == LUA_TBOOLEAN) {
    lua_pop(L, 1);
    lua_newtable(L);
    return true;
  }
  if (type != LUA_TTABLE) {
    lua_pop(L, 1);
    parent.fail(key, "must be a table or a boolean");
  }
  return true;
}

// The group on top of the stack (pushed by push_group) read as options named group.KEY.
Options group_options(lua_State* L, const Options& parent, const char* key) {
  return Options(L, lua_gettop(L), "data.Loader", parent.name(key));
}

void parse_text(lua_State* L, Options& g, data::RecipeItemOptions& out) {
  if (g.push("tokenizer") == LUA_TNIL) raise(L, "data.Loader: option 'text.tokenizer' is required (data.tokenizer{...})");
  std::shared_ptr<const data::Tokenizer> tok = check_tokenizer(L, lua_gettop(L), "data.Loader: option 'text.tokenizer'");
  lua_pop(L, 1);
  data::TextItemOptions t;
  t.max_len = g.integer("max_len", t.max_len);
  if (push_group(L, g, "mlm")) {
    Options m = group_options(L, g, "mlm");
    t.mlm = true;
    t.mlm_options.probability = m.number("probability", t.mlm_options.probability);
    t.mlm_options.mask_fraction = m.number("mask_fraction", t.mlm_options.mask_fraction);
    t.mlm_options.random_fraction = m.number("random_fraction", t.mlm_options.random_fraction);
    m.finish();
  }
  lua_pop(L, 1);
  t.plm = g.boolean("plm", false);
  t.parts = g.boolean("parts", false);
  t.max_nouns = g.integer("max_nouns", t.max_nouns);
  t.max_verbs = g.integer("max_verbs", t.max_verbs);
  if (push_group(L, g, "phrases")) {
    Options p = group_options(L, g, "phrases");
    t.phrases = true;
    t.max_phrases = p.integer("max", t.max_phrases);
    t.phrase_len = p.integer("max_len", t.phrase_len);
    p.finish();
  }
  lua_pop(L, 1);
  g.finish();
  protect(L, [&] {
    out.text = std::make_shared<const data::TextItemMaker>(std::move(tok), t);
    return 0;
  });
}

}  // namespace

RecipeOptions parse_recipe_options(lua_State* L, Options& loader, const data::VideoItemOptions& video) {
  RecipeOptions r;
  r.item.video = video;
  r.item.decode_video = loader.boolean("video", true);
  if (push_group(L, loader, "text")) {
    Options g = group_options(L, loader, "text");
    parse_text(L, g, r.item);
  }
  lua_pop(L, 1);
  if (push_group(L, loader, "detections")) {
    Options g = group_options(L, loader, "detections");
    data::DetectionItemOptions d;
    d.k = g.integer("k", d.k);
    d.unique_labels = g.boolean("unique_labels", d.unique_labels);
    g.finish();
    r.item.detections = d;
  }
  lua_pop(L, 1);
  if (push_group(L, loader, "regions")) {
    Options g = group_options(L, loader, "regions");
    data::RegionItemOptions d;
    d.k = g.integer("k", d.k);
    d.frames = g.integer("frames", d.frames);
    d.dim = g.integer("dim", d.dim);
    g.finish();
    r.item.regions = d;
  }
  lua_pop(L, 1);
  if (push_group(L, loader, "anchor")) {
    Options g = group_options(L, loader, "anchor");
    data::ObjectMaskOptions a;
    a.patch_size = g.integer("patch_size", a.patch_size);
    a.max_objects = g.integer("max_objects", a.max_objects);
    a.drop_ratio = g.number("drop_ratio", a.drop_ratio);
    a.shift_prob = g.number("shift_prob", a.shift_prob);
    a.unique_labels = g.boolean("unique_labels", a.unique_labels);
    a.large_box_fraction = g.number("large_box_fraction", a.large_box_fraction);
    g.finish();
    r.item.anchor = a;
  }
  lua_pop(L, 1);
  if (push_group(L, loader, "cut_paste")) {
    Options g = group_options(L, loader, "cut_paste");
    r.cut_paste_clip_len = g.integer("clip_len", 2);
    g.finish();
    if (r.cut_paste_clip_len <= 0)
      raise(L, "data.Loader: option 'cut_paste.clip_len' must be > 0, got " + std::to_string(r.cut_paste_clip_len));
  }
  lua_pop(L, 1);
  if (r.cut_paste_clip_len > 0 && !r.item.decode_video)
    raise(L, "data.Loader: option 'cut_paste' needs the video (it cannot be used with video = false)");
  return r;
}

}  // namespace kinema::lua
