#pragma once
// The threaded data loader: a dataset (samples) and an item function (sample
// -> tensors and strings) run on C++ worker threads that never touch Lua; the
// consumer receives collated batches, in a deterministic order, through a
// bounded prefetch window.
//
// Determinism: batch b of epoch e holds the same samples, decoded with the same
// seeds, whatever the number of workers or where iteration resumed:
//   order  = permutation of the dataset seeded by (seed, epoch) (or identity),
//   shard  = order[rank::world_size] after padding (or, with drop_last,
//            truncating) to a multiple of world_size, as torch's
//            DistributedSampler does,
//   item i = item_fn(sample, mix_seed(seed, epoch, dataset index, attempt)).
// A sample whose item function throws (corrupt video, ...) is handled by
// on_item_error: Replace (training) counts it and takes the dataset's next
// index (mod N), then the next, up to max_replacements times; Raise
// (evaluation) stops with the sample's id and error; Drop (evaluation on an
// explicit request) leaves it out of its batch and lists it in Batch::dropped.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "core/data/sample.h"
#include "core/data/video_reader.h"

namespace kinema::data {

// What one sample contributes to a batch.
struct Item {
  std::map<std::string, at::Tensor> tensors;  // same shape in every item: stacked on dim 0
  std::map<std::string, at::Tensor> ragged;   // shapes may differ: kept as a list
  std::map<std::string, std::string> strings; // collected into a list of strings
};

// The extension point: decoding, transforms, tokenisation, masking... Runs on
// worker threads, so it must not touch Lua and must be thread-safe. The seed
// is the only source of randomness it should use.
using ItemFn = std::function<Item(const Sample& sample, uint64_t seed)>;

struct Batch {
  std::map<std::string, at::Tensor> tensors;                    // [B, ...]
  std::map<std::string, std::vector<at::Tensor>> lists;         // B tensors each
  std::map<std::string, std::vector<std::string>> strings;      // B strings each
  std::vector<int64_t> indices;  // dataset index of each item (after replacement)
  std::vector<std::string> dropped_ids, dropped_errors;  // ItemErrors::Drop: the samples left out
  int64_t epoch = 0;
  int64_t index = 0;  // batch position within the epoch (resume from index + 1)
};

// Runs on the worker after collation (e.g. normalisation, batched masking).
using BatchFn = std::function<void(Batch& batch)>;

enum class ItemErrors { Replace, Raise, Drop };

struct LoaderOptions {
  int64_t batch_size = 8;
  int64_t num_workers = 2;
  int64_t prefetch = 4;  // batches in flight or ready ahead of the consumer
  // Workers run on into the next epoch (its first `prefetch` batches) while the
  // consumer finishes this one, so a training loop that calls
  // reset(epoch + 1, 0) at an epoch's end finds them ready instead of waiting
  // for a cold start. Off for loaders read once (evaluation), where that work
  // would be thrown away.
  bool prefetch_next_epoch = false;
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
  bool drop_last = false;  // drop a final partial batch (and truncate, not pad, shards)
  int64_t max_replacements = 16;
  ItemErrors on_item_error = ItemErrors::Replace;
  BatchFn batch_fn;  // optional
};

struct LoaderProgress {
  int64_t epoch = 0;
  int64_t batches_done = 0;      // batch position: next batch to be returned
  int64_t samples_done = 0;      // samples returned this epoch
  int64_t batches_per_epoch = 0;
  int64_t skipped = 0;           // unreadable samples replaced, since construction
};

class Loader {
 public:
  Loader(std::vector<Sample> dataset, ItemFn item_fn, LoaderOptions options = {});
  ~Loader();  // stops and joins the workers, also mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Positions the loader at batch `start_batch` of `epoch` (a checkpoint's data
  // position); work already prefetched for the old position is dropped.
  void reset(int64_t epoch, int64_t start_batch = 0);
  // The next batch of the current epoch, or nullopt at its end. Rethrows an
  // item's error when a sample and all its replacements failed.
  std::optional<Batch> next_batch();

  int64_t num_batches() const;  // per epoch, for this rank
  int64_t shard_size() const;   // samples per epoch for this rank (before drop_last)
  int64_t dataset_size() const;
  LoaderProgress progress() const;
  // Messages of the most recent replaced samples (at most 64), oldest first.
  std::vector<std::string> skipped_errors() const;
  // This rank's dataset indices for `epoch`, in iteration order.
  std::vector<int64_t> shard_order(int64_t epoch) const;
  const LoaderOptions& options() const { return opt_; }

 private:
  struct Pending;
  void start_workers();
  void stop_workers();
  void worker_loop();
  // The item and the dataset index it came from (after replacements); under
  // ItemErrors::Drop a failed sample gives index -1 and its error in `dropped`.
  std::pair<Item, int64_t> make_item(int64_t dataset_index, int64_t epoch, std::string& dropped);
  int64_t batch_length(int64_t b) const;
  // Batch b of epoch e as one position across epochs (pending_'s key).
  int64_t batch_key(int64_t epoch, int64_t b) const { return epoch * num_batches() + b; }

  std::vector<Sample> dataset_;
  ItemFn item_fn_;
  LoaderOptions opt_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
  bool running_ = false;
  int64_t epoch_ = 0;            // epoch the consumer is in
  int64_t next_yield_ = 0;       // batch of epoch_ the consumer gets next
  int64_t task_epoch_ = 0;       // epoch of the item handed to workers next
  int64_t next_task_ = 0;        // its flat item position in that epoch
  std::shared_ptr<const std::vector<int64_t>> task_order_;  // shard of task_epoch_
  int64_t samples_done_ = 0;
  int64_t skipped_ = 0;
  std::map<int64_t, std::shared_ptr<Pending>> pending_;
  std::deque<std::string> errors_;
};

// The standard item for video-text data: the sample's video decoded to uint8
// [T, 3, H, W] ("video"), one caption ("caption": a random one per epoch when
// random_caption, else the first) and the id ("id").
struct VideoItemOptions {
  SamplingOptions sampling;
  DecodeOptions decode;
  bool random_caption = true;
};
ItemFn make_video_item_fn(const VideoItemOptions& options);

}  // namespace kinema::data
