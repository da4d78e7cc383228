// Batched rectangular linear assignment on CPU: Jonker-Volgenant's augmenting
// row reduction from empty duals, then the shortest augmenting path method for
// the rows still free (as described by Crouse, "On implementing 2D rectangular
// assignment algorithms", 2016), parallel over the batch. Costs are read in
// double so totals match scipy's, which works in double too.
#include "ops/linear_assignment.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace kinema::ops {
namespace {

// Scratch space reused across the samples a task solves.
struct Workspace {
  std::vector<double> cost;  // the sample's valid block, sign-adjusted, wide
  std::vector<double> u, v, shortest;
  std::vector<int64_t> path, col_of_row, row_of_col, free_rows;
  std::vector<char> row_seen, col_seen;
};

// The cheapest and second cheapest reduced cost c[j] - v[j] of a row, and the
// lowest column holding the cheapest, in one pass over two pairs of lanes
// (GCC's generic vectors: SSE2 or NEON) with selects in place of branches.
// Scanning again for the column of a minimum mispredicts its exit on random costs.
struct Cheapest {
  double first, second;
  int64_t col;
};

typedef double Pair __attribute__((vector_size(2 * sizeof(double))));

inline __attribute__((always_inline)) Pair load_pair(const double* p) {
  Pair x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

// One step for two lanes: h holds the reduced costs of the columns in `at`.
inline __attribute__((always_inline)) void scan_step(Pair h, Pair at, Pair& first, Pair& second, Pair& col) {
  const auto lower = h < first;
  const Pair high = first > h ? first : h;
  second = high < second ? high : second;
  col = lower ? at : col;
  first = lower ? h : first;
}

inline __attribute__((always_inline)) Cheapest cheapest_two(const double* cost_row, const double* v,
                                                            int64_t n) {
  const double inf = std::numeric_limits<double>::infinity();
  // Lanes 0-1 see the columns equal to 0, 1 mod 4; lanes 2-3 those equal to 2, 3 mod 4.
  Pair first_lo = {inf, inf}, second_lo = first_lo, first_hi = first_lo, second_hi = first_lo;
  Pair col_lo = {-1.0, -1.0}, col_hi = col_lo;  // columns as doubles: one mask selects both
  Pair at_lo = {0.0, 1.0}, at_hi = {2.0, 3.0};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4, at_lo += 4.0, at_hi += 4.0) {
    scan_step(load_pair(cost_row + j) - load_pair(v + j), at_lo, first_lo, second_lo, col_lo);
    scan_step(load_pair(cost_row + j + 2) - load_pair(v + j + 2), at_hi, first_hi, second_hi, col_hi);
  }
  const double first[4] = {first_lo[0], first_lo[1], first_hi[0], first_hi[1]};
  const double second[4] = {second_lo[0], second_lo[1], second_hi[0], second_hi[1]};
  const double col[4] = {col_lo[0], col_lo[1], col_hi[0], col_hi[1]};
  Cheapest out{inf, inf, -1};
  for (int k = 0; k < 4; ++k) {  // merge the lanes, the lowest column on ties
    if (first[k] < out.first || (first[k] == out.first && col[k] < out.col)) {
      out.second = std::min(out.first, second[k]);
      out.first = first[k];
      out.col = int64_t(col[k]);
    } else {
      out.second = std::min(out.second, first[k]);
    }
  }
  for (; j < n; ++j) {  // the tail: columns above every lane's
    const double h = cost_row[j] - v[j];
    if (h < out.first) {
      out.second = out.first;
      out.first = h;
      out.col = j;
    } else {
      out.second = std::min(out.second, h);
    }
  }
  return out;
}

// Augmenting row reduction (Jonker and Volgenant, 1987): a free row takes its
// cheapest column at reduced cost c - v, lowering that column's dual by the gap
// to the second cheapest, and the row it displaces becomes free. The duals stay
// feasible and tight on every assigned pair, and only taken columns are
// lowered, so free columns keep v = 0 as the shortest-path phase requires; that
// phase then finishes the rows still free. Bounded to 4 * n_rows moves
// (random 20x33 costs need ~26 and leave no row free).
void reduce_rows(int64_t n_rows, int64_t n_cols, Workspace& ws) {
  const double* cost = ws.cost.data();
  double* u = ws.u.data();
  double* v = ws.v.data();
  int64_t* col_of_row = ws.col_of_row.data();
  int64_t* row_of_col = ws.row_of_col.data();
  ws.free_rows.resize(5 * n_rows);  // the free rows, then at most 4 * n_rows re-queued
  int64_t* free_rows = ws.free_rows.data();
  int64_t n_free = n_rows;  // every row starts free
  for (int64_t i = 0; i < n_rows; ++i) free_rows[i] = i;
  int64_t head = 0;
  for (int64_t moves = 0; head < n_free && moves < 4 * n_rows; ++moves) {
    const int64_t i = free_rows[head++];
    const double* cost_row = cost + i * n_cols;
    const Cheapest c = cheapest_two(cost_row, v, n_cols);
    int64_t j1 = c.col;
    // With one column there is no second: no gap to lower v by.
    const double m1 = c.first, m2 = n_cols > 1 ? c.second : c.first;
    int64_t displaced = row_of_col[j1];
    if (m1 < m2) {
      v[j1] -= m2 - m1;
    } else if (displaced >= 0 && n_cols > 1) {
      // A tie: take the lowest other cheapest column, displacing without progress.
      int64_t j2 = 0;
      while (j2 == j1 || cost_row[j2] - v[j2] != m2) ++j2;
      j1 = j2;
      displaced = row_of_col[j1];
    }
    u[i] = m2;
    row_of_col[j1] = i;
    col_of_row[i] = j1;
    if (displaced >= 0) {
      col_of_row[displaced] = -1;
      if (m1 < m2)
        free_rows[--head] = displaced;  // its duals moved: retry it at once
      else
        free_rows[n_free++] = displaced;
    }
  }
}

// Solves one n_rows x n_cols problem (n_rows <= n_cols) held row-major in
// ws.cost. Fills ws.col_of_row and ws.row_of_col.
void solve_wide(int64_t n_rows, int64_t n_cols, Workspace& ws) {
  const double inf = std::numeric_limits<double>::infinity();
  const double* cost = ws.cost.data();
  ws.u.assign(n_rows, 0.0);
  ws.v.assign(n_cols, 0.0);
  ws.col_of_row.assign(n_rows, -1);
  ws.row_of_col.assign(n_cols, -1);
  ws.shortest.resize(n_cols);
  ws.path.resize(n_cols);
  ws.row_seen.resize(n_rows);
  ws.col_seen.resize(n_cols);
  double* u = ws.u.data();
  double* v = ws.v.data();
  double* shortest = ws.shortest.data();
  int64_t* path = ws.path.data();
  const int64_t* row_of_col = ws.row_of_col.data();

  // Every row starts free with v = 0. Row reduction assigns most of them
  // (starting it from greedy row minima instead was 5% slower: one more pass
  // per row, and the collisions then cost as many moves); a row still free
  // gets the shortest-path search, from u = its cheapest reduced cost, which
  // makes the duals feasible for it.
  reduce_rows(n_rows, n_cols, ws);

  for (int64_t start = 0; start < n_rows; ++start) {
    if (ws.col_of_row[start] >= 0) continue;
    u[start] = cheapest_two(cost + start * n_cols, v, n_cols).first;
    std::fill(ws.shortest.begin(), ws.shortest.end(), inf);
    std::fill(ws.row_seen.begin(), ws.row_seen.end(), 0);
    std::fill(ws.col_seen.begin(), ws.col_seen.end(), 0);
    const char* col_seen = ws.col_seen.data();
    // Dijkstra over reduced costs from row `start` until a free column is reached.
    int64_t row = start, sink = -1;
    double min_dist = 0.0;
    while (sink < 0) {
      ws.row_seen[row] = 1;
      const double* cost_row = cost + row * n_cols;
      const double base = min_dist - u[row];
      double lowest = inf;
      int64_t best = -1;
      // Columns in index order; ties go to a free column (ends the search
      // sooner), then the lowest index. (With equal-cost optima the CPU and
      // CUDA kernels may pick different matchings: only this one starts with
      // row reduction. Totals are equal.)
      for (int64_t j = 0; j < n_cols; ++j) {
        if (col_seen[j]) continue;
        const double reduced = base + cost_row[j] - v[j];
        if (reduced < shortest[j]) {
          path[j] = row;
          shortest[j] = reduced;
        }
        const double d = shortest[j];
        if (d < lowest) {
          lowest = d;
          best = j;
        } else if (d == lowest && row_of_col[j] < 0 && row_of_col[best] >= 0) {
          best = j;
        }
      }
      // Finite costs always leave a reachable column.
      TORCH_INTERNAL_ASSERT(best >= 0 && lowest < inf, "kinema::linear_assignment: no path");
      min_dist = lowest;
      ws.col_seen[best] = 1;
      if (row_of_col[best] < 0)
        sink = best;
      else
        row = row_of_col[best];
    }
    // Update the dual variables, then flip the alternating path.
    u[start] += min_dist;
    for (int64_t i = 0; i < n_rows; ++i)
      if (ws.row_seen[i] && i != start) u[i] += min_dist - shortest[ws.col_of_row[i]];
    for (int64_t j = 0; j < n_cols; ++j)
      if (ws.col_seen[j]) v[j] -= min_dist - shortest[j];
    for (int64_t j = sink;;) {
      const int64_t i = path[j];
      ws.row_of_col[j] = i;
      std::swap(ws.col_of_row[i], j);
      if (i == start) break;
    }
  }
}

// Copies sample b's valid block into ws.cost (wide side last, transposed if
// R > C, sign-adjusted, in double). Returns false if an entry is not finite.
template <typename T>
bool load_sample(const T* m, int64_t s1, int64_t s2, int64_t n_rows, int64_t n_cols, double sign,
                 Workspace& ws) {
  const bool transposed = n_rows > n_cols;
  const int64_t wide_cols = transposed ? n_rows : n_cols;
  ws.cost.resize(n_rows * n_cols);
  double* dst = ws.cost.data();
  for (int64_t i = 0; i < n_rows; ++i) {
    const T* src = m + i * s1;
    if (transposed) {
      for (int64_t j = 0; j < n_cols; ++j) dst[j * wide_cols + i] = sign * double(src[j * s2]);
    } else if (s2 == 1) {
      double* out = dst + i * wide_cols;
      for (int64_t j = 0; j < n_cols; ++j) out[j] = sign * double(src[j]);
    } else {
      double* out = dst + i * wide_cols;
      for (int64_t j = 0; j < n_cols; ++j) out[j] = sign * double(src[j * s2]);
    }
  }
  // x - x is 0 for finite x, NaN otherwise; four independent sums keep the
  // adds from waiting on each other.
  double poison[4] = {0.0, 0.0, 0.0, 0.0};
  const int64_t count = n_rows * n_cols;
  int64_t k = 0;
  for (; k + 4 <= count; k += 4)
    for (int lane = 0; lane < 4; ++lane) poison[lane] += dst[k + lane] - dst[k + lane];
  for (; k < count; ++k) poison[0] += dst[k] - dst[k];
  return std::isfinite(poison[0] + poison[1] + poison[2] + poison[3]);
}

template <typename T>
void assign_batch(const at::Tensor& cost, const int64_t* row_counts, const int64_t* col_counts,
                  bool maximize, int64_t* rows_out, int64_t* cols_out, int64_t pairs) {
  const int64_t batch = cost.size(0);
  const int64_t s0 = cost.stride(0), s1 = cost.stride(1), s2 = cost.stride(2);
  const T* data = cost.data_ptr<T>();
  const double sign = maximize ? -1.0 : 1.0;

  // Blocks of samples handed out on demand rather than one static half per
  // thread: the cores of a shared machine run at different speeds (here one
  // was 35% slower than the other), and a static split waits for the slower.
  constexpr int64_t kBlock = 32;
  const int64_t n_blocks = (batch + kBlock - 1) / kBlock;
  std::atomic<int64_t> next_block{0};
  std::atomic<int64_t> first_bad{batch};  // the lowest sample with a non-finite cost
  const int64_t tasks = std::min<int64_t>(n_blocks, at::get_num_threads());
  at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) {
    Workspace ws;
    for (int64_t blk; (blk = next_block.fetch_add(1)) < n_blocks;) {
      for (int64_t b = blk * kBlock; b < std::min(batch, (blk + 1) * kBlock); ++b) {
        const int64_t n_rows = row_counts[b], n_cols = col_counts[b];
        if (!load_sample(data + b * s0, s1, s2, n_rows, n_cols, sign, ws)) {
          for (int64_t seen = first_bad.load(); b < seen && !first_bad.compare_exchange_weak(seen, b);) {
          }
          continue;
        }
        const bool transposed = n_rows > n_cols;
        solve_wide(transposed ? n_cols : n_rows, transposed ? n_rows : n_cols, ws);
        // Pairs sorted by the original row, then padding.
        int64_t* r = rows_out + b * pairs;
        int64_t* c = cols_out + b * pairs;
        int64_t p = 0;
        if (!transposed) {
          for (int64_t i = 0; i < n_rows; ++i, ++p) r[p] = i, c[p] = ws.col_of_row[i];
        } else {
          for (int64_t i = 0; i < n_rows; ++i)
            if (ws.row_of_col[i] >= 0) r[p] = i, c[p] = ws.row_of_col[i], ++p;
        }
        for (; p < pairs; ++p) r[p] = -1, c[p] = -1;
      }
    }
  });
  // The error names the first bad sample and entry, whichever thread met it.
  const int64_t bad = first_bad.load();
  if (bad < batch) {
    const T* m = data + bad * s0;
    for (int64_t i = 0; i < row_counts[bad]; ++i)
      for (int64_t j = 0; j < col_counts[bad]; ++j)
        TORCH_CHECK(std::isfinite(static_cast<double>(m[i * s1 + j * s2])),
                    "kinema::linear_assignment: argument 'cost' has a non-finite entry in sample ",
                    bad, " at (", i, ", ", j, ")");
  }
}

