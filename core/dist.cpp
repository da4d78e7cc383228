#include "core/dist.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "ops/torch_compat.h"

namespace kinema::dist {

namespace {

using Group = compat::C10dGroup;

struct State {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string backend;
};

// Never destroyed at exit (only by destroy()): a static destructor would join
// the group's worker threads after parts of LibTorch are gone, and a failing
// rank's connections should drop when the process is gone, not earlier, so
// that its peers' "connection reset" errors come after it and the launcher
// blames the right rank.
State& state() {
  static State* s = new State();
  return *s;
}

int env_int(const char* var, int fallback) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(v, &end, 10);
  TORCH_CHECK(*end == '\0', "kinema.dist.init: environment variable ", var, "='", v, "' is not an integer");
  return static_cast<int>(value);
}

std::string env_string(const char* var, const std::string& fallback) {
  const char* v = std::getenv(var);
  return (v == nullptr || *v == '\0') ? fallback : std::string(v);
}

#ifdef USE_C10D_GLOO
bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// The interface Gloo's pairs listen on: GLOO_SOCKET_IFNAME as in PyTorch;
// loopback when the master is local (the hostname may resolve to an address
// of another interface, or not at all, inside containers); else the address
// the hostname resolves to (Gloo's default).
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  const std::string ifname = env_string("GLOO_SOCKET_IFNAME", "");
  if (!ifname.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(ifname.substr(0, ifname.find(',')));
  if (is_loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

c10::intrusive_ptr<Group> make_group(const std::string& backend, const c10::intrusive_ptr<c10d::Store>& store,
                                     int rank, int world_size, const std::string& master_addr,
                                     std::chrono::milliseconds timeout) {
  if (backend == "gloo") {
#ifdef USE_C10D_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(master_addr));
    options->threads = 2;  // PyTorch's choice: two per device
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
#else
    TORCH_CHECK(false, "kinema.dist.init: backend 'gloo' is not available (LibTorch built without Gloo)");
#endif
  }
  if (backend == "nccl") {
#ifdef USE_C10D_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
#else
    TORCH_CHECK(false, "kinema.dist.init: backend 'nccl' is not available (LibTorch built without NCCL)");
#endif
  }
  TORCH_CHECK(false, "kinema.dist.init: option 'backend' must be 'gloo' or 'nccl', got '", backend, "'");
}

// Runs one collective and waits for it; c10d/Gloo errors get the function's name.
template <typename Launch>
void run(const char* fn, Launch&& launch) {
  TORCH_CHECK(is_initialized(), fn, ": the process group is not initialized (call kinema.dist.init first)");
  std::string message;
  try {
    launch(*state().group)->wait();
    return;
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    message = e.what();
  }
  TORCH_CHECK(false, fn, ": ", message);
}

std::string describe(const int64_t* meta) {
  std::ostringstream s;
  s << '[';
  for (int64_t d = 0; d < meta[0]; ++d) s << (d ? ", " : "") << meta[2 + d];
  s << "] " << c10::toString(static_cast<at::ScalarType>(meta[1]));
  return s.str();
}

constexpr int64_t kMaxDims = 16;

// Gathers every rank's (dims, dtype, sizes) and raises the same error on every
// rank when they differ: a collective on unequal tensors would hang or fail
// deep inside Gloo with a message naming nothing.
void check_same_layout(const char* fn, const at::Tensor& x) {
  TORCH_CHECK(x.dim() <= kMaxDims, fn, ": argument 'tensor' has ", x.dim(), " dimensions; at most ", kMaxDims,
              " are supported");
  std::vector<int64_t> meta(kMaxDims + 2, -1);
  meta[0] = x.dim();
  meta[1] = static_cast<int64_t>(x.scalar_type());
  for (int64_t d = 0; d < x.dim(); ++d) meta[2 + d] = x.size(d);
  const int world = world_size();
  at::Tensor mine = at::tensor(meta, at::kLong).to(x.device());
  at::Tensor all = at::empty({world, kMaxDims + 2}, mine.options());
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < world; ++r) outputs[0].push_back(all[r]);
  std::vector<at::Tensor> inputs{mine};
  run(fn, [&](Group& g) { return g.allgather(outputs, inputs); });
  all = all.cpu();
  const int64_t* rows = all.data_ptr<int64_t>();
  for (int r = 1; r < world; ++r) {
    const int64_t* row = rows + r * (kMaxDims + 2);
    if (!std::equal(row, row + kMaxDims + 2, rows)) {
      TORCH_CHECK(false, fn, ": argument 'tensor' must have the same shape and dtype on every rank; rank 0 has ",
                  describe(rows), ", rank ", r, " has ", describe(row));
    }
  }
}

}  // namespace

ReduceOp parse_reduce_op(const std::string& name, const char* fn) {
  if (name == "sum") return ReduceOp::Sum;
  if (name == "avg") return ReduceOp::Avg;
  if (name == "max") return ReduceOp::Max;
  if (name == "min") return ReduceOp::Min;
  TORCH_CHECK(false, fn, ": argument 'op' must be 'sum', 'avg', 'max' or 'min', got '", name, "'");
}

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

void init(InitOptions o) {
  State& s = state();
  TORCH_CHECK(!s.group, "kinema.dist.init: already initialized (", s.backend, ", rank ", s.rank, " of ",
              s.world_size, "); call destroy() first");
  if (o.world_size < 0) o.world_size = env_int("WORLD_SIZE", -1);
  TORCH_CHECK(o.world_size != -1, "kinema.dist.init: option 'world_size' not given and WORLD_SIZE is not set");
  TORCH_CHECK(o.world_size >= 1, "kinema.dist.init: option 'world_size' must be at least 1, got ", o.world_size);
  if (o.rank < 0) o.rank = env_int("RANK", -1);
  TORCH_CHECK(o.rank != -1, "kinema.dist.init: option 'rank' not given and RANK is not set");
  TORCH_CHECK(o.rank >= 0 && o.rank < o.world_size, "kinema.dist.init: option 'rank' = ", o.rank,
              " must be in [0, ", o.world_size, ")");
  if (o.local_rank < 0) o.local_rank = env_int("LOCAL_RANK", o.rank);
  if (o.master_addr.empty()) o.master_addr = env_string("MASTER_ADDR", "127.0.0.1");
  if (o.master_port < 0) o.master_port = env_int("MASTER_PORT", -1);
  TORCH_CHECK(o.master_port != -1, "kinema.dist.init: option 'master_port' not given and MASTER_PORT is not set");
  TORCH_CHECK(o.master_port > 0 && o.master_port < 65536, "kinema.dist.init: option 'master_port' = ",
              o.master_port, " is not a TCP port");
  TORCH_CHECK(o.timeout_s > 0, "kinema.dist.init: option 'timeout_s' must be positive, got ", o.timeout_s);
  if (o.backend.empty()) o.backend = nccl_available() && at::hasCUDA() ? "nccl" : "gloo";
  TORCH_CHECK(o.backend == "gloo" || o.backend == "nccl", "kinema.dist.init: option 'backend' must be 'gloo' or ",
              "'nccl', got '", o.backend, "'");
  TORCH_CHECK(o.backend != "nccl" || nccl_available(),
              "kinema.dist.init: backend 'nccl' is not available (LibTorch built without NCCL)");
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));

  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(o.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  std::string failure;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
    auto group = make_group(o.backend, store, o.rank, o.world_size, o.master_addr, timeout);
    s.store = store;
    s.group = group;
  } catch (const c10::Error& e) {
    failure = e.what_without_backtrace();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    if (failure.rfind("kinema.dist.init", 0) == 0) TORCH_CHECK(false, failure);
    TORCH_CHECK(false, "kinema.dist.init: rendezvous at ", o.master_addr, ":", o.master_port, " failed (rank ",
                o.rank, " of ", o.world_size, ", backend ", o.backend, "): ", failure);
  }
  s.rank = o.rank;
  s.world_size = o.world_size;
  s.local_rank = o.local_rank;
  s.backend = o.backend;
}

