-- Collective costs through kinema.dist on 2 ranks (Gloo, loopback): the same
-- cases as bench_dist.py. Rank 0 prints JSON lines {case, ms} (median wall
-- time of `iters` repetitions; every repetition starts after a barrier).
-- Usage: kinema launch --nproc 2 scripts/bench/dist/bench_dist.lua [iters]
local dist = require 'kinema.dist'
local sys = require 'kinema.sys'
local torch = require 'torch'
local stats = require 'kinema.eval.stats'

local iters = tonumber(arg[1]) or 20
torch.set_num_threads(1)
assert(dist.init(), 'run under kinema launch --nproc 2')

-- The median of a list of numbers (kinema.eval.stats.quantile at q = 0.5).
local function median(list) return stats.quantile(torch.tensor(list, {dtype = torch.float64}), 0.5) end

local function bench(case, fn)
  fn()  -- warm-up (connections, allocations)
  local times = {}
  for i = 1, iters do
    dist.barrier()
    local t0 = sys.clock()
    fn()
    times[i] = (sys.clock() - t0) * 1e3
  end
  if dist.is_main() then print(string.format('{"case": "%s", "ms": %.4f}', case, median(times))) end
end

for _, n in ipairs({1024, 262144, 4194304}) do
  local t = torch.randn(n)
  bench(string.format('all_reduce %d floats', n), function() dist.all_reduce(t, 'sum') end)
end

-- the contrastive pattern: gather [B,d] embeddings, use them, backward
local x = torch.randn(64, 512, {requires_grad = true})
bench('all_gather [64,512] fwd+bwd', function()
  local g = dist.all_gather(x)
  g:sum():backward()
  x.grad = nil
end)

-- gradient averaging over 50 tensors, 4.2M floats in all (25 MB buckets)
torch.manual_seed(0)
local params = {}
for i = 1, 50 do
  local p = torch.randn(i % 2 == 0 and {256, 320} or {320}, {requires_grad = true})
  p.grad = torch.randn(p:size())
  params[i] = p
end
for i = 1, 4 do
  local p = torch.randn(1024, 1024, {requires_grad = true})
  p.grad = torch.randn(1024, 1024)
  params[#params + 1] = p
end
bench('average_gradients 54 tensors 6.3M floats', function() dist.average_gradients(params) end)
dist.destroy()
