#pragma once
// S-ViLM cut-and-paste inside a batch (docs/objectives.md, "Cut-and-paste").
//
// The T frames of every video form Nt = T / clip_len clips. For each video i a
// background p_i != i is drawn (a uniformly random derangement of the batch),
// a foreground length d_i uniform in [ceil(Nt/2), Nt-1] and a start s_i uniform
// in [0, Nt-d_i]. Mixed video i is a copy of video p_i whose clips [s_i, s_i+d_i)
// are replaced by the same clips of video i: its foreground is video i (so
// caption i describes it mostly), its background p_i. m_i[j] = 1 on the
// foreground clips, beta_i = d_i / Nt, W^v[i,i] = beta_i, W^v[i,p_i] = 1 - beta_i,
// W^c = (W^v)^T.
#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <vector>

namespace kinema::data {

// The random draws alone (to apply the same mixing to several streams).
struct CutPastePlan {
  int64_t num_clips = 0;            // Nt
  std::vector<int64_t> background;  // p_i
  std::vector<int64_t> start;       // s_i, in clips
  std::vector<int64_t> length;      // d_i, in clips
};

struct CutPasteResult {
  at::Tensor mixed;       // [B,T,...] like the input
  at::Tensor clip_mask;   // [B,Nt] bool, true on video i's (foreground) clips
  at::Tensor beta;        // [B] float32, d_i / Nt
  at::Tensor background;  // [B] int64, p_i
  at::Tensor start;       // [B] int64, s_i
  at::Tensor length;      // [B] int64, d_i
  at::Tensor w_video;     // [B,B] float32, W^v (rows: mixed videos, sum to 1)
  at::Tensor w_text;      // [B,B] float32, W^c = (W^v)^T
};

// batch >= 2, num_clips >= 2.
CutPastePlan sample_cut_paste_plan(int64_t batch, int64_t num_clips, std::mt19937_64& rng);

// videos [B,T,...] (any dtype/device; T divisible by clip_len).
CutPasteResult apply_cut_paste(const at::Tensor& videos, int64_t clip_len, const CutPastePlan& plan);

CutPasteResult cut_and_paste(const at::Tensor& videos, int64_t clip_len, std::mt19937_64& rng);
CutPasteResult cut_and_paste(const at::Tensor& videos, int64_t clip_len, uint64_t seed);

}  // namespace kinema::data
