#pragma once
// Heads: Projection (shared-space projection), Temperature (learnable tau),
// VTMHead (2-way matching), MLMHead (vocabulary logits, decoder tied to the
// word embeddings passed at call time).
#include <torch/torch.h>

#include "models/layers.h"

namespace kinema::models {

class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in_dim, int64_t out_dim, bool bias = true, bool normalize = false);
  at::Tensor forward(const at::Tensor& x);

 private:
  bool normalize_;
  torch::nn::Linear proj_{nullptr};
};
TORCH_MODULE(Projection);

class TemperatureImpl : public torch::nn::Module {
 public:
  TemperatureImpl(double init = 0.07, double min = 0.01, double max = 1.0);
  at::Tensor forward();  // tau, a 0-d tensor

 private:
  double min_, max_;
  at::Tensor logit_scale_;
};
TORCH_MODULE(Temperature);

class VTMHeadImpl : public torch::nn::Module {
 public:
  explicit VTMHeadImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(VTMHead);

class MLMHeadImpl : public torch::nn::Module {
 public:
  MLMHeadImpl(int64_t dim, int64_t vocab_size, std::string act = "gelu", double eps = 1e-5);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& word_embeddings);

 private:
  std::string act_;
  torch::nn::Linear dense_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  at::Tensor bias_;
};
TORCH_MODULE(MLMHead);

}  // namespace kinema::models
