// Fused AdamW and SGD steps on CPU. Each element of a parameter is read and
// written once per step (p, g, m, v in; p, m, v out) instead of once per ATen
// call of the reference update (~19 passes for AdamW). The work is cut into
// fixed-size chunks across all tensors of the list, so many small tensors and
// a few large ones both spread over the intra-op threads. The inner loops are
// plain loops the compiler vectorises (this file is built with
// -fno-math-errno so that sqrt vectorises), cloned for AVX+FMA and picked at
// load time by CPU feature (an "arch=" clone would be picked by CPU model
// only, and a newer model would get the slow default clone). Arithmetic
// mirrors PyTorch's single-tensor update term by term, in float for float/bf16/fp16 parameters and in double for double, with a
// fused multiply-add where ATen's vectorised kernels use one (add_ with
// alpha, addcmul_, addcdiv_), so that results agree to the last bits.
#include "ops/optimizers.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace kinema::ops {
namespace {

using detail::Operand;

// Elements per unit of parallel work: large enough to amortise scheduling,
// small enough to balance two threads over a 150M-parameter list.
constexpr int64_t kChunk = 1 << 16;

// GCC clones function templates; clang (before 16; the sanitizer build of
// tests/fuzz uses it) cannot, and builds the default only.
#if defined(__clang__)
#define KINEMA_FMA_CLONES
#else
#define KINEMA_FMA_CLONES __attribute__((target_clones("fma", "default")))
#endif

template <typename T>
using opmath_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

struct AdamWScalars {
  double decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias2_sqrt, eps, neg_step_size;
};

template <typename P, typename S>
KINEMA_FMA_CLONES void adamw_range(
    P* __restrict param, const P* __restrict grad, S* __restrict exp_avg,
    S* __restrict exp_avg_sq, int64_t n, const AdamWScalars& s) {
  using O = opmath_t<P>;
  const O decay = static_cast<O>(s.decay), beta1 = static_cast<O>(s.beta1),
          one_minus_beta1 = static_cast<O>(s.one_minus_beta1), beta2 = static_cast<O>(s.beta2),
          one_minus_beta2 = static_cast<O>(s.one_minus_beta2),
          bias2_sqrt = static_cast<O>(s.bias2_sqrt), eps = static_cast<O>(s.eps),
          neg_step_size = static_cast<O>(s.neg_step_size);
  for (int64_t i = 0; i < n; ++i) {
    const O g = static_cast<O>(grad[i]);
    // p.mul_(1 - lr*wd); m.mul_(b1).add_(g, 1-b1); v.mul_(b2).addcmul_(g, g, 1-b2)
    const O p = static_cast<O>(param[i]) * decay;
    const O m = std::fma(g, one_minus_beta1, static_cast<O>(exp_avg[i]) * beta1);
    const O v = std::fma(one_minus_beta2 * g, g, static_cast<O>(exp_avg_sq[i]) * beta2);
    // denom = sqrt(v) / sqrt(1-b2^t) + eps; p.addcdiv_(m, denom, -lr/(1-b1^t))
    const O denom = std::sqrt(v) / bias2_sqrt + eps;
    param[i] = static_cast<P>(std::fma(neg_step_size, m / denom, p));
    exp_avg[i] = static_cast<S>(m);
    exp_avg_sq[i] = static_cast<S>(v);
  }
}

struct SgdScalars {
  double neg_lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, first_step;
};

template <typename P, typename S>
KINEMA_FMA_CLONES void sgd_momentum_range(
    P* __restrict param, const P* __restrict grad, S* __restrict buffer, int64_t n,
    const SgdScalars& s) {
  using O = opmath_t<P>;
  const O neg_lr = static_cast<O>(s.neg_lr), momentum = static_cast<O>(s.momentum),
          one_minus_dampening = static_cast<O>(s.one_minus_dampening),
          weight_decay = static_cast<O>(s.weight_decay);
  const bool nesterov = s.nesterov, first_step = s.first_step;
  for (int64_t i = 0; i < n; ++i) {
    const O p = static_cast<O>(param[i]);
    // d = g.add(p, wd); buf = d (first step) or buf.mul_(mu).add_(d, 1-dampening)
    const O d = std::fma(p, weight_decay, static_cast<O>(grad[i]));
    const O b = first_step ? d : std::fma(d, one_minus_dampening, static_cast<O>(buffer[i]) * momentum);
    const O direction = nesterov ? std::fma(b, momentum, d) : b;
    param[i] = static_cast<P>(std::fma(direction, neg_lr, p));
    buffer[i] = static_cast<S>(b);
  }
}

template <typename P>
KINEMA_FMA_CLONES void sgd_plain_range(
    P* __restrict param, const P* __restrict grad, int64_t n, const SgdScalars& s) {
  using O = opmath_t<P>;
  const O neg_lr = static_cast<O>(s.neg_lr), weight_decay = static_cast<O>(s.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    const O p = static_cast<O>(param[i]);
    param[i] = static_cast<P>(std::fma(std::fma(p, weight_decay, static_cast<O>(grad[i])), neg_lr, p));
  }
}

// A range [begin, end) of elements of tensor `index`.
struct Chunk {
  size_t index;
  int64_t begin, end;
};

std::vector<Chunk> chunks_of(const std::vector<int64_t>& numels) {
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < numels.size(); ++i) {
    for (int64_t b = 0; b < numels[i]; b += kChunk) chunks.push_back({i, b, std::min(numels[i], b + kChunk)});
  }
  return chunks;
}

