#include "core/data/loader.h"

#include <algorithm>
#include <numeric>

#include <c10/util/Exception.h>

namespace kinema::data {

struct Loader::Pending {
  std::shared_ptr<const std::vector<int64_t>> order;  // shard of the batch's epoch
  std::vector<Item> items;
  std::vector<int64_t> indices;     // -1: dropped
  std::vector<std::string> errors;  // of the dropped slots
  int64_t remaining = 0;
  bool ready = false;
  Batch batch;
  std::exception_ptr error;
};

namespace {

Batch collate(std::vector<Item>& items) {
  Batch b;
  const Item& first = items.front();
  for (const auto& [key, t0] : first.tensors) {
    std::vector<at::Tensor> ts;
    ts.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = items[i].tensors.find(key);
      TORCH_CHECK(it != items[i].tensors.end(), "kinema::data::Loader: item ", i,
                  " lacks tensor '", key, "' that item 0 has");
      TORCH_CHECK(it->second.sizes() == t0.sizes() && it->second.dtype() == t0.dtype(),
                  "kinema::data::Loader: tensor '", key, "' of item ", i, " is ",
                  it->second.sizes(), " ", it->second.dtype(), " but item 0 has ", t0.sizes(),
                  " ", t0.dtype(), " (return it in Item::ragged to batch it as a list)");
      ts.push_back(it->second);
    }
    b.tensors[key] = at::stack(ts);
  }
  for (const auto& [key, t0] : first.ragged) {
    auto& list = b.lists[key];
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = items[i].ragged.find(key);
      TORCH_CHECK(it != items[i].ragged.end(), "kinema::data::Loader: item ", i,
                  " lacks ragged tensor '", key, "'");
      list.push_back(it->second);
    }
  }
  for (const auto& [key, s0] : first.strings) {
    auto& list = b.strings[key];
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = items[i].strings.find(key);
      TORCH_CHECK(it != items[i].strings.end(), "kinema::data::Loader: item ", i,
                  " lacks string '", key, "'");
      list.push_back(it->second);
    }
  }
  return b;
}

}  // namespace

Loader::Loader(std::vector<Sample> dataset, ItemFn item_fn, LoaderOptions options)
    : dataset_(std::move(dataset)), item_fn_(std::move(item_fn)), opt_(std::move(options)) {
  TORCH_CHECK(!dataset_.empty(), "kinema::data::Loader: the dataset is empty");
  TORCH_CHECK(item_fn_, "kinema::data::Loader: argument 'item_fn' is empty");
  TORCH_CHECK(opt_.batch_size >= 1, "kinema::data::Loader: option 'batch_size' must be >= 1, got ",
              opt_.batch_size);
  TORCH_CHECK(opt_.num_workers >= 1,
              "kinema::data::Loader: option 'num_workers' must be >= 1, got ", opt_.num_workers);
  TORCH_CHECK(opt_.prefetch >= 1, "kinema::data::Loader: option 'prefetch' must be >= 1, got ",
              opt_.prefetch);
  TORCH_CHECK(opt_.world_size >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world_size,
              "kinema::data::Loader: need 0 <= rank < world_size, got rank=", opt_.rank,
              " world_size=", opt_.world_size);
  TORCH_CHECK(opt_.max_replacements >= 0,
              "kinema::data::Loader: option 'max_replacements' must be >= 0");
  TORCH_CHECK(!opt_.drop_last || static_cast<int64_t>(dataset_.size()) >= opt_.world_size,
              "kinema::data::Loader: drop_last with ", dataset_.size(),
              " samples leaves nothing for world_size=", opt_.world_size);
  reset(0, 0);
}

Loader::~Loader() { stop_workers(); }

std::vector<int64_t> Loader::shard_order(int64_t epoch) const {
  const int64_t n = static_cast<int64_t>(dataset_.size()), w = opt_.world_size;
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (opt_.shuffle) {
    // Fisher-Yates with a portable generator: same order on every platform.
    SplitMix64 rng(mix_seed(opt_.seed, static_cast<uint64_t>(epoch), 0x5f0f));
    for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.uniform_int(0, i)]);
  }
  const int64_t total = opt_.drop_last ? n / w * w : (n + w - 1) / w * w;
  std::vector<int64_t> shard;
  for (int64_t i = opt_.rank; i < total; i += w) shard.push_back(perm[i % n]);
  return shard;
}

int64_t Loader::shard_size() const {
  const int64_t n = static_cast<int64_t>(dataset_.size()), w = opt_.world_size;
  return opt_.drop_last ? n / w : (n + w - 1) / w;
}

