#pragma once
// PyTorch-style text form of a tensor (summarised beyond 1000 elements), used
// by Lua's tostring/print. Plain C++, no Lua.
#include <ATen/ATen.h>

#include <string>

namespace kinema {

struct FormatOptions {
  int precision = 4;
  int64_t threshold = 1000;  // summarise when numel exceeds this
  int64_t edge_items = 3;
  int line_width = 80;
};

std::string format_tensor(const at::Tensor& t, const FormatOptions& options = {});
std::string dtype_name(at::ScalarType t);  // "torch.float32"

}  // namespace kinema
