// See pooled_cosine.h. Notation inside a chunk (ba videos x bb captions):
// every pair tensor has layout [ba, Na, bb, Nb]; D = raw dot products,
// C = cosines, P = attention of a-tokens over b-tokens (softmax over dim 3),
// Q = attention of b-tokens over a-tokens (softmax over dim 1). For one
// attending token with kept weights w over keys K (rows k_l) the attended
// vector is w K, so  token . (w K) = sum_l w_l D_l  and  |w K|^2 = w (K K^T) w.
#include "ops/pooled_cosine.h"

#include <cmath>
#include <limits>

namespace kinema::ops::detail {
namespace {

constexpr double kEps = 1e-8;  // cosine denominators are clamped to this (as torch's)

// Quantities shared by all chunks.
struct Sides {
  at::Tensor a, mask_a, b, mask_b;
  at::Tensor norm_a, norm_b;      // |token|, [Ba,Na] / [Bb,Nb]
  at::Tensor inv_a, inv_b;        // 1 / max(|token|, eps)
  at::Tensor count_a, count_b;    // valid tokens per item, [Ba] / [Bb]
  at::Tensor gram_a, gram_b;      // a a^T [Ba,Na,Na], b b^T [Bb,Nb,Nb] (when needed)
};

Sides prepare(const at::Tensor& a, const at::Tensor& mask_a, const at::Tensor& b,
              const at::Tensor& mask_b, const PooledCosineOptions& o) {
  Sides s;
  s.a = a.contiguous();
  s.b = b.contiguous();
  s.mask_a = mask_a.contiguous();
  s.mask_b = mask_b.contiguous();
  s.norm_a = s.a.norm(2, {2});
  s.norm_b = s.b.norm(2, {2});
  s.inv_a = s.norm_a.clamp_min(kEps).reciprocal();
  s.inv_b = s.norm_b.clamp_min(kEps).reciprocal();
  s.count_a = s.mask_a.sum(1);
  s.count_b = s.mask_b.sum(1);
  if (o.b_to_a) s.gram_a = at::bmm(s.a, s.a.transpose(1, 2));
  if (o.a_to_b) s.gram_b = at::bmm(s.b, s.b.transpose(1, 2));
  return s;
}

// Softmax of z along dim over the entries where valid (broadcastable, 0/1);
// all-invalid slices give all-zero weights rather than NaN.
at::Tensor masked_softmax(const at::Tensor& z, int64_t dim, const at::Tensor& valid,
                          double bound) {
  at::Tensor logits = z.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor shift = logits.amax({dim}, /*keepdim=*/true).clamp_min(-bound);
  at::Tensor w = logits.sub_(shift).exp_();
  at::Tensor total = w.sum({dim}, /*keepdim=*/true)
                         .clamp_min(std::numeric_limits<float>::min());
  return w.div_(total);
}

// One direction's forward inside a chunk. `w` is the attention [ba,Na,bb,Nb],
// `keys_dim` the dim it is normalised over; returns the per-token cosines and
// keeps what the backward needs.
struct Direction {
  at::Tensor soft;      // attention (softmax over the valid keys)
  at::Tensor w;         // attention after the threshold
  at::Tensor keep;      // threshold indicator (undefined without threshold)
  at::Tensor w_gram;    // w times the key Gram matrix, layout of w
  at::Tensor norm_q;    // |attending token| broadcast to the cosine's shape
  at::Tensor s, m, cos; // |attended vector|, |token|*|attended|, cosine
};

// (w K K^T) for a -> b: per caption j, w[:, :, j, :] @ gram_b[j].
at::Tensor times_gram_b(const at::Tensor& w, const at::Tensor& gram_b) {
  const int64_t ba = w.size(0), na = w.size(1), bb = w.size(2), nb = w.size(3);
  at::Tensor per_caption = w.permute({2, 0, 1, 3}).reshape({bb, ba * na, nb});
  return at::bmm(per_caption, gram_b).view({bb, ba, na, nb}).permute({1, 2, 0, 3});
}

// (K K^T w) for b -> a: per video i, gram_a[i] @ w[i] viewed [Na, bb*Nb].
at::Tensor times_gram_a(const at::Tensor& w, const at::Tensor& gram_a) {
  const int64_t ba = w.size(0), na = w.size(1);
  return at::bmm(gram_a, w.reshape({ba, na, -1})).view(w.sizes());
}

struct Chunk {
  int64_t i0, i1, j0, j1;
  at::Tensor A, B, D, C, inv_outer;
  Direction ab, ba;
};

Chunk forward_chunk(const Sides& s, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                    const PooledCosineOptions& o) {
  Chunk c{i0, i1, j0, j1, {}, {}, {}, {}, {}, {}, {}};
  c.A = s.a.slice(0, i0, i1);
  c.B = s.b.slice(0, j0, j1);
  const int64_t ba = i1 - i0, na = s.a.size(1), bb = j1 - j0, nb = s.b.size(1), d = s.a.size(2);
  c.D = at::mm(c.A.reshape({ba * na, d}), c.B.reshape({bb * nb, d}).t()).view({ba, na, bb, nb});
  c.inv_outer = s.inv_a.slice(0, i0, i1).view({ba, na, 1, 1}) *
                s.inv_b.slice(0, j0, j1).view({1, 1, bb, nb});
  c.C = c.D * c.inv_outer;
  const at::Tensor z = c.C * o.scale;
  const double bound = std::abs(o.scale) * 1.01 + 1.0;  // below any valid logit

  if (o.a_to_b) {
    Direction& r = c.ab;
    const at::Tensor valid = s.mask_b.slice(0, j0, j1).view({1, 1, bb, nb});
    r.soft = masked_softmax(z, 3, valid, bound);
    r.w = r.soft;
    if (o.threshold) {
      r.keep = r.soft.gt(r.soft.sum(3, /*keepdim=*/true) /
                         s.count_b.slice(0, j0, j1).clamp_min(1.0).view({1, 1, bb, 1}));
      r.w = r.soft * r.keep;
    }
    r.w_gram = times_gram_b(r.w, s.gram_b.slice(0, j0, j1));
    const at::Tensor dot = (r.w * c.D).sum(3);                // [ba,Na,bb]
    r.s = (r.w_gram * r.w).sum(3).clamp_min(0.0).sqrt_();
    r.norm_q = s.norm_a.slice(0, i0, i1).unsqueeze(2);
    r.m = r.norm_q * r.s;
    r.cos = dot / r.m.clamp_min(kEps);
  }
  if (o.b_to_a) {
    Direction& r = c.ba;
    const at::Tensor valid = s.mask_a.slice(0, i0, i1).view({ba, na, 1, 1});
    r.soft = masked_softmax(z, 1, valid, bound);
    r.w = r.soft;
    if (o.threshold) {
      r.keep = r.soft.gt(r.soft.sum(1, /*keepdim=*/true) /
                         s.count_a.slice(0, i0, i1).clamp_min(1.0).view({ba, 1, 1, 1}));
      r.w = r.soft * r.keep;
    }
    r.w_gram = times_gram_a(r.w, s.gram_a.slice(0, i0, i1));
    const at::Tensor dot = (r.w * c.D).sum(1);                // [ba,bb,Nb]
    r.s = (r.w_gram * r.w).sum(1).clamp_min(0.0).sqrt_();
    r.norm_q = s.norm_b.slice(0, j0, j1).unsqueeze(0);
    r.m = r.norm_q * r.s;
    r.cos = dot / r.m.clamp_min(kEps);
  }
  return c;
}

// Mean over valid attending tokens: weights [.., tokens] = mask / count.
at::Tensor mean_weights(const at::Tensor& mask, const at::Tensor& count) {
  return mask / count.clamp_min(1.0).unsqueeze(1);
}

template <typename Fn>
void for_each_chunk(const Sides& s, const PooledCosineOptions& o, Fn&& fn) {
  const int64_t big_a = s.a.size(0), na = std::max<int64_t>(s.a.size(1), 1);
  const int64_t big_b = s.b.size(0), nb = std::max<int64_t>(s.b.size(1), 1);
  const int64_t inputs = (big_a * s.a.size(1) + big_b * s.b.size(1)) * s.a.size(2);
  const int64_t budget = o.chunk_elements > 0
                             ? o.chunk_elements
                             : std::clamp<int64_t>(inputs / 64, int64_t(1) << 12, int64_t(1) << 21);
  // Prefer whole rows of captions (bigger GEMMs), then split captions too.
  const int64_t step_b = std::clamp<int64_t>(budget / (na * nb), 1, std::max<int64_t>(big_b, 1));
  const int64_t step_a = std::clamp<int64_t>(budget / (na * nb * step_b), 1,
                                             std::max<int64_t>(big_a, 1));
  for (int64_t i0 = 0; i0 < big_a; i0 += step_a)
    for (int64_t j0 = 0; j0 < big_b; j0 += step_b)
      fn(i0, std::min(i0 + step_a, big_a), j0, std::min(j0 + step_b, big_b));
}

// Backward of one direction's per-token cosine -> gradients on the attention
// weights before the threshold; also adds to grad_norm_q and grad_gram.
struct DirectionGrads {
  at::Tensor grad_w;     // d loss / d w (kept weights), layout of w
  at::Tensor grad_dot;   // d loss / d dot, cosine's shape
  at::Tensor grad_norm;  // d loss / d |attending token| (cosine's shape)
  at::Tensor grad_m2;    // d loss / d |attended|^2 (cosine's shape)
};

DirectionGrads cosine_backward(const Direction& r, const at::Tensor& grad_cos) {
  DirectionGrads g;
  const at::Tensor m_clamped = r.m.clamp_min(kEps);
  g.grad_dot = grad_cos / m_clamped;
  // d cos / d m = -cos / m where the clamp is inactive.
  const at::Tensor grad_m = at::where(r.m.gt(kEps), -grad_cos * r.cos / m_clamped,
                                      at::zeros_like(grad_cos));
  g.grad_norm = grad_m * r.s;
  g.grad_m2 = at::where(r.s.gt(0), grad_m * r.norm_q / (2 * r.s.clamp_min(kEps * kEps)),
                        at::zeros_like(grad_cos));
  return g;
}

// Softmax backward along dim, for gradient grad_w on weights w.
at::Tensor softmax_backward(const at::Tensor& w, const at::Tensor& grad_w, int64_t dim) {
  return w * (grad_w - (grad_w * w).sum({dim}, /*keepdim=*/true));
}

}  // namespace

std::pair<at::Tensor, at::Tensor> pooled_cosine_forward(const at::Tensor& a,
                                                        const at::Tensor& mask_a,
                                                        const at::Tensor& b,
                                                        const at::Tensor& mask_b,
                                                        const PooledCosineOptions& o) {
  const Sides s = prepare(a, mask_a, b, mask_b, o);
  const int64_t big_a = a.size(0), big_b = b.size(0);
  at::Tensor a_to_b = o.a_to_b ? at::zeros({big_a, big_b}, a.options()) : at::Tensor();
  at::Tensor b_to_a = o.b_to_a ? at::zeros({big_a, big_b}, a.options()) : at::Tensor();
  if (a.size(1) == 0 || b.size(1) == 0) return {a_to_b, b_to_a};
  const at::Tensor weights_a = mean_weights(s.mask_a, s.count_a);
  const at::Tensor weights_b = mean_weights(s.mask_b, s.count_b);
  for_each_chunk(s, o, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const Chunk c = forward_chunk(s, i0, i1, j0, j1, o);
    if (o.a_to_b)  // mean over valid a-tokens: [ba,Na,bb] weighted by [ba,Na]
      a_to_b.slice(0, i0, i1).slice(1, j0, j1).copy_(
          (c.ab.cos * weights_a.slice(0, i0, i1).unsqueeze(2)).sum(1));
    if (o.b_to_a)  // mean over valid b-tokens: [ba,bb,Nb] weighted by [bb,Nb]
      b_to_a.slice(0, i0, i1).slice(1, j0, j1).copy_(
          (c.ba.cos * weights_b.slice(0, j0, j1).unsqueeze(0)).sum(2));
  });
  return {a_to_b, b_to_a};
}

