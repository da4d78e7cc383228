#pragma once
// Multi-process collectives on c10d (plain C++, no Lua; core/wrap_dist.cpp is
// the Lua side). One process group per process, as torch.distributed's default
// group: Gloo on CPU, NCCL when LibTorch was built with it. Rendezvous through
// a TCPStore at MASTER_ADDR:MASTER_PORT, so torchrun, SLURM wrappers and
// `kinema launch` all work by setting torchrun's environment variables.
//
// Collectives bypass autograd (they write tensor storage); the gradient of a
// gather is defined in Lua (lua/kinema/dist.lua). Every function is collective
// where c10d's is: all ranks must call it in the same order.
#include <ATen/ATen.h>

#include <string>

namespace kinema::dist {

struct InitOptions {
  // Empty / negative: read from the environment (RANK, WORLD_SIZE, LOCAL_RANK,
  // MASTER_ADDR, MASTER_PORT); backend defaults to 'nccl' when compiled in and
  // a GPU is present, else 'gloo'.
  std::string backend;
  int rank = -1;
  int world_size = -1;
  int local_rank = -1;  // default: LOCAL_RANK, else rank (one node)
  std::string master_addr;  // default: MASTER_ADDR, else 127.0.0.1
  int master_port = -1;
  double timeout_s = 1800;  // rendezvous and collectives (torch's default)
};

enum class ReduceOp { Sum, Avg, Max, Min };
// 'sum' | 'avg' | 'max' | 'min'; throws naming `fn` otherwise.
ReduceOp parse_reduce_op(const std::string& name, const char* fn);

void init(InitOptions options);
bool is_initialized();
int rank();        // 0 when not initialized
int world_size();  // 1 when not initialized
int local_rank();  // 0 when not initialized
std::string backend();  // "" when not initialized
bool nccl_available();  // compiled with NCCL (USE_C10D_NCCL)

void barrier();
// In place: t on every rank becomes src's t (equal shapes and dtypes required).
void broadcast(const at::Tensor& t, int src);
// In place; 'avg' is the sum divided by the world size (floating tensors only).
void all_reduce(const at::Tensor& t, ReduceOp op);
// The ranks' tensors concatenated on dim 0 ([world*B, ...]; a 0-d tensor
// counts as [1]). Shapes and dtypes are compared across ranks first, so a
// mismatch is an error naming both shapes on every rank, not a hang.
at::Tensor all_gather(const at::Tensor& t);
// Drops the group and the store (a later init starts afresh).
void destroy();

}  // namespace kinema::dist