bool is_initialized() { return static_cast<bool>(state().group); }
int rank() { return state().rank; }
int world_size() { return state().world_size; }
int local_rank() { return state().local_rank; }
std::string backend() { return state().backend; }

void barrier() {
  run("kinema.dist.barrier", [](Group& g) { return g.barrier(); });
}

void broadcast(const at::Tensor& t, int src) {
  const char* fn = "kinema.dist.broadcast";
  TORCH_CHECK(t.defined(), fn, ": argument 'tensor' is undefined");
  TORCH_CHECK(is_initialized(), fn, ": the process group is not initialized (call kinema.dist.init first)");
  TORCH_CHECK(src >= 0 && src < world_size(), fn, ": argument 'src' = ", src, " must be in [0, ", world_size(),
              ")");
  check_same_layout(fn, t);
  // detach(): the bytes change under autograd's feet on purpose (shared
  // version counter, so a saved tensor that is overwritten is still detected).
  at::Tensor data = t.detach();
  at::Tensor buffer = data.is_contiguous() ? data : data.contiguous();
  std::vector<at::Tensor> tensors{buffer};
  c10d::BroadcastOptions options;
  options.rootRank = src;
  run(fn, [&](Group& g) { return g.broadcast(tensors, options); });
  if (!buffer.is_same(data)) data.copy_(buffer);
}