std::pair<at::Tensor, at::Tensor> pooled_cosine_backward(
    const at::Tensor& grad_a_to_b, const at::Tensor& grad_b_to_a, const at::Tensor& a,
    const at::Tensor& mask_a, const at::Tensor& b, const at::Tensor& mask_b,
    const PooledCosineOptions& options) {
  PooledCosineOptions o = options;
  o.a_to_b = o.a_to_b && grad_a_to_b.defined();
  o.b_to_a = o.b_to_a && grad_b_to_a.defined();
  const Sides s = prepare(a, mask_a, b, mask_b, o);
  at::Tensor grad_a = at::zeros_like(s.a);
  at::Tensor grad_b = at::zeros_like(s.b);
  if ((!o.a_to_b && !o.b_to_a) || a.size(1) == 0 || b.size(1) == 0) return {grad_a, grad_b};

  const int64_t big_a = a.size(0), na = a.size(1), big_b = b.size(0), nb = b.size(1);
  const int64_t d = a.size(2);
  // Gradients on the token norms (through the cosine denominators and the
  // normalisation inside C), and on the Gram matrices.
  at::Tensor grad_norm_a = at::zeros({big_a, na}, a.options());
  at::Tensor grad_norm_b = at::zeros({big_b, nb}, a.options());
  at::Tensor c_dot_a = at::zeros({big_a, na}, a.options());  // sum of gC * C per token
  at::Tensor c_dot_b = at::zeros({big_b, nb}, a.options());
  at::Tensor grad_gram_a = o.b_to_a ? at::zeros({big_a, na, na}, a.options()) : at::Tensor();
  at::Tensor grad_gram_b = o.a_to_b ? at::zeros({big_b, nb, nb}, a.options()) : at::Tensor();
  const at::Tensor weights_a = mean_weights(s.mask_a, s.count_a);
  const at::Tensor weights_b = mean_weights(s.mask_b, s.count_b);

  for_each_chunk(s, o, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const Chunk c = forward_chunk(s, i0, i1, j0, j1, o);
    const int64_t ba = i1 - i0, bb = j1 - j0;
    at::Tensor grad_D, grad_C;  // start from the first contribution
    auto accumulate = [](at::Tensor& total, const at::Tensor& part) {
      total = total.defined() ? total.add_(part) : part;
    };
    if (o.a_to_b) {
      const Direction& r = c.ab;
      const at::Tensor grad_cos = grad_a_to_b.slice(0, i0, i1).slice(1, j0, j1).unsqueeze(1) *
                                  weights_a.slice(0, i0, i1).unsqueeze(2);  // [ba,Na,bb]
      const DirectionGrads g = cosine_backward(r, grad_cos);
      grad_norm_a.slice(0, i0, i1).add_(g.grad_norm.sum(2));
      accumulate(grad_D, g.grad_dot.unsqueeze(3) * r.w);
      // |attended|^2 = w G w^T: d/dw = 2 (w G), d/dG = w^T diag(g) w.
      at::Tensor grad_w = g.grad_dot.unsqueeze(3) * c.D + 2 * g.grad_m2.unsqueeze(3) * r.w_gram;
      const at::Tensor scaled = (r.w * g.grad_m2.unsqueeze(3)).permute({2, 0, 1, 3})
                                    .reshape({bb, ba * na, nb});
      const at::Tensor plain = r.w.permute({2, 0, 1, 3}).reshape({bb, ba * na, nb});
      grad_gram_b.slice(0, j0, j1).baddbmm_(scaled.transpose(1, 2), plain);
      if (r.keep.defined()) grad_w = grad_w * r.keep;
      accumulate(grad_C, softmax_backward(r.soft, grad_w, 3).mul_(o.scale));
    }
    if (o.b_to_a) {
      const Direction& r = c.ba;
      const at::Tensor grad_cos = grad_b_to_a.slice(0, i0, i1).slice(1, j0, j1).unsqueeze(2) *
                                  weights_b.slice(0, j0, j1).unsqueeze(0);  // [ba,bb,Nb]
      const DirectionGrads g = cosine_backward(r, grad_cos);
      grad_norm_b.slice(0, j0, j1).add_(g.grad_norm.sum(0));
      accumulate(grad_D, g.grad_dot.unsqueeze(1) * r.w);
      at::Tensor grad_w = g.grad_dot.unsqueeze(1) * c.D + 2 * g.grad_m2.unsqueeze(1) * r.w_gram;
      const at::Tensor scaled = (r.w * g.grad_m2.unsqueeze(1)).reshape({ba, na, bb * nb});
      grad_gram_a.slice(0, i0, i1).baddbmm_(scaled, r.w.reshape({ba, na, bb * nb}).transpose(1, 2));
      if (r.keep.defined()) grad_w = grad_w * r.keep;
      accumulate(grad_C, softmax_backward(r.soft, grad_w, 1).mul_(o.scale));
    }
    // C = D * inv_a * inv_b: fold the cosine path into one matrix E with the
    // raw-dot path, so each side needs one GEMM.
    c_dot_a.slice(0, i0, i1).add_((grad_C * c.C).sum(at::IntArrayRef{2, 3}));
    c_dot_b.slice(0, j0, j1).add_((grad_C * c.C).sum(at::IntArrayRef{0, 1}));
    const at::Tensor E = grad_D.add_(grad_C.mul_(c.inv_outer)).reshape({ba * na, bb * nb});
    // In place (addmm_/baddbmm_/addcmul_ below): no temporaries of the inputs' size.
    grad_a.slice(0, i0, i1).view({ba * na, d}).addmm_(E, c.B.reshape({bb * nb, d}));
    grad_b.slice(0, j0, j1).view({bb * nb, d}).addmm_(E.t(), c.A.reshape({ba * na, d}));
  });

  // Norm terms: d|x|/dx = x/|x|; normalisation x/max(|x|,eps) adds
  // -x (x^ . g^) / |x|^2 where |x| > eps.
  auto finish = [](at::Tensor& grad, const at::Tensor& x, const at::Tensor& norm,
                   const at::Tensor& grad_norm, const at::Tensor& c_dot, const at::Tensor& grad_gram) {
    const at::Tensor safe = norm.clamp_min(kEps * kEps);
    const at::Tensor coef = at::where(norm.gt(0), grad_norm / safe, at::zeros_like(norm)) -
                            at::where(norm.gt(kEps), c_dot / (safe * safe), at::zeros_like(norm));
    grad.addcmul_(x, coef.unsqueeze(2));
    if (grad_gram.defined()) grad.baddbmm_(grad_gram, x, 1.0, 2.0);  // G = x x^T, sym. grad
  };
  finish(grad_a, s.a, s.norm_a, grad_norm_a, c_dot_a, grad_gram_a);
  finish(grad_b, s.b, s.norm_b, grad_norm_b, c_dot_b, grad_gram_b);
  return {grad_a, grad_b};
}

}  // namespace kinema::ops::detail
