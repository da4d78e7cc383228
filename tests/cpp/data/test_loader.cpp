// The threaded loader: deterministic order, sharding, drop_last, replacement
// of unreadable samples, resume and early shutdown.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "core/data/loader.h"
#include "test_paths.h"

using namespace kinema::data;

namespace {

std::vector<Sample> dataset(int64_t n) {
  std::vector<Sample> v(n);
  for (int64_t i = 0; i < n; ++i) {
    v[i].id = "s" + std::to_string(i);
    v[i].video_path = "/nonexistent/" + v[i].id + ".mp4";
    v[i].captions = {"caption " + std::to_string(i)};
  }
  return v;
}

// Item = the sample's index and a value drawn from the item seed.
ItemFn index_item(std::set<std::string> broken = {}) {
  return [broken](const Sample& s, uint64_t seed) {
    if (broken.count(s.id)) throw std::runtime_error("cannot decode '" + s.id + "'");
    Item it;
    it.tensors["i"] = at::full({1}, static_cast<int64_t>(std::stoll(s.id.substr(1))), at::kLong);
    it.tensors["r"] = at::full({1}, static_cast<int64_t>(seed % 1000), at::kLong);
    it.strings["id"] = s.id;
    return it;
  };
}

std::vector<int64_t> all_indices(Loader& l) {
  std::vector<int64_t> out;
  while (auto b = l.next_batch()) {
    auto t = b->tensors.at("i").flatten();
    for (int64_t k = 0; k < t.numel(); ++k) out.push_back(t[k].item<int64_t>());
    CHECK(b->strings.at("id").size() == static_cast<size_t>(t.numel()));
  }
  return out;
}

}  // namespace

TEST_CASE("loader: same seed and epoch give the same batches, whatever the worker count") {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 7;
  o.num_workers = 1;
  Loader a(dataset(30), index_item(), o);
  o.num_workers = 3;
  Loader b(dataset(30), index_item(), o);
  const auto ia = all_indices(a), ib = all_indices(b);
  CHECK(ia == ib);
  CHECK(ia.size() == 30);
  CHECK(std::set<int64_t>(ia.begin(), ia.end()).size() == 30);  // a permutation
  std::vector<int64_t> sorted(ia);
  std::sort(sorted.begin(), sorted.end());
  CHECK(ia != sorted);  // shuffled
  a.reset(1);
  const auto next_epoch = all_indices(a);
  CHECK(next_epoch != ia);  // another epoch, another order
  a.reset(0);
  CHECK(all_indices(a) == ia);
}

