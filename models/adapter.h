#pragma once
// Glue between a typed C++ module (VideoEncoder, TextEncoder, ...) and its
// Block adapter: the adapter adopts the module's parameters, buffers and
// children under the same names, so named_parameters() of the Block (what Lua
// and the weight loader see) equals that of the typed module — no "impl." prefix.
#include "models/block.h"

#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kinema::models {

void adopt_module(torch::nn::Module& outer, torch::nn::Module& inner);

template <typename Holder>
class TypedBlock : public Block {
 public:
  void train(bool on = true) override {
    Block::train(on);
    impl_->train(on);
  }
  Holder& impl() { return impl_; }

 protected:
  explicit TypedBlock(Holder impl) : impl_(std::move(impl)) { adopt_module(*this, *impl_); }
  Holder impl_;
};

// A block's config keys, written once: one line per key names it, the options
// field it sets and, optionally, the values it takes. The block's reader
// (read) and the "key=default ..." list of its doc string (doc) both come from
// the table, the defaults from the options struct itself.
//   const ConfigKeys<RegionEncoderOptions>& region_keys() {
//     static const ConfigKeys<RegionEncoderOptions> keys = ConfigKeys<RegionEncoderOptions>()
//         .key("feat_dim", &RegionEncoderOptions::feat_dim)
//         .keys_of(&RegionEncoderOptions::layer, layer_keys());
//     return keys;
//   }
template <typename Options>
class ConfigKeys {
 public:
  // A key stored in field (int64_t, double, bool, std::string, std::vector<int64_t>).
  template <typename Field>
  ConfigKeys& key(const char* name, Field Options::*field, const char* values = nullptr) {
    return key_at(name, [field](Options& o) -> Field& { return o.*field; }, values);
  }
  // A key stored where `at` points (a field of a nested struct).
  template <typename At>
  ConfigKeys& key_at(const char* name, At at, const char* values = nullptr) {
    using Field = std::decay_t<decltype(at(std::declval<Options&>()))>;
    entries_.push_back({[name, at](const Config& c, Options& o) { at(o) = read_value<Field>(c, name, at(o)); },
                        [name, at, values](Options o) { return describe(name, format_value(at(o)), values); }});
    return *this;
  }
  // A key with its own reading (a value mapped onto a field): read(c, name, o)
  // reads it into o, shown(o) formats the default.
  ConfigKeys& custom(const char* name, std::function<void(const Config&, const char*, Options&)> read,
                     std::function<std::string(const Options&)> shown, const char* values = nullptr) {
    entries_.push_back({[name, read](const Config& c, Options& o) { read(c, name, o); },
                        [name, shown, values](Options o) { return describe(name, shown(o), values); }});
    return *this;
  }
  // Every key of a nested options struct (e.g. an encoder's LayerOptions).
  template <typename Sub>
  ConfigKeys& keys_of(Sub Options::*field, ConfigKeys<Sub> sub) {
    entries_.push_back({[field, sub](const Config& c, Options& o) { o.*field = sub.read(c, o.*field); },
                        [field, sub](Options o) { return sub.doc(o.*field); }});
    return *this;
  }
  // A check of the values read (ranges, combinations), run by read.
  ConfigKeys& check(std::function<void(const Options&)> fn) {
    checks_.push_back(std::move(fn));
    return *this;
  }

  Options read(const Config& c, Options o = Options()) const {
    for (const Entry& e : entries_) e.read(c, o);
    for (const auto& fn : checks_) fn(o);
    return o;
  }
  // "name=default name2=default2 ('a'|'b') ..." for a doc string.
  std::string doc(const Options& defaults = Options()) const {
    std::string out;
    for (const Entry& e : entries_) out += (out.empty() ? "" : " ") + e.doc(defaults);
    return out;
  }

 private:
  struct Entry {
    std::function<void(const Config&, Options&)> read;
    std::function<std::string(Options)> doc;
  };

  template <typename Field>
  static Field read_value(const Config& c, const char* name, const Field& fallback) {
    if constexpr (std::is_same_v<Field, bool>) {
      return c.get_bool(name, fallback);
    } else if constexpr (std::is_same_v<Field, int64_t>) {
      return c.get_int(name, fallback);
    } else if constexpr (std::is_same_v<Field, double>) {
      return c.get_double(name, fallback);
    } else if constexpr (std::is_same_v<Field, std::string>) {
      return c.get_string(name, fallback);
    } else {
      static_assert(std::is_same_v<Field, std::vector<int64_t>>, "ConfigKeys: unsupported field type");
      return c.get_ints(name, fallback);
    }
  }
  static std::string format_value(bool v) { return v ? "true" : "false"; }
  static std::string format_value(int64_t v) { return std::to_string(v); }
  static std::string format_value(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }
  static std::string format_value(const std::string& v) { return "'" + v + "'"; }
  static std::string format_value(const std::vector<int64_t>& v) {
    std::string out;
    for (int64_t x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
    return "{" + out + "}";
  }
  static std::string describe(const char* name, const std::string& value, const char* values) {
    return std::string(name) + "=" + value + (values ? std::string(" (") + values + ")" : "");
  }

  std::vector<Entry> entries_;
  std::vector<std::function<void(const Options&)>> checks_;
};

// Config value helpers shared by the adapters.
inline at::Tensor optional_input(const std::vector<c10::IValue>& inputs, size_t i,
                                 const char* block, const char* name) {
  return input_tensor(inputs, i, block, name, /*required=*/false);
}

}  // namespace kinema::models
