#pragma once
// Glue between a typed C++ module (VideoEncoder, TextEncoder, ...) and its
// Block adapter: the adapter adopts the module's parameters, buffers and
// children under the same names, so named_parameters() of the Block (what Lua
// and the weight loader see) equals that of the typed module — no "impl." prefix.
#include "models/block.h"

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

// Config value helpers shared by the adapters.
inline at::Tensor optional_input(const std::vector<c10::IValue>& inputs, size_t i,
                                 const char* block, const char* name) {
  return input_tensor(inputs, i, block, name, /*required=*/false);
}

}  // namespace kinema::models
