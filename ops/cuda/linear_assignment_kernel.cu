// Batched linear assignment on CUDA: one warp per sample runs the same
// shortest augmenting path method as the CPU kernel (ops/cpu/
// linear_assignment_kernel.cpp), with the 32 lanes sharing each scan over
// columns and the dual updates. Ties are broken like the CPU kernel (lowest
// reduced cost, then a free column, then the lowest index), so both backends
// return the same pairs. Nothing is read back by the host.
#include "ops/cuda/kernels.h"

#include <cuda_runtime.h>

#include <cmath>

namespace kinema::ops::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFullMask = 0xffffffffu;

// Candidate column for the next step of the search, ordered
// lexicographically by (distance, taken, column).
struct Candidate {
  double distance;
  int taken;  // 0 = free column, 1 = already assigned
  int64_t column;
};

__device__ __forceinline__ bool better(const Candidate& a, const Candidate& b) {
  if (a.distance != b.distance) return a.distance < b.distance;
  if (a.taken != b.taken) return a.taken < b.taken;
  return a.column < b.column;
}

__device__ Candidate warp_min(Candidate c) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    Candidate other;
    other.distance = __shfl_down_sync(kFullMask, c.distance, offset);
    other.taken = __shfl_down_sync(kFullMask, c.taken, offset);
    other.column = __shfl_down_sync(kFullMask, c.column, offset);
    if (better(other, c)) c = other;
  }
  c.distance = __shfl_sync(kFullMask, c.distance, 0);
  c.taken = __shfl_sync(kFullMask, c.taken, 0);
  c.column = __shfl_sync(kFullMask, c.column, 0);
  return c;
}