TEST_CASE("loader: batch shapes, partial last batch, drop_last, progress") {
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  Loader l(dataset(10), index_item(), o);
  CHECK(l.num_batches() == 3);
  auto b = l.next_batch();
  REQUIRE(b);
  CHECK(b->tensors.at("i").sizes() == at::IntArrayRef({4, 1}));
  CHECK(b->strings.at("id") == std::vector<std::string>{"s0", "s1", "s2", "s3"});
  CHECK(b->indices == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(l.progress().batches_done == 1);
  CHECK(l.progress().samples_done == 4);
  l.next_batch();
  auto last = l.next_batch();
  REQUIRE(last);
  CHECK(last->tensors.at("i").size(0) == 2);
  CHECK(!l.next_batch());
  o.drop_last = true;
  Loader d(dataset(10), index_item(), o);
  CHECK(d.num_batches() == 2);
  CHECK(all_indices(d) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("loader: shards are disjoint, equal and cover the dataset") {
  for (bool drop_last : {false, true}) {
    CAPTURE(drop_last);
    std::vector<int64_t> seen;
    std::set<size_t> lengths;
    for (int64_t rank = 0; rank < 3; ++rank) {
      LoaderOptions o;
      o.batch_size = 2;
      o.seed = 3;
      o.rank = rank;
      o.world_size = 3;
      o.drop_last = drop_last;
      Loader l(dataset(12), index_item(), o);
      const auto shard = all_indices(l);
      CHECK(shard == l.shard_order(0));
      lengths.insert(shard.size());
      seen.insert(seen.end(), shard.begin(), shard.end());
    }
    CHECK(lengths == std::set<size_t>{4});
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(12);
    for (int64_t i = 0; i < 12; ++i) all[i] = i;
    CHECK(seen == all);
  }
  // 10 samples over 3 ranks: padded to 12 (like DistributedSampler) or cut to 9.
  LoaderOptions o;
  o.world_size = 3;
  o.rank = 2;
  CHECK(Loader(dataset(10), index_item(), o).shard_size() == 4);
  o.drop_last = true;
  CHECK(Loader(dataset(10), index_item(), o).shard_size() == 3);
}

TEST_CASE("loader: an unreadable sample is counted and replaced by the next index") {
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  o.num_workers = 2;
  Loader l(dataset(10), index_item({"s3", "s4"}), o);
  const auto idx = all_indices(l);
  // 3 and 4 fail; both are replaced by 5 (the next readable index).
  CHECK(idx == std::vector<int64_t>{0, 1, 2, 5, 5, 5, 6, 7, 8, 9});
  CHECK(l.progress().skipped == 3);  // slot 3 tried 3 and 4, slot 4 tried 4
  const auto errors = l.skipped_errors();
  CHECK(errors.size() == 3);
  CHECK(std::any_of(errors.begin(), errors.end(), [](const std::string& e) {
    return e.find("cannot decode 's3'") != std::string::npos;
  }));

  // Everything broken: the error reaches the consumer, with the last message.
  std::set<std::string> every;
  for (int i = 0; i < 4; ++i) every.insert("s" + std::to_string(i));
  o.max_replacements = 2;
  Loader bad(dataset(4), index_item(every), o);
  CHECK_THROWS_WITH_AS(bad.next_batch(), doctest::Contains("replacements all failed"), c10::Error);
}

TEST_CASE("loader: resuming at a batch gives the batches an uninterrupted epoch gives") {
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  Loader full(dataset(20), index_item(), o);
  full.reset(2);
  std::vector<at::Tensor> want;
  while (auto b = full.next_batch()) want.push_back(b->tensors.at("r"));
  Loader resumed(dataset(20), index_item(), o);
  resumed.reset(2, 4);
  CHECK(resumed.progress().batches_done == 4);
  size_t k = 4;
  while (auto b = resumed.next_batch()) {
    REQUIRE(k < want.size());
    CHECK(b->index == static_cast<int64_t>(k));
    CHECK(at::equal(b->tensors.at("r"), want[k++]));  // same samples, same seeds
  }
  CHECK(k == want.size());
  CHECK_THROWS_WITH_AS(resumed.reset(0, 99), doctest::Contains("start_batch"), c10::Error);
}

TEST_CASE("loader: breaking out early and destroying the loader does not hang") {
  std::atomic<int> made{0};
  auto slow = [&made](const Sample& s, uint64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ++made;
    Item it;
    it.tensors["x"] = at::zeros({2});
    it.strings["id"] = s.id;
    return it;
  };
  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 3;
  o.prefetch = 2;
  {
    Loader l(dataset(200), slow, o);
    REQUIRE(l.next_batch());
  }  // destructor joins mid-epoch
  // The bounded prefetch kept the workers from running ahead of the consumer.
  CHECK(made.load() <= static_cast<int>(2 * (1 + o.prefetch) + o.num_workers));
}

TEST_CASE("loader: collation errors name the key") {
  auto ragged = [](const Sample& s, uint64_t) {
    Item it;
    it.tensors["x"] = at::zeros({s.id == "s1" ? 3 : 2});
    return it;
  };
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  Loader l(dataset(4), ragged, o);
  CHECK_THROWS_WITH_AS(l.next_batch(), doctest::Contains("tensor 'x'"), c10::Error);
  CHECK_THROWS_WITH_AS(Loader(dataset(0), ragged, o), doctest::Contains("empty"), c10::Error);
}

TEST_CASE("loader: video items decode real files and replace a missing one") {
  auto data = dataset(3);
  const std::string good = std::string(KINEMA_FIXTURES) + "/video_tiny.mp4";
  data[0].video_path = good;
  data[2].video_path = good;  // data[1] stays a missing file
  VideoItemOptions vo;
  vo.sampling.num_frames = 4;
  vo.decode.resize.out_h = vo.decode.resize.out_w = 32;
  LoaderOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  o.batch_fn = [](Batch& b) { b.tensors["norm"] = normalize_video(b.tensors.at("video"), VideoNorm::Clip); };
  Loader l(data, make_video_item_fn(vo), o);
  auto b = l.next_batch();
  REQUIRE(b);
  CHECK(b->tensors.at("video").sizes() == at::IntArrayRef({3, 4, 3, 32, 32}));
  CHECK((b->tensors.at("video").scalar_type() == at::kByte));
  CHECK((b->tensors.at("norm").scalar_type() == at::kFloat));
  CHECK(b->indices == std::vector<int64_t>{0, 2, 2});
  CHECK(b->strings.at("caption") == std::vector<std::string>{"caption 0", "caption 2", "caption 2"});
  CHECK(l.progress().skipped == 1);
  CHECK(l.skipped_errors().front().find("/nonexistent/s1.mp4") != std::string::npos);
}

TEST_CASE("loader: prefetch_next_epoch readies the next epoch's first batches, same batches as a cold start") {
  // Counts the items made per epoch (the item seed mixes the epoch in; the
  // test recovers it from the "r" tensor of a reference loader instead).
  std::atomic<int64_t> made{0};
  auto counting = [&made, inner = index_item()](const Sample& s, uint64_t seed) {
    ++made;
    return inner(s, seed);
  };
  LoaderOptions o;
  o.batch_size = 3;
  o.num_workers = 2;
  o.prefetch = 2;
  o.seed = 5;
  o.drop_last = true;  // 10 samples: 3 batches of 3, sample 10 never made
  o.prefetch_next_epoch = true;
  Loader warm(dataset(10), counting, o);
  auto batches = [](Loader& l) {
    std::vector<std::vector<int64_t>> out;
    while (auto b = l.next_batch()) {
      std::vector<int64_t> v;
      for (const char* key : {"i", "r"}) {
        auto t = b->tensors.at(key).flatten();
        for (int64_t k = 0; k < t.numel(); ++k) v.push_back(t[k].item<int64_t>());
      }
      v.push_back(b->epoch);
      v.push_back(b->index);
      out.push_back(v);
    }
    return out;
  };
  const auto epoch0 = batches(warm);
  CHECK(epoch0.size() == 3);
  // Epoch 1's first `prefetch` batches are made without being asked for.
  for (int k = 0; k < 1000 && made.load() < 9 + 6; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(made.load() == 9 + 6);
  warm.reset(1, 0);
  const auto epoch1 = batches(warm);
  CHECK(made.load() >= 18);  // nothing made twice: 9 per epoch (+ up to 2 batches of epoch 2 ahead)
  CHECK(made.load() <= 18 + 6);
  o.prefetch_next_epoch = false;
  Loader cold(dataset(10), index_item(), o);
  CHECK(batches(cold) == epoch0);
  cold.reset(1, 0);
  CHECK(batches(cold) == epoch1);
  CHECK(epoch1 != epoch0);
  // Off: the workers stop at the epoch's end.
  std::atomic<int64_t> made_off{0};
  Loader off(dataset(10), [&made_off, inner = index_item()](const Sample& s, uint64_t seed) {
    ++made_off;
    return inner(s, seed);
  }, o);
  CHECK(batches(off).size() == 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(made_off.load() == 9);
  off.reset(1, 0);  // where it stopped: carries on into epoch 1, same batches
  CHECK(batches(off) == epoch1);
  CHECK(made_off.load() == 18);
  // A reset elsewhere drops the prefetched work and starts there.
  warm.reset(0, 1);
  CHECK(batches(warm) == std::vector<std::vector<int64_t>>(epoch0.begin() + 1, epoch0.end()));
}
