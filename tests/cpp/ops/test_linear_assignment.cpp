// kinema::linear_assignment against exhaustive search on small problems:
// valid matchings, optimal totals (minimise and maximise), padding, ties,
// R > C and R < C, and errors naming the sample or argument.
#include "ops/ops.h"
#include "ops_test_util.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <limits>
#include <set>

using kinema::ops::testing::check_error;

namespace {

// Best total over all matchings of min(R, C) pairs, by exhaustive search.
double best_total(const at::Tensor& cost, bool maximize) {
  const int64_t rows = cost.size(0), cols = cost.size(1);
  if (rows == 0 || cols == 0) return 0.0;
  const bool wide = rows <= cols;
  const at::Tensor m = (wide ? cost : cost.t()).to(at::kDouble).contiguous();
  const int64_t small = m.size(0), large = m.size(1);
  const double* p = m.data_ptr<double>();
  std::vector<char> used(large, 0);
  double best = maximize ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity();
  std::function<void(int64_t, double)> search = [&](int64_t i, double total) {
    if (i == small) {
      best = maximize ? std::max(best, total) : std::min(best, total);
      return;
    }
    for (int64_t j = 0; j < large; ++j)
      if (!used[j]) {
        used[j] = 1;
        search(i + 1, total + p[i * large + j]);
        used[j] = 0;
      }
  };
  search(0, 0.0);
  return best;
}

// Checks the structure of sample b's answer and returns its total cost.
double checked_total(const at::Tensor& cost, const at::Tensor& rows, const at::Tensor& cols,
                     int64_t b, int64_t valid_rows, int64_t valid_cols) {
  const int64_t pairs = std::min(valid_rows, valid_cols);
  std::set<int64_t> seen_rows, seen_cols;
  double total = 0;
  for (int64_t p = 0; p < rows.size(1); ++p) {
    const int64_t r = rows[b][p].item<int64_t>(), c = cols[b][p].item<int64_t>();
    if (p >= pairs) {
      CHECK(r == -1);
      CHECK(c == -1);
      continue;
    }
    REQUIRE(r >= 0);
    REQUIRE(r < valid_rows);
    REQUIRE(c >= 0);
    REQUIRE(c < valid_cols);
    if (p > 0) CHECK(r > rows[b][p - 1].item<int64_t>());  // sorted by row
    seen_rows.insert(r);
    seen_cols.insert(c);
    total += cost[b][r][c].item<double>();
  }
  CHECK(static_cast<int64_t>(seen_rows.size()) == pairs);
  CHECK(static_cast<int64_t>(seen_cols.size()) == pairs);
  return total;
}

}  // namespace

TEST_CASE("linear_assignment is optimal on random padded batches") {
  torch::manual_seed(4);
  const int64_t batch = 60;
  for (bool maximize : {false, true})
    for (auto dtype : {at::kFloat, at::kDouble}) {
      CAPTURE(maximize);
      const at::Tensor cost = at::randn({batch, 6, 7}, dtype);
      const at::Tensor rc = at::randint(0, 7, {batch}, at::kLong);
      const at::Tensor cc = at::randint(0, 8, {batch}, at::kLong);
      auto [rows, cols] = kinema::ops::linear_assignment(cost, rc, cc, maximize);
      REQUIRE((rows.sizes() == at::IntArrayRef({batch, 6})));
      REQUIRE((cols.sizes() == at::IntArrayRef({batch, 6})));
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t r = rc[b].item<int64_t>(), c = cc[b].item<int64_t>();
        CAPTURE(b);
        const double got = checked_total(cost, rows, cols, b, r, c);
        const double want = best_total(cost[b].slice(0, 0, r).slice(1, 0, c), maximize);
        CHECK(got == doctest::Approx(want).epsilon(1e-9));
      }
    }
}

TEST_CASE("linear_assignment is optimal on small integer costs (many ties)") {
  // Ties send the row reduction down its "take the other cheapest column" branch.
  torch::manual_seed(5);
  const int64_t batch = 80;
  for (bool maximize : {false, true}) {
    CAPTURE(maximize);
    const at::Tensor cost = at::randint(0, 4, {batch, 6, 7}, at::kFloat);
    const at::Tensor rc = at::randint(0, 7, {batch}, at::kLong);
    const at::Tensor cc = at::randint(0, 8, {batch}, at::kLong);
    auto [rows, cols] = kinema::ops::linear_assignment(cost, rc, cc, maximize);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t r = rc[b].item<int64_t>(), c = cc[b].item<int64_t>();
      CAPTURE(b);
      const double got = checked_total(cost, rows, cols, b, r, c);
      CHECK(got == best_total(cost[b].slice(0, 0, r).slice(1, 0, c), maximize));
    }
  }
}