template <typename T>
__global__ void assign_kernel(const T* __restrict__ cost, const int64_t* __restrict__ row_counts,
                              const int64_t* __restrict__ col_counts, int64_t batch, int64_t rows,
                              int64_t cols, bool maximize, int64_t* __restrict__ rows_out,
                              int64_t* __restrict__ cols_out, double* __restrict__ work_d,
                              int64_t* __restrict__ work_i) {
  const int lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (b >= batch) return;  // whole warps exit together
  const int64_t pairs = rows < cols ? rows : cols;
  const int64_t valid_rows = row_counts[b], valid_cols = col_counts[b];
  // Solve the orientation with no more rows than columns.
  const bool transposed = valid_rows > valid_cols;
  const int64_t n = transposed ? valid_cols : valid_rows;  // "rows" of the solved problem
  const int64_t m = transposed ? valid_rows : valid_cols;  // its "columns"
  const T* matrix = cost + b * rows * cols;
  const double sign = maximize ? -1.0 : 1.0;
  auto at = [&](int64_t i, int64_t j) {
    return sign * static_cast<double>(transposed ? matrix[j * cols + i] : matrix[i * cols + j]);
  };

  const int64_t big = rows > cols ? rows : cols;
  double* u = work_d + b * 3 * big;
  double* v = u + big;
  double* shortest = v + big;
  int64_t* col_of_row = work_i + b * 5 * big;
  int64_t* row_of_col = col_of_row + big;
  int64_t* path = row_of_col + big;
  int64_t* row_seen = path + big;
  int64_t* col_seen = row_seen + big;

  for (int64_t i = lane; i < n; i += kWarp) u[i] = 0.0, col_of_row[i] = -1;
  for (int64_t j = lane; j < m; j += kWarp) v[j] = 0.0, row_of_col[j] = -1;
  __syncwarp();
  // As on the CPU: u_i = row minimum (first column on ties), v = 0, and each
  // row takes its minimum column while that is free.
  for (int64_t i = 0; i < n; ++i) {
    Candidate best{INFINITY, 0, m};
    for (int64_t j = lane; j < m; j += kWarp) {
      const Candidate c{at(i, j), 0, j};
      if (better(c, best)) best = c;
    }
    best = warp_min(best);
    if (lane == 0) {
      u[i] = best.distance;
      if (row_of_col[best.column] < 0) row_of_col[best.column] = i, col_of_row[i] = best.column;
    }
    __syncwarp();
  }

  for (int64_t start = 0; start < n; ++start) {
    if (col_of_row[start] >= 0) continue;  // warp-uniform: written before the last sync
    for (int64_t i = lane; i < n; i += kWarp) row_seen[i] = 0;
    for (int64_t j = lane; j < m; j += kWarp) shortest[j] = INFINITY, path[j] = -1, col_seen[j] = 0;
    __syncwarp();
    int64_t row = start, sink = -1;
    double min_dist = 0.0;
    while (sink < 0) {
      if (lane == 0) row_seen[row] = 1;
      Candidate best{INFINITY, 1, m};
      for (int64_t j = lane; j < m; j += kWarp) {
        if (col_seen[j]) continue;
        const double reduced = min_dist + at(row, j) - u[row] - v[j];
        if (reduced < shortest[j]) {
          path[j] = row;
          shortest[j] = reduced;
        }
        const Candidate c{shortest[j], row_of_col[j] >= 0 ? 1 : 0, j};
        if (better(c, best)) best = c;
      }
      best = warp_min(best);
      __syncwarp();
      if (best.column >= m || !isfinite(best.distance)) break;  // unreachable with finite costs
      min_dist = best.distance;
      if (lane == 0) col_seen[best.column] = 1;
      if (best.taken)
        row = row_of_col[best.column];
      else
        sink = best.column;
      __syncwarp();
    }
    if (sink < 0) break;
    for (int64_t i = lane; i < n; i += kWarp)
      if (row_seen[i] && i != start) u[i] += min_dist - shortest[col_of_row[i]];
    for (int64_t j = lane; j < m; j += kWarp)
      if (col_seen[j]) v[j] -= min_dist - shortest[j];
    __syncwarp();
    if (lane == 0) {
      u[start] += min_dist;
      for (int64_t j = sink;;) {
        const int64_t i = path[j];
        row_of_col[j] = i;
        const int64_t previous = col_of_row[i];
        col_of_row[i] = j;
        j = previous;
        if (i == start) break;
      }
    }
    __syncwarp();
  }

  // Pairs sorted by the original row, then padding.
  if (lane == 0) {
    int64_t* r = rows_out + b * pairs;
    int64_t* c = cols_out + b * pairs;
    int64_t p = 0;
    if (!transposed) {
      for (int64_t i = 0; i < n; ++i, ++p) r[p] = i, c[p] = col_of_row[i];
    } else {
      for (int64_t i = 0; i < m; ++i)
        if (row_of_col[i] >= 0) r[p] = i, c[p] = row_of_col[i], ++p;
    }
    for (; p < pairs; ++p) r[p] = -1, c[p] = -1;
  }
}

}  // namespace

template <typename T>
cudaError_t linear_assignment(const T* cost, const int64_t* row_counts, const int64_t* col_counts,
                              int64_t batch, int64_t rows, int64_t cols, bool maximize,
                              int64_t* rows_out, int64_t* cols_out, double* workspace_double,
                              int64_t* workspace_index, cudaStream_t stream) {
  if (batch == 0) return cudaSuccess;
  const int64_t blocks = (batch + kWarpsPerBlock - 1) / kWarpsPerBlock;
  assign_kernel<T><<<static_cast<unsigned>(blocks), kWarp * kWarpsPerBlock, 0, stream>>>(
      cost, row_counts, col_counts, batch, rows, cols, maximize, rows_out, cols_out,
      workspace_double, workspace_index);
  return cudaGetLastError();
}

template cudaError_t linear_assignment<float>(const float*, const int64_t*, const int64_t*,
                                              int64_t, int64_t, int64_t, bool, int64_t*,
                                              int64_t*, double*, int64_t*, cudaStream_t);
template cudaError_t linear_assignment<double>(const double*, const int64_t*, const int64_t*,
                                               int64_t, int64_t, int64_t, bool, int64_t*,
                                               int64_t*, double*, int64_t*, cudaStream_t);

}  // namespace kinema::ops::cuda
