// S-ViLM cut-and-paste: sampling the plan and applying it to a batch.
#include "core/data/augment_cutpaste.h"

#include "core/data/augment_random.h"

#include <numeric>

namespace kinema::data {

CutPastePlan sample_cut_paste_plan(int64_t batch, int64_t num_clips, std::mt19937_64& rng) {
  TORCH_CHECK(batch >= 2, "kinema::data::cut_and_paste: the batch needs at least 2 videos (each "
              "video's background comes from another one), got ", batch);
  TORCH_CHECK(num_clips >= 2, "kinema::data::cut_and_paste: needs at least 2 clips per video so "
              "foreground and background are both non-empty, got ", num_clips);
  CutPastePlan plan;
  plan.num_clips = num_clips;
  // Uniform derangement: Fisher-Yates shuffles until no fixed point (about e tries).
  std::vector<int64_t> perm(batch);
  bool deranged = false;
  while (!deranged) {
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t i = batch - 1; i > 0; --i) std::swap(perm[i], perm[uniform_int(rng, 0, i)]);
    deranged = true;
    for (int64_t i = 0; i < batch; ++i) deranged = deranged && perm[i] != i;
  }
  plan.background = perm;
  const int64_t min_len = (num_clips + 1) / 2;  // ceil(Nt/2)
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t d = uniform_int(rng, min_len, num_clips - 1);
    plan.length.push_back(d);
    plan.start.push_back(uniform_int(rng, 0, num_clips - d));
  }
  return plan;
}

CutPasteResult apply_cut_paste(const at::Tensor& videos, int64_t clip_len, const CutPastePlan& plan) {
  TORCH_CHECK(videos.dim() >= 2, "kinema::data::cut_and_paste: videos must be [B,T,...], got ",
              videos.dim(), " dims");
  TORCH_CHECK(clip_len > 0, "kinema::data::cut_and_paste: clip_len must be positive, got ", clip_len);
  const int64_t batch = videos.size(0), frames = videos.size(1);
  TORCH_CHECK(frames % clip_len == 0, "kinema::data::cut_and_paste: T = ", frames,
              " frames is not a multiple of clip_len = ", clip_len);
  const int64_t num_clips = frames / clip_len;
  TORCH_CHECK(plan.num_clips == num_clips && static_cast<int64_t>(plan.background.size()) == batch &&
                  static_cast<int64_t>(plan.start.size()) == batch &&
                  static_cast<int64_t>(plan.length.size()) == batch,
              "kinema::data::cut_and_paste: the plan is for ", plan.background.size(), " videos of ",
              plan.num_clips, " clips, the batch has ", batch, " videos of ", num_clips, " clips");

  CutPasteResult out;
  out.background = at::tensor(plan.background, at::kLong);
  out.start = at::tensor(plan.start, at::kLong);
  out.length = at::tensor(plan.length, at::kLong);
  out.clip_mask = at::zeros({batch, num_clips}, at::kBool);
  out.beta = at::zeros({batch}, at::kFloat);
  out.w_video = at::zeros({batch, batch}, at::kFloat);
  out.mixed = videos.index_select(0, out.background.to(videos.device()));
  auto mask = out.clip_mask.accessor<bool, 2>();
  auto beta = out.beta.accessor<float, 1>();
  auto w = out.w_video.accessor<float, 2>();
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t p = plan.background[i], s = plan.start[i], d = plan.length[i];
    TORCH_CHECK(p >= 0 && p < batch && p != i && d >= 1 && d < num_clips && s >= 0 && s + d <= num_clips,
                "kinema::data::cut_and_paste: invalid plan entry ", i, " (background ", p, ", start ",
                s, ", length ", d, ")");
    out.mixed[i].narrow(0, s * clip_len, d * clip_len).copy_(videos[i].narrow(0, s * clip_len, d * clip_len));
    for (int64_t j = s; j < s + d; ++j) mask[i][j] = true;
    beta[i] = static_cast<float>(d) / static_cast<float>(num_clips);
    w[i][i] = beta[i];
    w[i][p] = 1.0f - beta[i];
  }
  out.w_text = out.w_video.t().contiguous();
  return out;
}

CutPasteResult cut_and_paste(const at::Tensor& videos, int64_t clip_len, std::mt19937_64& rng) {
  TORCH_CHECK(videos.dim() >= 2 && clip_len > 0 && videos.size(1) % clip_len == 0,
              "kinema::data::cut_and_paste: videos must be [B,T,...] with T a multiple of clip_len (",
              clip_len, "), got ", videos.sizes());
  return apply_cut_paste(videos, clip_len,
                         sample_cut_paste_plan(videos.size(0), videos.size(1) / clip_len, rng));
}

CutPasteResult cut_and_paste(const at::Tensor& videos, int64_t clip_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return cut_and_paste(videos, clip_len, rng);
}

}  // namespace kinema::data
