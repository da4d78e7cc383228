-- Statistics for comparing trained models: bootstrap confidence intervals over
-- test items and seeds, the paired bootstrap test and McNemar's exact test.
--
-- Outcomes are [S, N] tensors (or Lua arrays of S arrays of N numbers): S
-- seeds (independent training runs) by N test items (a query's hit 0/1, a
-- video's accuracy over its hard-negative pairs, ...), the same items in the
-- same order for every seed. A resample draws S seeds and N items with
-- replacement (one item draw shared by the drawn seeds) and takes the mean.
-- Resamples use their own seed (opts.seed, default 0) and leave the default
-- generator's state as it was.
local torch = require 'torch'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.stats: ')

local function as_matrix(x, what)
  if not torch.is_tensor(x) then
    check(type(x) == 'table' and #x > 0, "'%s' must be a [S, N] tensor or a non-empty array of arrays", what)
    if type(x[1]) ~= 'table' then x = {x} end
    x = torch.tensor(x, {dtype = torch.float64})
  end
  x = x:detach():to(torch.float64):cpu()
  if x:dim() == 1 then x = x:view({1, -1}) end
  check(x:dim() == 2 and x:size(0) > 0 and x:size(1) > 0, "'%s' must be [S, N] with S, N > 0, got %s", what,
        tostring(x.shape))
  check(not x:isnan():any():item(), "'%s' contains NaN", what)
  return x
end

-- Runs fn with the default CPU generator seeded, restoring its state after.
local function with_seed(seed, fn)
  local saved = torch.get_device_rng_state('cpu')
  torch.manual_seed(seed)
  local ok, a, b = pcall(fn)
  torch.set_device_rng_state('cpu', saved)
  if not ok then error(a, 0) end
  return a, b
end

-- The q-quantile (q in [0, 1]) of a 1-d tensor with linear interpolation
-- between the order statistics (numpy's default 'linear' method).
function M.quantile(values, q)
  local v = torch.sort(values:reshape({-1}):to(torch.float64))
  local n = v:size(0)
  local pos = q * (n - 1)
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, n - 1)
  local frac = pos - lo
  return v[lo]:item() * (1 - frac) + v[hi]:item() * frac
end

-- Resampled means [R] of every matrix in `list` (all [S, N]), the same seed
-- and item draws for each (paired).
local function resampled_means(list, resamples, seed)
  local S, N = list[1]:size(0), list[1]:size(1)
  return with_seed(seed, function()
    local seeds = torch.randint(S, {resamples, S}, {dtype = torch.int64})
    local items = torch.randint(N, {resamples, N}, {dtype = torch.int64})
    -- weights [R, S]: how often each seed was drawn, over S
    local w = torch.zeros({resamples, S}, {dtype = torch.float64})
    w:scatter_add_(1, seeds, torch.ones({resamples, S}, {dtype = torch.float64}))
    w = w / S
    local out = {}
    for i, x in ipairs(list) do
      local per_item = torch.matmul(w, x)                  -- [R, N]: mean over the drawn seeds
      out[i] = per_item:gather(1, items):mean(1)           -- [R]
    end
    return out
  end)
end

-- bootstrap(outcomes, {resamples = 2000, level = 0.95, seed = 0}) ->
-- {mean =, lo =, hi =}: the mean over seeds and items and its percentile
-- interval.
function M.bootstrap(outcomes, opts)
  opts = opts or {}
  local x = as_matrix(outcomes, 'outcomes')
  local R, level = opts.resamples or 2000, opts.level or 0.95
  check(R >= 10, "option 'resamples' must be at least 10, got %s", tostring(R))
  local means = resampled_means({x}, R, opts.seed or 0)[1]
  local alpha = (1 - level) / 2
  return {mean = x:mean():item(), lo = M.quantile(means, alpha), hi = M.quantile(means, 1 - alpha)}
end

-- paired_bootstrap(a, b, opts) -> {diff =, lo =, hi =, p =}: the mean of a
-- minus the mean of b (same seeds count and items), its percentile interval,
-- and the two-sided bootstrap p-value 2 min(P*(d <= 0), P*(d >= 0)) (the
-- smallest 1 - level whose interval still excludes 0), at least 1/resamples.
function M.paired_bootstrap(a, b, opts)
  opts = opts or {}
  a, b = as_matrix(a, 'a'), as_matrix(b, 'b')
  check(a:size(1) == b:size(1), "'a' and 'b' must hold the same items: %d vs %d", a:size(1), b:size(1))
  local R, level = opts.resamples or 2000, opts.level or 0.95
  -- unequal seed counts: pair seed k of a with seed k of b on the first min(S) seeds
  local S = math.min(a:size(0), b:size(0))
  a, b = a:narrow(0, 0, S), b:narrow(0, 0, S)
  local d = a - b
  local means = resampled_means({d}, R, opts.seed or 0)[1]
  local alpha = (1 - level) / 2
  local below = means:le(0):to(torch.float64):mean():item()
  local above = means:ge(0):to(torch.float64):mean():item()
  local p = math.max(math.min(1, 2 * math.min(below, above)), 1 / R)
  return {diff = d:mean():item(), lo = M.quantile(means, alpha), hi = M.quantile(means, 1 - alpha), p = p,
          resamples = R}
end

-- log of the binomial coefficient.
local function log_choose(n, k)
  local s = 0
  for i = 1, k do s = s + math.log(n - k + i) - math.log(i) end
  return s
end

-- mcnemar(a, b) -> {p =, a_only =, b_only =}: McNemar's exact test on paired
-- 0/1 outcomes (every seed's items pooled): under the null the discordant
-- pairs split Binomial(n, 1/2); p = min(1, 2 P(X <= min(a_only, b_only))).
function M.mcnemar(a, b)
  a, b = as_matrix(a, 'a'):ne(0), as_matrix(b, 'b'):ne(0)
  check(tostring(a.shape) == tostring(b.shape), "'a' and 'b' must have the same shape: %s vs %s", tostring(a.shape),
        tostring(b.shape))
  local a_only = a:logical_and(b:logical_not()):sum():item()
  local b_only = b:logical_and(a:logical_not()):sum():item()
  local n, k = a_only + b_only, math.min(a_only, b_only)
  local tail = 0
  for i = 0, k do tail = tail + math.exp(log_choose(n, i) - n * math.log(2)) end
  return {p = n == 0 and 1 or math.min(1, 2 * tail), a_only = a_only, b_only = b_only}
end

-- Stacks the per-seed outcome vectors of one metric ([N] each) into [S, N];
-- nil when a run lacks them.
local function stack(runs, key)
  local rows = {}
  for i, r in ipairs(runs) do
    local v = r.items and r.items[key]
    if v == nil then return nil end
    rows[i] = v:reshape({1, -1}):to(torch.float64)
  end
  if #rows == 0 then return nil end
  return torch.cat(rows, 0)
end

-- aggregate(runs, opts) over the runs of one model with different seeds
-- (runs[i] = {metrics = {name = number}, items = {name = [N] outcomes in
-- [0, 1]}}): per metric {mean =, seeds =, lo =, hi =}, the mean over seeds;
-- with items, the bootstrap interval (in the metric's units: items times
-- `scale`, 100 for the percentages) and the mean recomputed from them; without,
-- the range over the seeds.
function M.aggregate(runs, opts)
  opts = opts or {}
  local scale = opts.scale or 100
  local out = {}
  check(#runs > 0, 'aggregate needs at least one run')
  for name in pairs(runs[1].metrics) do
    local values = {}
    for i, r in ipairs(runs) do values[i] = r.metrics[name] end
    if #values == #runs then
      local sum, lo, hi = 0, math.huge, -math.huge
      for _, v in ipairs(values) do sum, lo, hi = sum + v, math.min(lo, v), math.max(hi, v) end
      local entry = {mean = sum / #values, lo = lo, hi = hi, seeds = #values, interval = 'range'}
      local x = stack(runs, name)
      if x then
        local b = M.bootstrap(x, opts)
        entry.mean, entry.lo, entry.hi, entry.interval = b.mean * scale, b.lo * scale, b.hi * scale, 'bootstrap'
      end
      out[name] = entry
    end
  end
  return out
end

-- compare(runs, baseline_runs, metric_pairs, opts): paired bootstrap and McNemar
-- tests of a model against a baseline on the same items; metric_pairs maps each
-- metric of `runs` to the baseline's metric it is compared with (e.g.
-- {hard_match_noun = 'hard_noun'}). Returns {metric = {diff =, lo =, hi =, p =,
-- mcnemar_p =}} (diff and interval scaled like aggregate's), for the metrics
-- both sides have outcomes for.
function M.compare(runs, baseline_runs, metric_pairs, opts)
  opts = opts or {}
  local scale = opts.scale or 100
  local out = {}
  for name, base_name in pairs(metric_pairs) do
    local a, b = stack(runs, name), stack(baseline_runs, base_name)
    if a and b then
      check(a:size(1) == b:size(1), "metric '%s' has %d items, the baseline's '%s' %d", name, a:size(1), base_name,
            b:size(1))
      local r = M.paired_bootstrap(a, b, opts)
      local S = math.min(a:size(0), b:size(0))
      local binary = a:eq(0):logical_or(a:eq(1)):all():item() and b:eq(0):logical_or(b:eq(1)):all():item()
      out[name] = {diff = r.diff * scale, lo = r.lo * scale, hi = r.hi * scale, p = r.p,
                   mcnemar_p = binary and M.mcnemar(a:narrow(0, 0, S), b:narrow(0, 0, S)).p or nil}
    end
  end
  return out
end

return M