int64_t Loader::num_batches() const {
  const int64_t s = shard_size(), b = opt_.batch_size;
  return opt_.drop_last ? s / b : (s + b - 1) / b;
}

int64_t Loader::dataset_size() const { return static_cast<int64_t>(dataset_.size()); }

int64_t Loader::batch_length(int64_t b) const {
  return std::min(opt_.batch_size, shard_size() - b * opt_.batch_size);
}

void Loader::reset(int64_t epoch, int64_t start_batch) {
  TORCH_CHECK(epoch >= 0, "kinema::data::Loader::reset: argument 'epoch' must be >= 0");
  TORCH_CHECK(start_batch >= 0 && start_batch <= num_batches(),
              "kinema::data::Loader::reset: argument 'start_batch' must be in 0..", num_batches(),
              ", got ", start_batch);
  {
    // Where the consumer already is (e.g. reset(e + 1, 0) after epoch e was
    // read to its end): what the workers prefetched stays.
    std::lock_guard<std::mutex> lock(mu_);
    if (running_ && batch_key(epoch, start_batch) == batch_key(epoch_, next_yield_)) {
      epoch_ = epoch;
      next_yield_ = start_batch;
      samples_done_ = 0;
      work_cv_.notify_all();  // workers stopped at the old epoch's end go on
      return;
    }
  }
  stop_workers();
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = task_epoch_ = epoch;
  task_order_ = std::make_shared<const std::vector<int64_t>>(shard_order(epoch));
  next_task_ = start_batch * opt_.batch_size;
  next_yield_ = start_batch;
  samples_done_ = 0;
  pending_.clear();
}

void Loader::start_workers() {
  stop_ = false;
  running_ = true;
  for (int64_t i = 0; i < opt_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
  stop_ = false;
}

std::pair<Item, int64_t> Loader::make_item(int64_t dataset_index, int64_t epoch, std::string& dropped) {
  const int64_t n = static_cast<int64_t>(dataset_.size());
  if (opt_.on_item_error != ItemErrors::Replace) {
    // Evaluation: the sample itself or nothing (a substitute would appear twice in a gallery).
    try {
      return {item_fn_(dataset_[dataset_index], mix_seed(opt_.seed, static_cast<uint64_t>(epoch),
                                                          static_cast<uint64_t>(dataset_index), 0)),
              dataset_index};
    } catch (const std::exception& e) {
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      const std::string error = c10_error ? c10_error->what_without_backtrace() : e.what();
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++skipped_;
        errors_.push_back("sample " + std::to_string(dataset_index) + " ('" + dataset_[dataset_index].id +
                          "'): " + error);
        if (errors_.size() > 64) errors_.pop_front();
      }
      TORCH_CHECK(opt_.on_item_error == ItemErrors::Drop, "kinema::data::Loader: sample ", dataset_index, " ('",
                  dataset_[dataset_index].id, "', ", dataset_[dataset_index].video_path, ") cannot be read: ", error);
      dropped = error;
      return {Item{}, -1};
    }
  }
  std::string last_error;
  // Each sample is tried at most once: a small dataset wraps around to the
  // sample that already failed, and failures are deterministic.
  const int64_t attempts = std::min(opt_.max_replacements, n - 1) + 1;
  for (int64_t attempt = 0; attempt < attempts; ++attempt) {
    // Replacement is the next dataset index: deterministic, independent of timing.
    const int64_t idx = (dataset_index + attempt) % n;
    try {
      Item item = item_fn_(dataset_[idx], mix_seed(opt_.seed, static_cast<uint64_t>(epoch),
                                                   static_cast<uint64_t>(idx),
                                                   static_cast<uint64_t>(attempt)));
      return {std::move(item), idx};
    } catch (const std::exception& e) {
      last_error = e.what();
      std::lock_guard<std::mutex> lock(mu_);
      ++skipped_;
      errors_.push_back("sample " + std::to_string(idx) + " ('" + dataset_[idx].id +
                        "'): " + last_error);
      if (errors_.size() > 64) errors_.pop_front();
    }
  }
  TORCH_CHECK(false, "kinema::data::Loader: sample ", dataset_index, " and its ", attempts - 1,
              " replacements all failed; last error: ", last_error);
}