std::tuple<at::Tensor, at::Tensor> linear_assignment_cpu(const at::Tensor& cost,
                                                         const c10::optional<at::Tensor>& row_counts,
                                                         const c10::optional<at::Tensor>& col_counts,
                                                         bool maximize) {
  auto [rows_valid, cols_valid] = detail::check_linear_assignment(cost, row_counts, col_counts);
  const int64_t batch = cost.size(0);
  const int64_t* rc = rows_valid.data_ptr<int64_t>();
  const int64_t* cc = cols_valid.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    TORCH_CHECK(rc[b] >= 0 && rc[b] <= cost.size(1), "kinema::linear_assignment: argument ",
                "'row_counts' is ", rc[b], " for sample ", b, ", outside [0, ", cost.size(1), "]");
    TORCH_CHECK(cc[b] >= 0 && cc[b] <= cost.size(2), "kinema::linear_assignment: argument ",
                "'col_counts' is ", cc[b], " for sample ", b, ", outside [0, ", cost.size(2), "]");
  }
  const int64_t pairs = std::min(cost.size(1), cost.size(2));
  at::Tensor rows = at::empty({batch, pairs}, cost.options().dtype(at::kLong));
  at::Tensor cols = at::empty({batch, pairs}, cost.options().dtype(at::kLong));
  if (batch == 0) return {rows, cols};
  AT_DISPATCH_FLOATING_TYPES(cost.scalar_type(), "kinema::linear_assignment", [&] {
    assign_batch<scalar_t>(cost, rc, cc, maximize, rows.data_ptr<int64_t>(),
                           cols.data_ptr<int64_t>(), pairs);
  });
  return {rows, cols};
}

}  // namespace

TORCH_LIBRARY_IMPL(kinema, CPU, m) { m.impl("linear_assignment", &linear_assignment_cpu); }

}  // namespace kinema::ops
