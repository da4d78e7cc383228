// The one TORCH_LIBRARY(kinema) block: every operator's schema lives here, so
// argument names and defaults (which Lua and Python callers use as keywords)
// are defined in one place. Kernels are registered per backend in
// ops/cpu/*.cpp, ops/cuda/*_cuda.cpp, the autocast ones in ops/autocast.cpp
// and, for the device-generic and autograd parts, next to each operator in
// ops/*.cpp.
#include <torch/library.h>

TORCH_LIBRARY(kinema, m) {
  // torchvision semantics; boxes [K,5] = (batch index, x1, y1, x2, y2).
  m.def(
      "roi_align(Tensor input, Tensor boxes, int pooled_height, int pooled_width, "
      "float spatial_scale=1.0, int sampling_ratio=-1, bool aligned=False) -> Tensor");
  m.def(
      "_roi_align_backward(Tensor grad_output, Tensor boxes, int batch_size, int height, "
      "int width, float spatial_scale, int sampling_ratio, bool aligned) -> Tensor");

  // Counts default to the full R and C of every sample.
  m.def(
      "linear_assignment(Tensor cost, Tensor? row_counts=None, Tensor? col_counts=None, "
      "bool maximize=False) -> (Tensor rows, Tensor cols)");

  // Masks are bool, true = valid; None means all valid.
  m.def(
      "rwa_similarity(Tensor regions, Tensor? region_mask, Tensor words, Tensor? word_mask, "
      "float lambda=1.0) -> (Tensor region_to_word, Tensor word_to_region)");
  m.def(
      "_rwa_similarity_backward(Tensor grad_region_to_word, Tensor grad_word_to_region, "
      "Tensor regions, Tensor? region_mask, Tensor words, Tensor? word_mask, float lambda) "
      "-> (Tensor grad_regions, Tensor grad_words)");

  m.def("grounding_similarity(Tensor groups, Tensor nouns, Tensor? noun_mask, float tau=1.0) -> Tensor");
  m.def(
      "_grounding_similarity_backward(Tensor grad, Tensor groups, Tensor nouns, Tensor? noun_mask, "
      "float tau) -> (Tensor grad_groups, Tensor grad_nouns)");

  m.def("gumbel_hard_assign(Tensor logits, float tau=1.0, int dim=-1) -> Tensor");

  // Fused optimizer steps over lists of parameters (torch.optim.AdamW / SGD
  // semantics), one pass over each tensor's memory. State is updated in place;
  // steps are AdamW's per-parameter step counters (one-element CPU tensors).
  // sgd_: first_step=True initialises the momentum buffers to the update
  // direction (PyTorch's buffer-is-None case); momentum_buffers is empty when
  // momentum is 0.
  m.def(
      "adamw_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] steps, float lr, float beta1, float beta2, "
      "float weight_decay, float eps) -> ()");
  m.def(
      "sgd_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, float lr, "
      "float momentum, float dampening, float weight_decay, bool nesterov, bool first_step) -> ()");
}
