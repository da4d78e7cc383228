#include "models/adapter.h"

namespace kinema::models {

void adopt_module(torch::nn::Module& outer, torch::nn::Module& inner) {
  for (auto& p : inner.named_parameters(/*recurse=*/false))
    outer.register_parameter(p.key(), p.value(), p.value().requires_grad());
  for (auto& b : inner.named_buffers(/*recurse=*/false)) outer.register_buffer(b.key(), b.value());
  for (auto& c : inner.named_children()) outer.register_module(c.key(), c.value());
}

}  // namespace kinema::models