void Loader::worker_loop() {
  const int64_t bs = opt_.batch_size;
  // With drop_last the items of the final partial batch are never made.
  const int64_t end = std::min(num_batches() * bs, shard_size());
  std::unique_lock<std::mutex> lock(mu_);
  auto has_task = [&] {
    if (next_task_ >= end) {
      // The next epoch's items: ahead of the consumer only with
      // prefetch_next_epoch, else once it has moved on to that epoch.
      if (end == 0 || (!opt_.prefetch_next_epoch && task_epoch_ >= epoch_)) return false;
      ++task_epoch_;
      next_task_ = 0;
      task_order_ = std::make_shared<const std::vector<int64_t>>(shard_order(task_epoch_));
    }
    return batch_key(task_epoch_, next_task_ / bs) < batch_key(epoch_, next_yield_) + opt_.prefetch;
  };
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || has_task(); });
    if (stop_) return;
    const int64_t task = next_task_++;
    const int64_t b = task / bs, slot = task % bs;
    const int64_t epoch = task_epoch_;
    auto& p = pending_[batch_key(epoch, b)];
    if (!p) {
      p = std::make_shared<Pending>();
      p->order = task_order_;
      p->remaining = batch_length(b);
      p->items.resize(p->remaining);
      p->indices.resize(p->remaining);
      p->errors.resize(p->remaining);
    }
    std::shared_ptr<Pending> pend = p;
    const int64_t dataset_index = (*pend->order)[static_cast<size_t>(task)];
    lock.unlock();
    std::exception_ptr error;
    std::pair<Item, int64_t> item;
    std::string dropped;
    try {
      item = make_item(dataset_index, epoch, dropped);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !pend->error) pend->error = error;
    if (!error) {
      pend->indices[slot] = item.second;
      pend->items[slot] = std::move(item.first);
      pend->errors[slot] = std::move(dropped);
    }
    if (--pend->remaining > 0) continue;
    // Last item of the batch: collate outside the lock.
    lock.unlock();
    if (!pend->error) {
      try {
        std::vector<Item> kept;
        std::vector<int64_t> kept_indices;
        std::vector<std::string> dropped_ids, dropped_errors;
        for (size_t i = 0; i < pend->items.size(); ++i) {
          if (pend->indices[i] >= 0) {
            kept.push_back(std::move(pend->items[i]));
            kept_indices.push_back(pend->indices[i]);
          } else {
            const int64_t lost = (*pend->order)[static_cast<size_t>(b * bs) + i];
            dropped_ids.push_back(dataset_[lost].id);
            dropped_errors.push_back(pend->errors[i]);
          }
        }
        if (!kept.empty()) pend->batch = collate(kept);
        pend->batch.indices = std::move(kept_indices);
        pend->batch.dropped_ids = std::move(dropped_ids);
        pend->batch.dropped_errors = std::move(dropped_errors);
        pend->batch.epoch = epoch;
        pend->batch.index = b;
        if (opt_.batch_fn && !pend->batch.indices.empty()) opt_.batch_fn(pend->batch);
      } catch (...) {
        pend->error = std::current_exception();
      }
    }
    pend->items.clear();
    lock.lock();
    pend->ready = true;
    ready_cv_.notify_all();
  }
}

std::optional<Batch> Loader::next_batch() {
  if (next_yield_ >= num_batches()) return std::nullopt;
  if (!running_) start_workers();
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t key = batch_key(epoch_, next_yield_);
  ready_cv_.wait(lock, [&] {
    auto it = pending_.find(key);
    return it != pending_.end() && it->second->ready;
  });
  std::shared_ptr<Pending> p = pending_[key];
  pending_.erase(key);
  ++next_yield_;
  work_cv_.notify_all();
  if (p->error) {
    lock.unlock();
    std::rethrow_exception(p->error);
  }
  samples_done_ += static_cast<int64_t>(p->batch.indices.size());
  return std::move(p->batch);
}

LoaderProgress Loader::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  LoaderProgress p;
  p.epoch = epoch_;
  p.batches_done = next_yield_;
  p.samples_done = samples_done_;
  p.batches_per_epoch = num_batches();
  p.skipped = skipped_;
  return p;
}

std::vector<std::string> Loader::skipped_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {errors_.begin(), errors_.end()};
}

ItemFn make_video_item_fn(const VideoItemOptions& options) {
  return [options](const Sample& s, uint64_t seed) {
    Item item;
    VideoReader reader(s.video_path, options.decode);
    item.tensors["video"] = reader.sample(options.sampling, seed, s.start_s, s.end_s);
    std::string caption;
    if (!s.captions.empty()) {
      SplitMix64 rng(mix_seed(seed, 0xca9));
      caption = options.random_caption
                    ? s.captions[rng.uniform_int(0, static_cast<int64_t>(s.captions.size()) - 1)]
                    : s.captions.front();
    }
    item.strings["caption"] = caption;
    item.strings["id"] = s.id;
    return item;
  };
}

}  // namespace kinema::data