TEST_CASE("linear_assignment with more rows than columns and the reverse") {
  const at::Tensor tall = at::tensor({4.0, 1.0, 2.0, 0.5, 3.0, 3.0, 0.0, 9.0}).view({1, 4, 2});
  auto [rows, cols] = kinema::ops::linear_assignment(tall, at::Tensor(), at::Tensor(), false);
  // Best: row 1 -> col 1 (0.5) + row 3 -> col 0 (0.0) = 0.5.
  CHECK(rows.equal(at::tensor({1, 3}, at::kLong).view({1, 2})));
  CHECK(cols.equal(at::tensor({1, 0}, at::kLong).view({1, 2})));
  auto [rows_t, cols_t] = kinema::ops::linear_assignment(tall.transpose(1, 2), at::Tensor(),
                                                         at::Tensor(), false);
  CHECK(rows_t.equal(at::tensor({0, 1}, at::kLong).view({1, 2})));
  CHECK(cols_t.equal(at::tensor({3, 1}, at::kLong).view({1, 2})));
}

TEST_CASE("linear_assignment with ties still returns a valid optimal matching") {
  const at::Tensor flat = at::zeros({2, 5, 5});
  at::Tensor blocks = at::tensor({1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0}).view({1, 3, 3});
  auto [rows, cols] = kinema::ops::linear_assignment(flat, at::Tensor(), at::Tensor(), false);
  CHECK(checked_total(flat, rows, cols, 1, 5, 5) == 0.0);
  auto [r2, c2] = kinema::ops::linear_assignment(blocks, at::Tensor(), at::Tensor(), true);
  CHECK(checked_total(blocks, r2, c2, 0, 3, 3) == doctest::Approx(best_total(blocks[0], true)));
}

TEST_CASE("linear_assignment of empty samples gives only padding") {
  const at::Tensor cost = at::randn({3, 4, 4});
  const at::Tensor counts = at::tensor({0, 4, 2}, at::kLong);
  const at::Tensor zero = at::tensor({4, 0, 3}, at::kLong);
  auto [rows, cols] = kinema::ops::linear_assignment(cost, counts, zero, false);
  CHECK((rows[0] == -1).all().item<bool>());
  CHECK((rows[1] == -1).all().item<bool>());
  CHECK((rows[2].slice(0, 0, 2) >= 0).all().item<bool>());
  CHECK((cols[2].slice(0, 2) == -1).all().item<bool>());
}

TEST_CASE("linear_assignment rejects bad input naming the sample or argument") {
  at::Tensor cost = at::randn({3, 4, 5});
  cost[1][2][3] = std::numeric_limits<float>::quiet_NaN();
  check_error([&] { kinema::ops::linear_assignment(cost, at::Tensor(), at::Tensor(), false); },
              {"kinema::linear_assignment", "'cost'", "non-finite", "sample 1", "(2, 3)"});
  // The same entry outside the valid block is ignored.
  const at::Tensor rc = at::tensor({4, 2, 4}, at::kLong);
  CHECK_NOTHROW(kinema::ops::linear_assignment(cost, rc, at::Tensor(), false));
  cost[1][2][3] = std::numeric_limits<float>::infinity();
  check_error([&] { kinema::ops::linear_assignment(cost, at::Tensor(), at::Tensor(), true); },
              {"non-finite", "sample 1"});
  // With several bad samples in different blocks (solved by different
  // threads), the error names the first one, every time.
  at::Tensor many = at::randn({200, 4, 5});
  many[150][0][0] = std::numeric_limits<float>::quiet_NaN();
  many[70][3][1] = -std::numeric_limits<float>::infinity();
  many[71][0][0] = std::numeric_limits<float>::quiet_NaN();
  for (int run = 0; run < 5; ++run)
    check_error([&] { kinema::ops::linear_assignment(many, at::Tensor(), at::Tensor(), false); },
                {"sample 70", "(3, 1)"});
  const at::Tensor ok = at::randn({3, 4, 5});
  check_error([&] { kinema::ops::linear_assignment(ok[0], at::Tensor(), at::Tensor(), false); },
              {"linear_assignment", "'cost'", "3 dimensions"});
  check_error([&] { kinema::ops::linear_assignment(ok, at::tensor({1, 2, 5}, at::kLong), at::Tensor(), false); },
              {"'row_counts'", "sample 2"});
  check_error([&] { kinema::ops::linear_assignment(ok, at::Tensor(), at::tensor({1, -1, 5}, at::kLong), false); },
              {"'col_counts'", "sample 1"});
  check_error([&] { kinema::ops::linear_assignment(ok, at::tensor({1, 2}, at::kLong), at::Tensor(), false); },
              {"'row_counts'", "batch size"});
  check_error([&] { kinema::ops::linear_assignment(ok, at::tensor({1, 2, 3}, at::kInt), at::Tensor(), false); },
              {"'row_counts'", "int64"});
  check_error([&] { kinema::ops::linear_assignment(ok.to(at::kLong), at::Tensor(), at::Tensor(), false); },
              {"'cost'", "float32"});
}
