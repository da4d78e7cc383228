#include "models/block.h"

#include <sstream>

#include "models/unknown_key.h"

namespace kinema::models {

Config::Config(std::unordered_map<std::string, c10::IValue> values) : values_(std::move(values)) {}

const c10::IValue* Config::find(const std::string& key) const {
  asked_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end() || it->second.isNone()) return nullptr;
  read_.insert(key);
  return &it->second;
}

bool Config::has(const std::string& key) const {
  asked_.insert(key);
  auto it = values_.find(key);
  return it != values_.end() && !it->second.isNone();
}

int64_t Config::get_int(const std::string& key, int64_t fallback) const {
  const c10::IValue* v = find(key);
  if (!v) return fallback;
  if (v->isInt()) return v->toInt();
  if (v->isDouble() && v->toDouble() == static_cast<double>(static_cast<int64_t>(v->toDouble())))
    return static_cast<int64_t>(v->toDouble());
  TORCH_CHECK(false, "config key '", key, "': expected an integer, got ", v->tagKind());
}

double Config::get_double(const std::string& key, double fallback) const {
  const c10::IValue* v = find(key);
  if (!v) return fallback;
  if (v->isDouble()) return v->toDouble();
  if (v->isInt()) return static_cast<double>(v->toInt());
  TORCH_CHECK(false, "config key '", key, "': expected a number, got ", v->tagKind());
}

bool Config::get_bool(const std::string& key, bool fallback) const {
  const c10::IValue* v = find(key);
  if (!v) return fallback;
  TORCH_CHECK(v->isBool(), "config key '", key, "': expected a boolean, got ", v->tagKind());
  return v->toBool();
}

std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  const c10::IValue* v = find(key);
  if (!v) return fallback;
  TORCH_CHECK(v->isString(), "config key '", key, "': expected a string, got ", v->tagKind());
  return v->toStringRef();
}

std::vector<int64_t> Config::get_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const c10::IValue* v = find(key);
  if (!v) return fallback;
  if (v->isInt()) return {v->toInt()};
  if (v->isIntList()) return v->toIntVector();
  if (v->isList()) {
    std::vector<int64_t> out;
    for (const c10::IValue& e : v->toListRef()) {
      if (e.isInt()) {
        out.push_back(e.toInt());
      } else if (e.isDouble()) {
        out.push_back(static_cast<int64_t>(e.toDouble()));
      } else {
        TORCH_CHECK(false, "config key '", key, "': expected a list of integers");
      }
    }
    return out;
  }
  TORCH_CHECK(false, "config key '", key, "': expected a list of integers, got ", v->tagKind());
}

int64_t Config::require_int(const std::string& key) const {
  TORCH_CHECK(has(key), "config key '", key, "' is required");
  return get_int(key, 0);
}

Config Config::get_config(const std::string& key) const {
  const c10::IValue* v = find(key);
  if (!v) return Config();
  TORCH_CHECK(v->isGenericDict(), "config key '", key, "': expected a table of options");
  std::unordered_map<std::string, c10::IValue> values;
  for (const auto& entry : v->toGenericDict()) values[entry.key().toStringRef()] = entry.value();
  return Config(std::move(values));
}

void Config::set(const std::string& key, c10::IValue value) { values_[key] = std::move(value); }

std::vector<std::string> Config::unused_keys() const {
  std::vector<std::string> out;
  for (const auto& kv : values_)
    if (!read_.count(kv.first)) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Config::asked_keys() const { return {asked_.begin(), asked_.end()}; }

Outputs make_outputs() { return Outputs(c10::StringType::get(), c10::AnyType::get()); }

Outputs make_outputs(std::initializer_list<std::pair<std::string, c10::IValue>> items) {
  Outputs out = make_outputs();
  for (const auto& kv : items) out.insert(kv.first, kv.second);
  return out;
}

at::Tensor input_tensor(const std::vector<c10::IValue>& inputs, size_t i, const char* block,
                        const char* name, bool required) {
  if (i >= inputs.size() || inputs[i].isNone()) {
    TORCH_CHECK(!required, block, ": input #", i + 1, " (", name, ") is required");
    return at::Tensor();
  }
  TORCH_CHECK(inputs[i].isTensor(), block, ": input #", i + 1, " (", name,
              ") must be a Tensor, got ", inputs[i].tagKind());
  return inputs[i].toTensor();
}

static std::map<std::string, BlockInfo>& registry() {
  static std::map<std::string, BlockInfo> blocks;
  return blocks;
}

void register_block(const std::string& name, BlockFactory factory, std::string doc) {
  registry()[name] = BlockInfo{std::move(factory), std::move(doc)};
}

const std::map<std::string, BlockInfo>& registered_blocks() { return registry(); }

std::shared_ptr<Block> make_block(const std::string& name, const Config& config) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::ostringstream known;
    for (const auto& kv : registry()) known << " " << kv.first;
    TORCH_CHECK(false, "unknown block '", name, "'; known blocks:", known.str());
  }
  std::shared_ptr<Block> block = it->second.factory(config);
  std::vector<std::string> unused = config.unused_keys();
  // the first unknown key (sorted), with the closest key the block asked for
  TORCH_CHECK(unused.empty(), unknown_key_message(name, "config key", unused.front(), config.asked_keys()));
  return block;
}

}  // namespace kinema::models
