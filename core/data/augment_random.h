#pragma once
// Seeded integer sampling shared by the augmentations. Written out (rather than
// std::uniform_int_distribution, whose algorithm is implementation-defined) so
// a seed gives the same augmentation with any standard library.
#include <cstdint>
#include <random>

namespace kinema::data {

// Uniform integer in [lo, hi] (inclusive), unbiased (rejection sampling).
inline int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<int64_t>(rng());  // the full 64-bit range
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return lo + static_cast<int64_t>(x % span);
}

// Uniform double in [0, 1) from the top 53 bits.
inline double uniform_unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace kinema::data