void all_reduce(const at::Tensor& t, ReduceOp op) {
  const char* fn = "kinema.dist.all_reduce";
  TORCH_CHECK(t.defined(), fn, ": argument 'tensor' is undefined");
  TORCH_CHECK(op != ReduceOp::Avg || at::isFloatingType(t.scalar_type()), fn,
              ": op 'avg' needs a floating tensor, got ", t.scalar_type());
  at::Tensor data = t.detach();
  at::Tensor buffer = data.is_contiguous() ? data : data.contiguous();
  std::vector<at::Tensor> tensors{buffer};
  c10d::AllreduceOptions options;
  // Gloo has no AVG: every backend sums and divides here.
  options.reduceOp = op == ReduceOp::Max   ? c10d::ReduceOp::MAX
                     : op == ReduceOp::Min ? c10d::ReduceOp::MIN
                                           : c10d::ReduceOp::SUM;
  run(fn, [&](Group& g) { return g.allreduce(tensors, options); });
  if (op == ReduceOp::Avg) buffer.div_(world_size());
  if (!buffer.is_same(data)) data.copy_(buffer);
}

at::Tensor all_gather(const at::Tensor& t) {
  const char* fn = "kinema.dist.all_gather";
  TORCH_CHECK(t.defined(), fn, ": argument 'tensor' is undefined");
  TORCH_CHECK(is_initialized(), fn, ": the process group is not initialized (call kinema.dist.init first)");
  at::Tensor x = t.detach();
  if (x.dim() == 0) x = x.reshape({1});
  x = x.contiguous();
  check_same_layout(fn, x);
  const int world = world_size();
  const int64_t rows = x.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] = rows * world;
  at::Tensor result = at::empty(shape, x.options());
  if (x.numel() == 0) return result;
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < world; ++r) outputs[0].push_back(result.narrow(0, r * rows, rows));
  std::vector<at::Tensor> inputs{x};
  run(fn, [&](Group& g) { return g.allgather(outputs, inputs); });
  return result;
}

void destroy() {
  State& s = state();
  s.group.reset();  // joins the group's worker threads
  s.store.reset();
  s = State();
}

}  // namespace kinema::dist
