// Batched rectangular linear assignment on CPU: the shortest augmenting path
// method (Jonker-Volgenant as described by Crouse, "On implementing 2D
// rectangular assignment algorithms", 2016), one sample per task, parallel
// over the batch. Costs are read in double so totals match scipy's, which
// works in double too.
#include "ops/linear_assignment.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace kinema::ops {
namespace {

// Scratch space reused across the samples a task solves.
struct Workspace {
  std::vector<double> u, v, shortest;
  std::vector<int64_t> path, col_of_row, row_of_col;
  std::vector<char> row_seen, col_seen;
};

// Solves one n_rows x n_cols problem with n_rows <= n_cols; cost(i, j) gives
// the (already sign-adjusted) cost. Fills ws.col_of_row.
template <typename CostFn>
void solve_wide(int64_t n_rows, int64_t n_cols, const CostFn& cost, Workspace& ws) {
  const double inf = std::numeric_limits<double>::infinity();
  ws.u.assign(n_rows, 0.0);
  ws.v.assign(n_cols, 0.0);
  ws.col_of_row.assign(n_rows, -1);
  ws.row_of_col.assign(n_cols, -1);
  ws.shortest.resize(n_cols);
  ws.path.resize(n_cols);
  ws.row_seen.resize(n_rows);
  ws.col_seen.resize(n_cols);

  for (int64_t start = 0; start < n_rows; ++start) {
    std::fill(ws.shortest.begin(), ws.shortest.end(), inf);
    std::fill(ws.path.begin(), ws.path.end(), -1);
    std::fill(ws.row_seen.begin(), ws.row_seen.end(), 0);
    std::fill(ws.col_seen.begin(), ws.col_seen.end(), 0);
    // Dijkstra over reduced costs from row `start` until a free column is reached.
    int64_t row = start, sink = -1;
    double min_dist = 0.0;
    while (sink < 0) {
      ws.row_seen[row] = 1;
      double lowest = inf;
      int64_t best = -1;
      for (int64_t j = 0; j < n_cols; ++j) {
        if (ws.col_seen[j]) continue;
        const double reduced = min_dist + cost(row, j) - ws.u[row] - ws.v[j];
        if (reduced < ws.shortest[j]) {
          ws.path[j] = row;
          ws.shortest[j] = reduced;
        }
        // Ties go to a free column (ends the search sooner), then the lower index.
        if (ws.shortest[j] < lowest ||
            (ws.shortest[j] == lowest && best >= 0 && ws.row_of_col[j] < 0 &&
             ws.row_of_col[best] >= 0)) {
          lowest = ws.shortest[j];
          best = j;
        }
      }
      // Finite costs always leave a reachable column.
      TORCH_INTERNAL_ASSERT(best >= 0 && lowest < inf, "kinema::linear_assignment: no path");
      min_dist = lowest;
      ws.col_seen[best] = 1;
      if (ws.row_of_col[best] < 0)
        sink = best;
      else
        row = ws.row_of_col[best];
    }
    // Update the dual variables, then flip the alternating path.
    ws.u[start] += min_dist;
    for (int64_t i = 0; i < n_rows; ++i)
      if (ws.row_seen[i] && i != start) ws.u[i] += min_dist - ws.shortest[ws.col_of_row[i]];
    for (int64_t j = 0; j < n_cols; ++j)
      if (ws.col_seen[j]) ws.v[j] -= min_dist - ws.shortest[j];
    for (int64_t j = sink;;) {
      const int64_t i = ws.path[j];
      ws.row_of_col[j] = i;
      std::swap(ws.col_of_row[i], j);
      if (i == start) break;
    }
  }
}

template <typename T>
void assign_batch(const at::Tensor& cost, const int64_t* row_counts, const int64_t* col_counts,
                  bool maximize, int64_t* rows_out, int64_t* cols_out, int64_t pairs) {
  const int64_t batch = cost.size(0);
  const int64_t s0 = cost.stride(0), s1 = cost.stride(1), s2 = cost.stride(2);
  const T* data = cost.data_ptr<T>();
  const double sign = maximize ? -1.0 : 1.0;

  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    Workspace ws;
    std::vector<std::pair<int64_t, int64_t>> matched;
    for (int64_t b = begin; b < end; ++b) {
      const T* m = data + b * s0;
      const int64_t n_rows = row_counts[b], n_cols = col_counts[b];
      for (int64_t i = 0; i < n_rows; ++i)
        for (int64_t j = 0; j < n_cols; ++j)
          TORCH_CHECK(std::isfinite(static_cast<double>(m[i * s1 + j * s2])),
                      "kinema::linear_assignment: argument 'cost' has a non-finite entry in ",
                      "sample ", b, " at (", i, ", ", j, ")");
      matched.clear();
      if (n_rows <= n_cols) {
        solve_wide(n_rows, n_cols,
                   [&](int64_t i, int64_t j) { return sign * m[i * s1 + j * s2]; }, ws);
        for (int64_t i = 0; i < n_rows; ++i) matched.emplace_back(i, ws.col_of_row[i]);
      } else {  // more rows than columns: solve the transpose
        solve_wide(n_cols, n_rows,
                   [&](int64_t j, int64_t i) { return sign * m[i * s1 + j * s2]; }, ws);
        for (int64_t j = 0; j < n_cols; ++j) matched.emplace_back(ws.col_of_row[j], j);
        std::sort(matched.begin(), matched.end());
      }
      int64_t* r = rows_out + b * pairs;
      int64_t* c = cols_out + b * pairs;
      for (int64_t p = 0; p < pairs; ++p) {
        const bool used = p < static_cast<int64_t>(matched.size());
        r[p] = used ? matched[p].first : -1;
        c[p] = used ? matched[p].second : -1;
      }
    }
  });
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
