// Helpers for the ops tests: a float64 finite-difference gradient check (the
// C++ frontend has no gradcheck) and tensor comparison.
#pragma once

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace kinema::ops::testing {

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE((a.sizes() == b.sizes()));
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Compares the gradient autograd computes for sum_k <w_k, f(x)_k> (random
// weights w_k) with central differences, for every element of every input.
// Inputs must be float64 leaves; returns the largest absolute mismatch.
inline double gradcheck(const std::function<std::vector<at::Tensor>(std::vector<at::Tensor>)>& f,
                        std::vector<at::Tensor> inputs, double step = 1e-6) {
  for (auto& x : inputs) x = x.detach().to(at::kDouble).requires_grad_(true);
  const auto outputs = f(inputs);
  std::vector<at::Tensor> weights;
  at::Tensor objective = at::zeros({}, at::kDouble);
  for (const auto& y : outputs) {
    weights.push_back(at::randn_like(y));
    objective = objective + (y * weights.back()).sum();
  }
  const auto analytic = torch::autograd::grad({objective}, inputs, {}, false, false, true);
  auto value = [&](std::vector<at::Tensor> xs) {
    torch::NoGradGuard no_grad;
    const auto ys = f(xs);
    double total = 0;
    for (size_t k = 0; k < ys.size(); ++k) total += (ys[k] * weights[k]).sum().item<double>();
    return total;
  };
  double worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor base = inputs[i].detach().clone();
    auto flat = base.view(-1);
    for (int64_t e = 0; e < flat.numel(); ++e) {
      std::vector<at::Tensor> xs(inputs.begin(), inputs.end());
      const double original = flat[e].item<double>();
      at::Tensor plus = base.clone(), minus = base.clone();
      plus.view(-1)[e] = original + step;
      minus.view(-1)[e] = original - step;
      xs[i] = plus;
      const double up = value(xs);
      xs[i] = minus;
      const double down = value(xs);
      const double numeric = (up - down) / (2 * step);
      const double exact = analytic[i].defined() ? analytic[i].reshape(-1)[e].item<double>() : 0.0;
      worst = std::max(worst, std::abs(numeric - exact) / (1.0 + std::abs(numeric)));
    }
  }
  return worst;
}

// True if `message` contains every one of `parts`.
inline bool message_has(const std::string& message, std::initializer_list<const char*> parts) {
  for (const char* p : parts)
    if (message.find(p) == std::string::npos) return false;
  return true;
}

// Runs fn, expecting a c10::Error whose message contains all of `parts`.
template <typename Fn>
void check_error(Fn&& fn, std::initializer_list<const char*> parts) {
  try {
    fn();
    FAIL("expected an error containing ", *parts.begin());
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    INFO(message);
    CHECK(message_has(message, parts));
  }
}

}  // namespace kinema::ops::testing
