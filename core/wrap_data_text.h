#pragma once
// Shared by the data wrappers: tokenizer userdata (wrap_data_text.cpp) and the
// recipe options of data.Loader (wrap_data_recipe.cpp).
#include <memory>
#include <string>
#include <vector>

#include "core/data/loader.h"
#include "core/data/recipe_item.h"
#include "core/data/tokenizer.h"
#include "core/runtime.h"

namespace kinema::lua {

// A Lua array of the strings, pushed on the stack.
void push_string_list(lua_State* L, const std::vector<std::string>& items);

// The tokenizer held by the userdata at idx (kinema.Tokenizer); raises naming
// `what` when it is something else.
std::shared_ptr<const data::Tokenizer> check_tokenizer(lua_State* L, int idx, const char* what);

// data.Loader's recipe options (text, detections, regions, anchor, cut_paste,
// video) read from the loader's options on top of the standard video item
// `video`; each group is read strictly. Raises naming the option
// ("data.Loader: option 'text.max_len' must be ...").
struct RecipeOptions {
  data::RecipeItemOptions item;
  int64_t cut_paste_clip_len = 0;  // 0: no cut-and-paste
};
RecipeOptions parse_recipe_options(lua_State* L, Options& loader, const data::VideoItemOptions& video);

}  // namespace kinema::lua
