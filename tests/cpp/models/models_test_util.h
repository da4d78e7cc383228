#pragma once
// Helpers shared by the models/ doctest files.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <set>
#include <string>
#include <unordered_map>

#include "models/block.h"

namespace kinema::models::testing {

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.detach().to(at::kDouble) - b.detach().to(at::kDouble)).abs().max().item<double>();
}

inline Config config(std::initializer_list<std::pair<std::string, c10::IValue>> items) {
  std::unordered_map<std::string, c10::IValue> values;
  for (const auto& kv : items) values.emplace(kv.first, kv.second);
  return Config(std::move(values));
}

inline at::Tensor output(const c10::IValue& result, const std::string& key) {
  REQUIRE(result.isGenericDict());
  auto dict = result.toGenericDict();
  REQUIRE_MESSAGE(dict.contains(key), "missing output ", key);
  return dict.at(key).toTensor();
}

// Every parameter that requires grad got a defined, non-zero gradient (except
// names containing an entry of `zero_ok`, whose gradient may legitimately be
// zero or absent); frozen parameters got none.
inline void check_gradients(torch::nn::Module& m, const std::set<std::string>& zero_ok = {}) {
  for (const auto& p : m.named_parameters()) {
    if (!p.value().requires_grad()) {
      CHECK_MESSAGE(!p.value().grad().defined(), "frozen parameter got a gradient: ", p.key());
      continue;
    }
    bool allowed_zero = false;
    for (const auto& prefix : zero_ok)
      if (p.key().find(prefix) != std::string::npos) allowed_zero = true;
    if (allowed_zero) continue;
    REQUIRE_MESSAGE(p.value().grad().defined(), "no gradient for ", p.key());
    CHECK_MESSAGE(p.value().grad().abs().sum().item<double>() > 0, "zero gradient for ", p.key());
  }
}

// Copies parameters with equal names and shapes from `src` into `dst`.
inline void copy_parameters(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard no_grad;
  auto from = src.named_parameters();
  for (auto& p : dst.named_parameters()) {
    if (auto* s = from.find(p.key())) {
      if (s->sizes() == p.value().sizes()) p.value().copy_(*s);
    }
  }
}

// Checks that calling `fn` throws a c10::Error whose message contains `part`.
template <typename Fn>
void check_error(Fn&& fn, const std::string& part) {
  try {
    fn();
    FAIL("expected an error containing: " << part);
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    CHECK_MESSAGE(msg.find(part) != std::string::npos, "message '", msg, "' lacks '", part, "'");
  }
}

}  // namespace kinema::models::testing
