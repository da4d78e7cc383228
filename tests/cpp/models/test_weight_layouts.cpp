// The parameter naming scheme documented in models/README.md maps the real
// checkpoint layouts (tests/fixtures/make_models_weights.py: state dicts and
// outputs of the real open_clip CLIP ViT-B/16, timm vit_base_patch16_224 and
// transformers BERT / DistilBERT at reduced width, random weights) onto the
// blocks by renaming alone (plus CLIP's [D] -> [1,1,D] reshapes), and the blocks
// then reproduce those packages' outputs. The Lua loader's mapping tables
// are these same rules.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <regex>

#include "models/text_encoder.h"
#include "models/video_encoder.h"
#include "models_test_util.h"
#include "test_paths.h"

using namespace kinema::models;
using namespace kinema::models::testing;

namespace {

using Rules = std::vector<std::pair<std::string, std::string>>;

c10::impl::GenericDict load(const std::string& name);

// The reference inputs/outputs of one layout ("clip", "timm", "bert", ...).
struct Expected {
  c10::impl::GenericDict all;
  std::string layout;
  at::Tensor at(const std::string& key) const { return all.at(layout + "." + key).toTensor(); }
};

Expected expected_for(const std::string& layout) { return {load("models_weights_expected.pt"), layout}; }

c10::impl::GenericDict load(const std::string& name) {
  std::ifstream in(std::string(KINEMA_FIXTURES) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), name);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toGenericDict();
}

// Renames every key by the first matching rule (keys matching none are unused),
// copies into `module`, and returns the module parameters no key reached.
std::vector<std::string> load_renamed(torch::nn::Module& module, const c10::impl::GenericDict& state,
                                      const Rules& rules, std::vector<std::string>* unused = nullptr) {
  auto params = module.named_parameters();
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& entry : state) {
    const std::string key = entry.key().toStringRef();
    std::string target;
    for (const auto& rule : rules) {
      std::smatch m;
      if (std::regex_match(key, m, std::regex(rule.first))) {
        target = m.format(rule.second);
        break;
      }
    }
    at::Tensor* dst = target.empty() ? nullptr : params.find(target);
    if (!dst) {
      if (unused) unused->push_back(key);
      continue;
    }
    at::Tensor src = entry.value().toTensor();
    REQUIRE_MESSAGE(src.numel() == dst->numel(), key, " -> ", target);
    dst->copy_(src.reshape(dst->sizes()));
    loaded.insert(target);
  }
  std::vector<std::string> missing;
  for (const auto& p : params)
    if (!loaded.count(p.key())) missing.push_back(p.key());
  return missing;
}

const Rules kClipBlocks = {
    {R"((?:visual\.)?transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias))", "blocks.$1.attn.qkv.$2"},
    {R"((?:visual\.)?transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias))", "blocks.$1.attn.proj.$2"},
    {R"((?:visual\.)?transformer\.resblocks\.(\d+)\.ln_(\d)\.(weight|bias))", "blocks.$1.norm$2.$3"},
    {R"((?:visual\.)?transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias))", "blocks.$1.mlp.fc1.$2"},
    {R"((?:visual\.)?transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias))", "blocks.$1.mlp.fc2.$2"},
};

Rules with_blocks(Rules head, const std::string& only_prefix) {
  for (const auto& r : kClipBlocks) head.push_back({only_prefix + r.first.substr(std::string("(?:visual\\.)?").size()), r.second});
  return head;
}

VideoEncoderOptions reduced_vit() {
  VideoEncoderOptions o;
  o.num_frames = 1;
  o.depth = 2;
  o.layer.dim = 32;
  o.layer.num_heads = 4;
  return o;
}

}  // namespace

TEST_CASE("timm ViT-B/16 layout loads by identity names and reproduces forward_features") {
  auto expected = expected_for("timm");
  VideoEncoder enc(reduced_vit());
  std::vector<std::string> unused;
  auto missing = load_renamed(*enc, load("models_timm_vitb16.pt"), {{R"((.*))", "$1"}}, &unused);
  CHECK(missing == std::vector<std::string>{"time_embed"});  // image model: no time axis
  CHECK(unused == std::vector<std::string>{"head.weight", "head.bias"});
  torch::NoGradGuard g;
  enc->named_parameters()["time_embed"].zero_();
  enc->eval();
  auto r = enc->forward(expected.at("image"));
  CHECK(max_abs_diff(r.tokens[0][0], expected.at("tokens")[0]) < 1e-4);
}

