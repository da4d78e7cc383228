#pragma once
// The contract between C++ blocks and whoever drives them (the Lua host, C++
// tests). A block is a torch::nn::Module built from a Config and called with
// positional values; it returns one value (a tensor, or a dict of named outputs).
// Nothing here knows Lua: core/ converts Lua tables to Config and IValues.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace kinema::models {

// Named construction options. Reads are typed; every key a block did not read
// is reported by unused_keys() so a typo in a Lua config is an error, not a no-op,
// and asked_keys() (every key a block asked for, given or not) names the
// closest known key in that error.
class Config {
 public:
  Config() = default;
  explicit Config(std::unordered_map<std::string, c10::IValue> values);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key, std::vector<int64_t> fallback) const;
  int64_t require_int(const std::string& key) const;
  // A nested table (e.g. the config of a sub-block).
  Config get_config(const std::string& key) const;
  void set(const std::string& key, c10::IValue value);

  std::vector<std::string> unused_keys() const;
  std::vector<std::string> asked_keys() const;
  const std::unordered_map<std::string, c10::IValue>& values() const { return values_; }

 private:
  const c10::IValue* find(const std::string& key) const;
  std::unordered_map<std::string, c10::IValue> values_;
  mutable std::set<std::string> read_, asked_;
};

// Dict of named outputs, the common return value of a block's forward.
using Outputs = c10::impl::GenericDict;
Outputs make_outputs();
Outputs make_outputs(std::initializer_list<std::pair<std::string, c10::IValue>> items);

// Fetch input i (0-based) as a tensor, or an undefined tensor when absent/None.
at::Tensor input_tensor(const std::vector<c10::IValue>& inputs, size_t i, const char* block,
                        const char* name, bool required = true);

class Block : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  // Inputs are positional; a Lua table arrives as a GenericDict (string keys)
  // or a GenericList (array).
  virtual c10::IValue forward(std::vector<c10::IValue> inputs) = 0;
};

using BlockFactory = std::function<std::shared_ptr<Block>(const Config&)>;

struct BlockInfo {
  BlockFactory factory;
  std::string doc;  // one paragraph: what it is, its config keys, its inputs/outputs
};

void register_block(const std::string& name, BlockFactory factory, std::string doc);
// Throws c10::Error naming the unknown block and listing the known ones, or
// naming config keys the block did not use.
std::shared_ptr<Block> make_block(const std::string& name, const Config& config);
const std::map<std::string, BlockInfo>& registered_blocks();

struct BlockRegistrar {
  BlockRegistrar(const char* name, BlockFactory factory, std::string doc) {
    register_block(name, std::move(factory), doc);
  }
};

#define KINEMA_BLOCK_CONCAT_(a, b) a##b
#define KINEMA_BLOCK_CONCAT(a, b) KINEMA_BLOCK_CONCAT_(a, b)
// KINEMA_REGISTER_BLOCK("Linear", [](const Config& c) { return std::make_shared<LinearBlock>(c); }, "doc")
// (the doc may be built, e.g. from a ConfigKeys table's doc(): models/adapter.h)
#define KINEMA_REGISTER_BLOCK(NAME, FACTORY, DOC)                                                  \
  static ::kinema::models::BlockRegistrar KINEMA_BLOCK_CONCAT(kinema_block_registrar_, __LINE__)( \
      NAME, FACTORY, DOC)

}  // namespace kinema::models
