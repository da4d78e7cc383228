#pragma once
// Index expressions for Lua's t[...] syntax, parsed into ATen's TensorIndex list.
// Plain C++: the Lua wrapper turns its key into one of these inputs.
#include <ATen/TensorIndexing.h>

#include <string>
#include <vector>

namespace kinema {

// "0:2, :, -1", "..., None", "::2" — Python slice syntax with 0-based indices.
std::vector<at::indexing::TensorIndex> parse_index_string(const std::string& spec);

}  // namespace kinema
