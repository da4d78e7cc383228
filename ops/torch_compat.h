#pragma once
// The one place where kinema's C++ differs between the two LibTorch lines it
// builds against: Debian's libtorch-dev 1.13 and the current 2.x from PyPI.
// Code elsewhere calls these names and never tests TORCH_VERSION_* itself.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#define KINEMA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#include <memory>
#include <type_traits>

namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

namespace torch::autograd {
struct Node;
void deleteNode(Node* function);  // LibTorch 1.x only
}  // namespace torch::autograd

namespace kinema::compat {

// LibTorch 2.0 moved the collectives of a Gloo/NCCL group to c10d::Backend
// (same signatures); 1.13 has them on c10d::ProcessGroup.
#if KINEMA_TORCH_AT_LEAST(2, 0)
using C10dGroup = c10d::Backend;
#else
using C10dGroup = c10d::ProcessGroup;
#endif

// Writable bytes of a storage: 2.1 made Storage::data() const (copy-on-write
// storages materialise on mutable_data()).
inline void* mutable_data(const at::Storage& storage) {
#if KINEMA_TORCH_AT_LEAST(2, 1)
  return storage.mutable_data();
#else
  return storage.data();
#endif
}

// A new custom autograd node (a torch::autograd::Node subclass). Newer
// LibTorch 2.x holds nodes in c10::intrusive_ptr; 1.x in std::shared_ptr with
// deleteNode, which frees long chains of nodes without deep recursion.
template <typename NodeT>
auto make_autograd_node() {
  if constexpr (std::is_base_of_v<c10::intrusive_ptr_target, NodeT>) {
    return c10::make_intrusive<NodeT>();
  } else {
    return std::shared_ptr<NodeT>(new NodeT(), torch::autograd::deleteNode);
  }
}

// Autocast state of one device type (at::kCUDA or at::kCPU). 2.4 keys it by
// DeviceType and deprecates the per-device functions 1.13 has.
inline bool autocast_enabled(at::DeviceType device) {
#if KINEMA_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(at::DeviceType device, bool enabled) {
#if KINEMA_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == at::kCUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline at::ScalarType autocast_dtype(at::DeviceType device) {
#if KINEMA_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(at::DeviceType device, at::ScalarType dtype) {
#if KINEMA_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == at::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

// Whether at::scaled_dot_product_attention (with its scale argument, 2.1+)
// exists: flash and
// memory-efficient kernels on CUDA, a fused (never materialised S x S) kernel
// on CPU.
constexpr bool has_fused_attention = KINEMA_TORCH_AT_LEAST(2, 1);

// An additive mask entry at or below this (the lowest finite fp16 value, what
// masks use for a blocked key in fp16; -1e30 elsewhere) blocks its key.
constexpr double blocked_attention_mask = -65504.0;

// softmax(q k^T * scale + mask) v over q, k, v [N, H, S, hd] with an additive
// float mask broadcastable to [N, H, S_q, S_k] (or undefined). fused = false,
// or a LibTorch without the fused kernel, takes the explicit path, which
// materialises the attention weights.
//
// A query whose every key is blocked attends uniformly: its output is mean(v),
// which does not depend on q or k, so it gives them no gradient and gives v
// dy / S_k. Both paths compute such a row from zero scores (its query and mask
// row zeroed) rather than from -1e30 + score: there the rounding absorbs the
// scores, and the fused kernel's logsumexp (-1e30 + log S_k == -1e30) made its
// backward weight every key 1 instead of 1 / S_k, while the explicit softmax's
// backward gave q and k a gradient the output does not have.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double dropout, double scale, bool fused = true) {
  at::Tensor query = q, additive = mask;
  if (mask.defined()) {
    const at::Tensor all_blocked = mask.le(blocked_attention_mask).all(-1, /*keepdim=*/true);
    query = q.masked_fill(all_blocked, 0.0);
    additive = mask.masked_fill(all_blocked, 0.0);
  }
#if KINEMA_TORCH_AT_LEAST(2, 1)
  if (fused) {
    std::optional<at::Tensor> m;
    if (additive.defined()) {
      // SDPA wants a float mask in the query's dtype (bf16/fp16 under
      // autocast); blocked entries (-1e30) must stay finite in fp16.
      m = q.scalar_type() == at::kHalf ? additive.clamp_min(blocked_attention_mask).to(at::kHalf)
                                       : additive.to(q.scalar_type());
    }
    return at::scaled_dot_product_attention(query, k, v, m, dropout, /*is_causal=*/false, scale);
  }
#endif
  // Scaling q (S*hd values) is cheaper than scaling the S*S scores.
  at::Tensor scores = at::matmul(query * scale, k.transpose(-2, -1));
  if (additive.defined()) scores = scores + additive;
  at::Tensor weights = at::softmax(scores, -1);
  if (dropout > 0.0) weights = at::dropout(weights, dropout, /*train=*/true);
  return at::matmul(weights, v);
}

}  // namespace kinema::compat
