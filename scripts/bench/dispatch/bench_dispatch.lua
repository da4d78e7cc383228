-- Per-op cost of the Lua -> dispatcher bridge: the same loops as
-- bench_dispatch.py, printed as JSON lines {case, us_per_iter}.
-- Usage: kinema run scripts/bench/dispatch/bench_dispatch.lua [iterations]
local nn = require('kinema').nn
local optim = require('kinema').optim

local iters = tonumber(arg[1]) or 100000
torch.set_num_threads(1)

local function clock()  -- CPU time, as time.process_time() on the Python side
  return os.clock()
end

local function report(case, seconds, n)
  print(string.format('{"case": "%s", "us_per_iter": %.4f}', case, seconds / n * 1e6))
end

for _, size in ipairs({{1}, {64, 64}}) do
  local a, b, c = torch.randn(size), torch.randn(size), torch.randn(size)
  local name = #size == 1 and '1-element' or '64x64'
  for _ = 1, 1000 do local _ = a * b + c end
  local t0 = clock()
  for _ = 1, iters do local _ = a * b + c end
  report('a*b+c ' .. name .. ' (2 ops)', clock() - t0, iters)
  t0 = clock()
  for _ = 1, iters do local _ = torch.add(a, b) end
  report('torch.add ' .. name, clock() - t0, iters)
  t0 = clock()
  for _ = 1, iters do local _ = a:mul(b) end
  report('a:mul(b) ' .. name, clock() - t0, iters)
end

-- A small MLP training step: 64 -> 256 -> 256 -> 10, batch 32, AdamW.
torch.manual_seed(0)
local model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
local opt = optim.AdamW(model, {lr = 1e-3})
local x, y = torch.randn(32, 64), torch.randint(0, 10, {32})
local function step()
  opt:zero_grad()
  local loss = torch.cross_entropy_loss(model(x), y)
  loss:backward()
  opt:step()
end
for _ = 1, 50 do step() end
local steps = math.max(200, math.floor(iters / 100))
local t0 = clock()
for _ = 1, steps do step() end
report('MLP train step', clock() - t0, steps)