TEST_CASE("OpenAI CLIP ViT-B/16 visual and text towers load by renaming and reproduce the embeddings") {
  auto state = load("models_clip_vitb16.pt");
  auto expected = expected_for("clip");

  auto vo = reduced_vit();
  vo.patch_bias = false;
  vo.norm_pre = true;
  vo.proj_dim = 16;
  vo.layer.act = "quick_gelu";
  vo.layer.layer_norm_eps = 1e-5;
  VideoEncoder visual(vo);
  Rules vrules = with_blocks({{R"(visual\.conv1\.weight)", "patch_embed.proj.weight"},
                              {R"(visual\.class_embedding)", "cls_token"},
                              {R"(visual\.positional_embedding)", "pos_embed"},
                              {R"(visual\.ln_pre\.(weight|bias))", "norm_pre.$1"},
                              {R"(visual\.ln_post\.(weight|bias))", "norm.$1"},
                              {R"(visual\.proj)", "proj"}},
                             R"(visual\.)");
  auto missing = load_renamed(*visual, state, vrules);
  CHECK(missing == std::vector<std::string>{"time_embed"});
  torch::NoGradGuard g;
  visual->named_parameters()["time_embed"].zero_();
  visual->eval();
  auto r = visual->forward(expected.at("image"));
  CHECK(max_abs_diff(r.pooled_proj, expected.at("image_embed")) < 1e-4);

  TextEncoderOptions to = TextEncoderOptions::clip();
  to.vocab_size = 512;
  to.depth = 2;
  to.layer.dim = 32;
  to.layer.num_heads = 4;
  to.proj_dim = 16;
  TextEncoder text(to);
  Rules trules = with_blocks({{R"(token_embedding\.weight)", "word_embed.weight"},
                              {R"(positional_embedding)", "pos_embed"},
                              {R"(ln_final\.(weight|bias))", "norm.$1"},
                              {R"(text_projection)", "proj"}},
                             "");
  CHECK(load_renamed(*text, state, trules).empty());
  text->eval();
  auto t = text->forward(expected.at("ids"));
  CHECK(max_abs_diff(t.pooled_proj, expected.at("text_embed")) < 1e-4);
}

TEST_CASE("HF BERT and DistilBERT layouts load by renaming and reproduce the hidden states") {
  for (const std::string name : {"bert", "distilbert"}) {
    auto expected = expected_for(name);
    TextEncoderOptions o = TextEncoderOptions::bert();
    o.vocab_size = 100;
    o.depth = 2;
    o.layer.dim = 32;
    o.layer.num_heads = 4;
    Rules rules;
    if (name == "bert") {
      rules = {{R"(bert\.embeddings\.word_embeddings\.weight)", "word_embed.weight"},
               {R"(bert\.embeddings\.position_embeddings\.weight)", "pos_embed"},
               {R"(bert\.embeddings\.token_type_embeddings\.weight)", "type_embed.weight"},
               {R"(bert\.embeddings\.LayerNorm\.(weight|bias))", "embed_norm.$1"},
               {R"(bert\.encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias))", "blocks.$1.attn.q.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias))", "blocks.$1.attn.k.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias))", "blocks.$1.attn.v.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias))", "blocks.$1.attn.proj.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias))", "blocks.$1.norm1.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias))", "blocks.$1.mlp.fc1.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.output\.dense\.(weight|bias))", "blocks.$1.mlp.fc2.$2"},
               {R"(bert\.encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias))", "blocks.$1.norm2.$2"}};
    } else {
      o.type_vocab_size = 0;
      rules = {{R"(distilbert\.embeddings\.word_embeddings\.weight)", "word_embed.weight"},
               {R"(distilbert\.embeddings\.position_embeddings\.weight)", "pos_embed"},
               {R"(distilbert\.embeddings\.LayerNorm\.(weight|bias))", "embed_norm.$1"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.attention\.(q|k|v)_lin\.(weight|bias))", "blocks.$1.attn.$2.$3"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.attention\.out_lin\.(weight|bias))", "blocks.$1.attn.proj.$2"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.sa_layer_norm\.(weight|bias))", "blocks.$1.norm1.$2"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.ffn\.lin1\.(weight|bias))", "blocks.$1.mlp.fc1.$2"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.ffn\.lin2\.(weight|bias))", "blocks.$1.mlp.fc2.$2"},
               {R"(distilbert\.transformer\.layer\.(\d+)\.output_layer_norm\.(weight|bias))", "blocks.$1.norm2.$2"}};
    }
    TextEncoder enc(o);
    std::vector<std::string> unused;
    CHECK_MESSAGE(load_renamed(*enc, load("models_" + std::string(name == "bert" ? "bert_base" : "distilbert") + ".pt"),
                               rules, &unused)
                      .empty(),
                  name);
    CHECK(!unused.empty());  // pooler / MLM heads are not part of the encoder
    enc->eval();
    auto r = enc->forward(expected.at("ids"), expected.at("attention_mask"));
    CHECK_MESSAGE(max_abs_diff(r.tokens, expected.at("tokens")) < 1e-4, name);
  }
}
