// data.Loader's recipe options (text, detections, regions, anchor, cut_paste,
// video) parsed into RecipeItemOptions. Each group is a table, or true for its
// defaults; false / nil leaves it off. Type errors name the option with its
// group ("data.Loader: option 'text.max_len' must be a number"); value checks
// happen in core/data with the same naming.
#include "core/wrap_data_text.h"

namespace kinema::lua {

namespace {

// The option group `name` of the table at idx pushed on the stack (a table, or
// nil when off); true pushes an empty table. Returns whether it is on.
bool push_group(lua_State* L, int idx, const char* name) {
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) return false;
  if (lua_isboolean(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    return true;
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    raise(L, std::string("data.Loader: option '") + name + "' must be a table or a boolean");
  }
  return true;
}

std::string option_name(const char* group, const char* key) { return std::string(group) + "." + key; }

double number(lua_State* L, int idx, const char* group, const char* key, double fallback) {
  lua_getfield(L, idx, key);
  double v = fallback;
  if (lua_isnumber(L, -1)) {
    v = lua_tonumber(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    raise(L, "data.Loader: option '" + option_name(group, key) + "' must be a number");
  }
  lua_pop(L, 1);
  return v;
}

int64_t integer(lua_State* L, int idx, const char* group, const char* key, int64_t fallback) {
  const double v = number(L, idx, group, key, static_cast<double>(fallback));
  if (v != static_cast<double>(static_cast<int64_t>(v)))
    raise(L, "data.Loader: option '" + option_name(group, key) + "' must be an integer");
  return static_cast<int64_t>(v);
}

bool flag(lua_State* L, int idx, const char* group, const char* key, bool fallback) {
  lua_getfield(L, idx, key);
  bool v = fallback;
  if (lua_isboolean(L, -1)) {
    v = lua_toboolean(L, -1) != 0;
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    raise(L, "data.Loader: option '" + option_name(group, key) + "' must be a boolean");
  }
  lua_pop(L, 1);
  return v;
}

void parse_text(lua_State* L, int g, data::RecipeItemOptions& out) {
  lua_getfield(L, g, "tokenizer");
  if (lua_isnil(L, -1)) raise(L, "data.Loader: option 'text.tokenizer' is required (data.tokenizer{...})");
  std::shared_ptr<const data::Tokenizer> tok = check_tokenizer(L, lua_gettop(L), "data.Loader: option 'text.tokenizer'");
  lua_pop(L, 1);
  data::TextItemOptions t;
  t.max_len = integer(L, g, "text", "max_len", t.max_len);
  if (push_group(L, g, "mlm")) {
    const int m = lua_gettop(L);
    t.mlm = true;
    t.mlm_options.probability = number(L, m, "text.mlm", "probability", t.mlm_options.probability);
    t.mlm_options.mask_fraction = number(L, m, "text.mlm", "mask_fraction", t.mlm_options.mask_fraction);
    t.mlm_options.random_fraction = number(L, m, "text.mlm", "random_fraction", t.mlm_options.random_fraction);
  }
  lua_pop(L, 1);
  t.plm = flag(L, g, "text", "plm", false);
  t.parts = flag(L, g, "text", "parts", false);
  t.max_nouns = integer(L, g, "text", "max_nouns", t.max_nouns);
  t.max_verbs = integer(L, g, "text", "max_verbs", t.max_verbs);
  if (push_group(L, g, "phrases")) {
    const int p = lua_gettop(L);
    t.phrases = true;
    t.max_phrases = integer(L, p, "text.phrases", "max", t.max_phrases);
    t.phrase_len = integer(L, p, "text.phrases", "max_len", t.phrase_len);
  }
  lua_pop(L, 1);
  protect(L, [&] {
    out.text = std::make_shared<const data::TextItemMaker>(std::move(tok), t);
    return 0;
  });
}

}  // namespace

RecipeOptions parse_recipe_options(lua_State* L, int idx, const data::VideoItemOptions& video) {
  RecipeOptions r;
  r.item.video = video;
  if (!lua_istable(L, idx)) return r;
  r.item.decode_video = opt_field_bool(L, idx, "video", true);
  if (push_group(L, idx, "text")) parse_text(L, lua_gettop(L), r.item);
  lua_pop(L, 1);
  if (push_group(L, idx, "detections")) {
    const int g = lua_gettop(L);
    data::DetectionItemOptions d;
    d.k = integer(L, g, "detections", "k", d.k);
    d.unique_labels = flag(L, g, "detections", "unique_labels", d.unique_labels);
    r.item.detections = d;
  }
  lua_pop(L, 1);
  if (push_group(L, idx, "regions")) {
    const int g = lua_gettop(L);
    data::RegionItemOptions d;
    d.k = integer(L, g, "regions", "k", d.k);
    d.frames = integer(L, g, "regions", "frames", d.frames);
    d.dim = integer(L, g, "regions", "dim", d.dim);
    r.item.regions = d;
  }
  lua_pop(L, 1);
  if (push_group(L, idx, "anchor")) {
    const int g = lua_gettop(L);
    data::ObjectMaskOptions a;
    a.patch_size = integer(L, g, "anchor", "patch_size", a.patch_size);
    a.max_objects = integer(L, g, "anchor", "max_objects", a.max_objects);
    a.drop_ratio = number(L, g, "anchor", "drop_ratio", a.drop_ratio);
    a.shift_prob = number(L, g, "anchor", "shift_prob", a.shift_prob);
    a.unique_labels = flag(L, g, "anchor", "unique_labels", a.unique_labels);
    a.large_box_fraction = number(L, g, "anchor", "large_box_fraction", a.large_box_fraction);
    r.item.anchor = a;
  }
  lua_pop(L, 1);
  if (push_group(L, idx, "cut_paste")) {
    r.cut_paste_clip_len = integer(L, lua_gettop(L), "cut_paste", "clip_len", 2);
    if (r.cut_paste_clip_len <= 0)
      raise(L, "data.Loader: option 'cut_paste.clip_len' must be > 0, got " + std::to_string(r.cut_paste_clip_len));
  }
  lua_pop(L, 1);
  if (r.cut_paste_clip_len > 0 && !r.item.decode_video)
    raise(L, "data.Loader: option 'cut_paste' needs the video (it cannot be used with video = false)");
  return r;
}

}  // namespace kinema::lua
