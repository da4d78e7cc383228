#pragma once
// The safetensors format (huggingface/safetensors), readable by Python's
// safetensors.torch.load_file:
//   8 bytes   little-endian u64 N, the header length
//   N bytes   JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}
//             padded with spaces to a multiple of 8
//   the rest  raw little-endian C-order tensor bytes; offsets relative to this section
// Writing imitates the reference writer: tensors ordered by decreasing dtype
// alignment then by name, packed without gaps, compact JSON, "__metadata__"
// first (omitted when empty). Dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kinema::io {

struct SafetensorsContent {
  // In file order (ascending data offsets).
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  // nullptr when absent.
  const at::Tensor* find(const std::string& name) const;
  // Name -> tensor (convenience; loses the file order).
  std::map<std::string, at::Tensor> to_map() const;
};

// Writes atomically (see atomic_file.h). Tensors may live on any device and
// have any layout; each is copied to a contiguous CPU tensor while writing, one
// at a time. Errors name the path and the offending tensor.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Maps the file and validates the header completely before touching data:
// header length within the file, valid JSON with no duplicate names, known
// dtypes, offsets contiguous, matching shape x itemsize and covering exactly
// the data section. Tensors are copied out of the mapping, so they own their
// memory and the file can be changed or deleted afterwards.
SafetensorsContent load_safetensors(const std::string& path);

// The same parser on bytes in memory; `what` names the source in errors.
SafetensorsContent parse_safetensors(const void* data, size_t size, const std::string& what);

// The header a file for these tensors would start with (8-byte length + padded
// JSON), for tests and tools.
std::string safetensors_header(const std::map<std::string, at::Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace kinema::io
