// Text tools of the data layer seen from Lua (kinema._text): tokenizers as
// userdata holding a shared_ptr (the loader's workers share them, read-only),
// the word-level vocabulary builder, the caption tagger and S-ViLM prompts.
#include "core/wrap_data_text.h"

#include "core/data/formats_detail.h"
#include "core/data/pos_tagger.h"
#include "core/data/prompts.h"
#include "core/data/vocab_builder.h"

#include <cmath>
#include <sstream>

namespace kinema::lua {

void push_string_list(lua_State* L, const std::vector<std::string>& items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (size_t i = 0; i < items.size(); ++i) {
    lua_pushlstring(L, items[i].data(), items[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

namespace {

constexpr const char* kTokenizerMeta = "kinema.Tokenizer";

struct TokenizerBox {
  std::shared_ptr<const data::Tokenizer> tokenizer;
};

const data::Tokenizer& self(lua_State* L) {
  return *check_object<TokenizerBox>(L, 1, kTokenizerMeta).tokenizer;
}

std::vector<std::string> check_string_list(lua_State* L, int idx, const char* what) {
  if (!lua_istable(L, idx)) raise(L, std::string(what) + " must be a list of strings");
  std::vector<std::string> out;
  const int n = static_cast<int>(lua_objlen(L, idx));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) raise(L, std::string(what) + " must be a list of strings");
    out.emplace_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return out;
}

// data.tokenizer{kind = 'wordpiece'|'clip_bpe'|'sentencepiece', path = ...}
int tokenizer_new(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  Options opt(L, 1, "data.tokenizer");
  const std::string kind = opt.string("kind", "wordpiece");
  const std::string path = opt.string("path", "");
  opt.finish();
  if (path.empty()) raise(L, "data.tokenizer: option 'path' is required (the vocabulary / model file)");
  return protect(L, [&] {
    std::shared_ptr<const data::Tokenizer> tok = data::load_tokenizer(kind, path);
    push_object(L, kTokenizerMeta, TokenizerBox{std::move(tok)});
    return 1;
  });
}

// A length or id given as a Lua number: an integer (is_integer) >= lo (a
// fraction would otherwise be truncated silently).
constexpr double kMaxExactInteger = 9007199254740992.0;
int64_t check_integer(lua_State* L, double v, double lo, const std::string& what) {
  if (!(is_integer(v) && v >= lo)) {
    std::ostringstream msg;
    msg.precision(17);
    msg << what << " must be an integer";
    if (lo > -kMaxExactInteger) msg << " >= " << lo;
    msg << ", got " << v;
    raise(L, msg.str());
  }
  return static_cast<int64_t>(v);
}

// tok:encode(text, {max_len=}) -> list of ids (framed; no max_len: no limit).
int tok_encode(lua_State* L) {
  const data::Tokenizer& tok = self(L);
  const std::string text = luaL_checkstring(L, 2);
  int64_t max_len = 0;
  Options opt(L, 3, "tok:encode");
  if (opt.has("max_len")) max_len = check_integer(L, opt.number("max_len", 0), 2, "tok:encode: option 'max_len'");
  opt.finish();
  return protect(L, [&] {
    const std::vector<int64_t> ids = tok.encode(text, true, max_len);
    lua_createtable(L, static_cast<int>(ids.size()), 0);
    for (size_t i = 0; i < ids.size(); ++i) {
      lua_pushnumber(L, static_cast<lua_Number>(ids[i]));
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  });
}

// tok:encode_batch(texts, max_len) -> ids [B,L] int64, mask [B,L] bool.
int tok_encode_batch(lua_State* L) {
  const data::Tokenizer& tok = self(L);
  const std::vector<std::string> texts = check_string_list(L, 2, "tok:encode_batch: argument 'texts'");
  const int64_t max_len = check_integer(L, luaL_checknumber(L, 3), 2, "tok:encode_batch: argument 'max_len'");
  return protect(L, [&] {
    const data::BatchEncoding enc = tok.encode_batch(texts, max_len);
    push_tensor(L, enc.input_ids);
    push_tensor(L, enc.attention_mask.to(at::kBool));
    return 2;
  });
}

// tok:decode(ids) with ids a Lua list or a 1-d tensor -> string (specials dropped).
int tok_decode(lua_State* L) {
  const data::Tokenizer& tok = self(L);
  std::vector<int64_t> ids;
  if (at::Tensor* t = test_tensor(L, 2)) {
    if (t->dim() != 1) raise(L, "tok:decode: argument 'ids' must be a 1-d tensor or a list");
    if (at::isFloatingType(t->scalar_type()) && !t->eq(t->floor()).all().item<bool>()) {
      raise(L, "tok:decode: argument 'ids' holds non-integral values");
    }
    const at::Tensor c = t->to(at::kLong).contiguous();
    ids.assign(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    const int n = static_cast<int>(lua_objlen(L, 2));
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, 2, i);
      ids.push_back(check_integer(L, luaL_checknumber(L, -1), -kMaxExactInteger,
                                  "tok:decode: argument 'ids', element " + std::to_string(i) + ","));
      lua_pop(L, 1);
    }
  }
  const bool skip_special = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3) != 0;
  return protect(L, [&] {
    const std::string text = tok.decode(ids, skip_special);
    lua_pushlstring(L, text.data(), text.size());
    return 1;
  });
}

int tok_tokenize(lua_State* L) {
  const data::Tokenizer& tok = self(L);
  const std::string text = luaL_checkstring(L, 2);
  return protect(L, [&] {
    push_string_list(L, tok.tokenize(text));
    return 1;
  });
}

int tok_vocab_size(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(self(L).vocab_size()));
  return 1;
}

int tok_kind(lua_State* L) {
  lua_pushstring(L, self(L).kind().c_str());
  return 1;
}

// tok:special_ids() -> {cls=, sep=, mask=, pad=, unk=} (absent tokens left out).
int tok_special_ids(lua_State* L) {
  const data::SpecialTokenIds& s = self(L).special_ids();
  lua_newtable(L);
  const std::pair<const char*, int64_t> fields[] = {
      {"cls", s.cls}, {"sep", s.sep}, {"mask", s.mask}, {"pad", s.pad}, {"unk", s.unk}};
  for (const auto& f : fields) {
    if (f.second < 0) continue;
    lua_pushnumber(L, static_cast<lua_Number>(f.second));
    lua_setfield(L, -2, f.first);
  }
  return 1;
}

// Captions of a CSV/TSV table: the column named `column`, else the first of
// name / caption / sentence.
std::vector<std::string> csv_captions(const std::string& path, const std::string& column) {
  const std::string text = data::detail::read_file(path);
  const char delimiter = path.size() > 4 && path.compare(path.size() - 4, 4, ".tsv") == 0 ? '\t' : ',';
  const auto records = data::detail::split_records(text, delimiter);
  TORCH_CHECK(!records.empty(), "data.build_vocab: '", path, "' is empty");
  int64_t col = -1;
  for (const std::string& name : column.empty() ? std::vector<std::string>{"name", "caption", "sentence"}
                                                 : std::vector<std::string>{column}) {
    col = data::detail::column_index(records.front(), name);
    if (col >= 0) break;
  }
  TORCH_CHECK(col >= 0, "data.build_vocab: '", path, "' has no ",
              column.empty() ? "name / caption / sentence" : "'" + column + "'", " column");
  std::vector<std::string> out;
  for (size_t r = 1; r < records.size(); ++r)
    if (static_cast<int64_t>(records[r].fields.size()) > col) out.push_back(records[r].fields[col]);
  return out;
}

// data.build_vocab{texts = {...} | csv = path, column =, path = 'vocab.txt', min_count = 1}
// -> number of tokens (written to path), or the token list when path is absent.
int build_vocab(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  Options opt(L, 1, "data.build_vocab");
  std::vector<std::string> texts;
  if (opt.push("texts") != LUA_TNIL) texts = check_string_list(L, lua_gettop(L), "data.build_vocab: option 'texts'");
  lua_pop(L, 1);
  const std::string csv = opt.string("csv", "");
  const std::string column = opt.string("column", "");
  const std::string path = opt.string("path", "");
  const int64_t min_count = opt.integer("min_count", 1);
  opt.finish();
  if (texts.empty() && csv.empty()) raise(L, "data.build_vocab: give option 'texts' or 'csv'");
  return protect(L, [&] {
    if (!csv.empty()) {
      auto more = csv_captions(csv, column);
      texts.insert(texts.end(), more.begin(), more.end());
    }
    const std::vector<std::string> vocab = data::build_word_vocab(texts, min_count);
    if (path.empty()) {
      push_string_list(L, vocab);
    } else {
      data::write_vocab(path, vocab);
      lua_pushnumber(L, static_cast<lua_Number>(vocab.size()));
    }
    return 1;
  });
}

// data.parts(caption) -> {nouns=, verbs=, noun_phrases=} (the caption tagger).
int parts(lua_State* L) {
  const std::string caption = luaL_checkstring(L, 1);
  return protect(L, [&] {
    static const data::PosTagger tagger;
    const data::CaptionParts p = tagger.parts(caption);
    lua_newtable(L);
    push_string_list(L, p.nouns);
    lua_setfield(L, -2, "nouns");
    push_string_list(L, p.verbs);
    lua_setfield(L, -2, "verbs");
    push_string_list(L, p.noun_phrases);
    lua_setfield(L, -2, "noun_phrases");
    return 1;
  });
}

// data.prompts(noun_phrase) -> the 12 filled S-ViLM prompts.
int prompts(lua_State* L) {
  const std::string phrase = luaL_checkstring(L, 1);
  return protect(L, [&] {
    push_string_list(L, data::svilm_prompts(phrase));
    return 1;
  });
}

int open_text(lua_State* L) {
  static const luaL_Reg methods[] = {{"encode", tok_encode},         {"encode_batch", tok_encode_batch},
                                     {"decode", tok_decode},         {"tokenize", tok_tokenize},
                                     {"vocab_size", tok_vocab_size}, {"special_ids", tok_special_ids},
                                     {"kind", tok_kind},             {nullptr, nullptr}};
  register_type<TokenizerBox>(L, kTokenizerMeta, methods);

  lua_newtable(L);
  static const luaL_Reg functions[] = {{"tokenizer", tokenizer_new}, {"build_vocab", build_vocab},
                                       {"parts", parts},             {"prompts", prompts},
                                       {nullptr, nullptr}};
  luaL_register(L, nullptr, functions);
  return 1;
}

}  // namespace

std::shared_ptr<const data::Tokenizer> check_tokenizer(lua_State* L, int idx, const char* what) {
  auto* box = test_object<TokenizerBox>(L, idx, kTokenizerMeta);
  if (!box) raise(L, std::string(what) + " must be a tokenizer (data.tokenizer{...})");
  return box->tokenizer;
}

KINEMA_LUA_MODULE("kinema._text", open_text);

}  // namespace kinema::lua
