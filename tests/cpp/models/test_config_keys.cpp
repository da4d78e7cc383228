// The blocks' config readers (models/adapter.h's ConfigKeys): a key read into
// its field, a nested options struct, custom keys and checks, the doc list
// built from the same table and the struct defaults, and Config's unknown-key
// error naming the closest key a block asked for.
#include "models/adapter.h"
#include "models/layers.h"
#include "models_test_util.h"

#include <doctest/doctest.h>

using namespace kinema::models;
using namespace kinema::models::testing;

namespace {

struct Inner {
  int64_t width = 4;
};
struct Outer {
  int64_t depth = 2;
  double rate = 0.5;
  bool flag = true;
  std::string mode = "a";
  std::vector<int64_t> layers{1, 3};
  Inner inner;
};

ConfigKeys<Outer> outer_keys() {
  return ConfigKeys<Outer>()
      .key("depth", &Outer::depth)
      .key("rate", &Outer::rate)
      .key("flag", &Outer::flag)
      .key("mode", &Outer::mode, "'a'|'b'")
      .key("layers", &Outer::layers)
      .keys_of(&Outer::inner, ConfigKeys<Inner>().key("width", &Inner::width))
      .check([](const Outer& o) { TORCH_CHECK(o.depth > 0, "config key 'depth' must be positive"); });
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace

TEST_CASE("ConfigKeys: reads each key into its field, keeps the defaults of absent keys, runs the checks") {
  const Outer o = outer_keys().read(config({{"depth", 7}, {"mode", "b"}, {"width", 9}, {"layers", std::vector<int64_t>{2}}}));
  CHECK(o.depth == 7);
  CHECK(o.rate == 0.5);
  CHECK(o.flag);
  CHECK(o.mode == "b");
  CHECK(o.layers == std::vector<int64_t>{2});
  CHECK(o.inner.width == 9);
  Outer base;
  base.rate = 0.25;
  CHECK(outer_keys().read(config({}), base).rate == 0.25);
  CHECK(error_of([] { outer_keys().read(config({{"depth", 0}})); }).find("config key 'depth' must be positive") !=
        std::string::npos);
}

TEST_CASE("ConfigKeys: the doc lists every key with the struct's default") {
  CHECK(outer_keys().doc() == "depth=2 rate=0.5 flag=true mode='a' ('a'|'b') layers={1, 3} width=4");
  const std::string layer = layer_keys().doc();
  CHECK(layer.find("embed_dim=768 num_heads=12 mlp_ratio=4 act='gelu' ('gelu'|'quick_gelu') qkv='fused' "
                   "('fused'|'separate') qkv_bias=true layer_norm_eps=1e-06") == 0);
  // a registered encoder's doc is built from its table
  CHECK(registered_blocks().at("RegionEncoder").doc.find("Config: feat_dim=2048 num_frames=8 depth=12 embed_dim=768") !=
        std::string::npos);
  CHECK(registered_blocks().at("GroupingBlock").doc.find(
            "Config: embed_dim=768 num_heads=12 mlp_ratio=4 tau=1 gumbel=true layer_norm_eps=1e-06 act='gelu' "
            "('gelu'|'quick_gelu') num_groups=32. Inputs:") != std::string::npos);
}

TEST_CASE("Config: an unknown key is refused naming the block and the closest key it asked for") {
  CHECK(error_of([] { make_block("Linear", config({{"in_features", 3}, {"out_features", 2}, {"bais", false}})); })
            .find("Linear: unknown config key 'bais' (did you mean 'bias'?)") != std::string::npos);
  CHECK(error_of([] { make_block("RegionEncoder", config({{"feat_dim", 8}, {"embed_dim", 8}, {"num_heads", 2},
                                                         {"dept", 1}})); })
            .find("RegionEncoder: unknown config key 'dept' (did you mean 'depth'?)") != std::string::npos);
  // nothing close: the known keys are listed
  CHECK(error_of([] { make_block("Dropout", config({{"zzzzzz", 1}})); }).find("Dropout: unknown config key 'zzzzzz' (known: p)") !=
        std::string::npos);
}
