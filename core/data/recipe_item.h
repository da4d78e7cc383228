#pragma once
// The item and batch functions behind data.Loader's recipe options: the
// standard video item plus optional text, detections, regions and OA-Trans
// anchor parts, and S-ViLM's cut-and-paste as a batch function. Field names
// are the recipe contract (/tmp/kinema_pipeline.md); per item (the loader
// stacks them to [B, ...]):
//   video [T,3,H,W] uint8, caption, id           (video unless decode_video = false)
//   text fields                                   (text_item.h)
//   boxes [T,K,4] float32 in [0,1] of the output crop, classes [T,K] int64
//     (-1 = no box), scores [T,K] float32         (detections)
//   features [N,D] float32, locations [N,7] float32, frame_index [N] int64,
//     region_mask [N] bool, N = frames * k        (regions)
//   anchor [3,H,W] uint8 (masked patches 0), patch_mask [1,(H/p)*(W/p)] bool, tags (string),
//     tag_ids [L] int64 / tag_mask [L] bool with text   (anchor)
// A sample without detections gives all-invalid rows (and an unmasked anchor
// with empty tags); one without region files gives all-invalid regions when
// regions.dim is set, else it fails and the loader replaces it.
#include <cstdint>
#include <memory>
#include <optional>

#include "core/data/augment_oatrans.h"
#include "core/data/loader.h"
#include "core/data/text_item.h"

namespace kinema::data {

struct DetectionItemOptions {
  int64_t k = 10;
  bool unique_labels = false;
};

struct RegionItemOptions {
  int64_t k = 10;
  int64_t frames = 8;
  int64_t dim = 0;  // feature size for samples without region files (0: such samples fail)
};

struct RecipeItemOptions {
  VideoItemOptions video;
  bool decode_video = true;
  std::shared_ptr<const TextItemMaker> text;  // null: no text fields
  std::optional<DetectionItemOptions> detections;
  std::optional<RegionItemOptions> regions;
  std::optional<ObjectMaskOptions> anchor;
};

// Throws naming the option on inconsistent choices (e.g. anchor without video).
ItemFn make_recipe_item_fn(RecipeItemOptions options);

// The anchor frame of a clip whose sampled frame indices are `frame_indices`:
// the detection frame nearest to the clip's centre, shifted by shift_anchor;
// returns (detection frame position or -1 when there are none, video frame
// index to decode).
std::pair<int64_t, int64_t> choose_anchor(const std::vector<FrameBoxes>& frames,
                                          const std::vector<int64_t>& frame_indices, double fps,
                                          double shift_prob, std::mt19937_64& rng);

// Sets the masked patches of the batch's "anchor" [B,C,H,W] to 0 (where
// "patch_mask" [B,1,(H/p)*(W/p)] is false). Run after normalisation, so a
// masked patch is 0 in the model's input space whatever the normalisation (the
// item fills them with 0 on uint8 frames, which normalisation would move).
void zero_masked_anchor_patches(Batch& batch, int64_t patch_size);

// S-ViLM cut-and-paste over the batch's "video" [B,T,...] with clips of
// clip_len frames, seeded by (seed, batch epoch, batch index): replaces video
// by the mixed videos and adds clip_mask [B,Nt] bool, Wv [B,B] and Wc [B,B]
// float32 (augment_cutpaste.h). A batch of one video stays unmixed (clip_mask
// all true, Wv = Wc = [[1]]).
BatchFn make_cut_paste_batch_fn(int64_t clip_len, uint64_t seed);

}  // namespace kinema::data