// Calls fn(chunk) for every chunk, spread over the intra-op threads.
template <typename F>
void for_each_chunk(const std::vector<Chunk>& chunks, const F& fn) {
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) fn(chunks[c]);
  });
}

// Dispatches on (parameter dtype, state dtype): state is the parameter's dtype,
// or float32 for bf16/fp16 parameters.
template <typename F>
void dispatch_param_state(at::ScalarType param, at::ScalarType state, const F& fn) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, param, "kinema::optimizer_step", [&] {
    using P = scalar_t;
    if (state == param) {
      fn(P{}, P{});
    } else {
      fn(P{}, float{});
    }
  });
}

void adamw_cpu(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
               at::TensorList exp_avg_sqs, at::TensorList steps, double lr, double beta1,
               double beta2, double weight_decay, double eps) {
  const std::vector<double> step_counts =
      detail::check_adamw_args(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps);
  const size_t count = params.size();
  std::vector<Operand> p(count), g(count), m(count), v(count);
  std::vector<AdamWScalars> scalars(count);
  std::vector<int64_t> numels(count);
  for (size_t i = 0; i < count; ++i) {
    p[i] = detail::param_operand(params[i]);
    g[i] = detail::operand_like(grads[i], p[i].work);
    m[i] = detail::operand_like(exp_avgs[i], p[i].work);
    v[i] = detail::operand_like(exp_avg_sqs[i], p[i].work);
    numels[i] = params[i].numel();
    const double t = step_counts[i];
    scalars[i] = {1 - lr * weight_decay, beta1, 1 - beta1, beta2, 1 - beta2,
                  std::sqrt(1 - std::pow(beta2, t)), eps, -(lr / (1 - std::pow(beta1, t)))};
  }
  for_each_chunk(chunks_of(numels), [&](const Chunk& c) {
    const size_t i = c.index;
    dispatch_param_state(p[i].work.scalar_type(), m[i].work.scalar_type(),
                         [&](auto param_tag, auto state_tag) {
      using P = decltype(param_tag);
      using S = decltype(state_tag);
      adamw_range<P, S>(p[i].work.data_ptr<P>() + c.begin, g[i].work.data_ptr<P>() + c.begin,
                        m[i].work.data_ptr<S>() + c.begin, v[i].work.data_ptr<S>() + c.begin,
                        c.end - c.begin, scalars[i]);
    });
  });
  for (size_t i = 0; i < count; ++i) {
    p[i].finish();
    m[i].finish();
    v[i].finish();
  }
  detail::bump_versions(params);
  detail::bump_versions(exp_avgs);
  detail::bump_versions(exp_avg_sqs);
}

void sgd_cpu(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
             double lr, double momentum, double dampening, double weight_decay, bool nesterov,
             bool first_step) {
  const bool with_momentum =
      detail::check_sgd_args(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov);
  const size_t count = params.size();
  std::vector<Operand> p(count), g(count), b(count);
  std::vector<int64_t> numels(count);
  for (size_t i = 0; i < count; ++i) {
    p[i] = detail::param_operand(params[i]);
    g[i] = detail::operand_like(grads[i], p[i].work);
    // The first step overwrites the buffer, so its old values need no copy.
    if (with_momentum) b[i] = detail::operand_like(momentum_buffers[i], p[i].work);
    numels[i] = params[i].numel();
  }
  const SgdScalars scalars{-lr, momentum, 1 - dampening, weight_decay, nesterov, first_step};
  for_each_chunk(chunks_of(numels), [&](const Chunk& c) {
    const size_t i = c.index;
    const at::ScalarType state = with_momentum ? b[i].work.scalar_type() : p[i].work.scalar_type();
    dispatch_param_state(p[i].work.scalar_type(), state, [&](auto param_tag, auto state_tag) {
      using P = decltype(param_tag);
      using S = decltype(state_tag);
      P* param = p[i].work.data_ptr<P>() + c.begin;
      const P* grad = g[i].work.data_ptr<P>() + c.begin;
      if (with_momentum) {
        sgd_momentum_range<P, S>(param, grad, b[i].work.data_ptr<S>() + c.begin, c.end - c.begin, scalars);
      } else {
        sgd_plain_range<P>(param, grad, c.end - c.begin, scalars);
      }
    });
  });
  for (size_t i = 0; i < count; ++i) {
    p[i].finish();
    if (with_momentum) b[i].finish();
  }
  detail::bump_versions(params);
  if (with_momentum) detail::bump_versions(momentum_buffers);
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CPU, m) {
  m.impl("adamw_", &adamw_cpu);
  m.impl("sgd_", &sgd_cpu);
}

}  // namespace kinema::ops
