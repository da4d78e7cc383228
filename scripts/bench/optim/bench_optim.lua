-- One optimizer's step on a paper-size parameter set, timed. Prints one JSON
-- line (run.py collects them).
--
--   build/kinema run scripts/bench/optim/bench_optim.lua --recipe demovlp --shapes_out FILE
--       writes the parameter shapes of the recipe's base model (paper defaults,
--       paper vocabulary) as JSON and exits
--   build/kinema run scripts/bench/optim/bench_optim.lua --shapes FILE --impl fused|lua
--       [--steps 5] [--warmup 1] [--threads 1]
--       AdamW (lr 1e-4, weight decay 0.01) over float32 tensors of those
--       shapes with random gradients: median step time, wall and process CPU
--   build/kinema run scripts/bench/optim/bench_optim.lua --stream_mb 512 [--threads 1]
--       memory bandwidth: median time of a:add_(b) on two buffers that size
--       (read a and b, write a: 12 bytes per float; like AdamW's p, m and v,
--       every line written was read just before, so no write-allocate traffic)
local torch = require 'torch'
local cli = require 'kinema.cli'
local kinema = require 'kinema'
local sys = require 'kinema.sys'
local json = require 'kinema.json'
local stats = require 'kinema.eval.stats'

local opts = {recipe = '', shapes_out = '', shapes = '', impl = 'fused', steps = 5, warmup = 1, threads = 1,
              stream_mb = 0}
cli.parse_flags('bench_optim.lua', arg or {}, opts)
if opts.threads > 0 then torch.set_num_threads(opts.threads) end

-- The median of a list of numbers (kinema.eval.stats.quantile at q = 0.5).
local function median(list) return stats.quantile(torch.tensor(list, {dtype = torch.float64}), 0.5) end

local function round(x, digits) local m = 10 ^ digits; return math.floor(x * m + 0.5) / m end

local function write_file(path, text)
  local f = assert(io.open(path, 'w'))
  assert(f:write(text))
  assert(f:close())
end

local function read_file(path)
  local f = assert(io.open(path, 'r'))
  local text = f:read('*a')
  f:close()
  return text
end

if opts.shapes_out ~= '' then
  -- The base model exactly as bench/train builds it for --preset base.
  local recipe = require 'kinema.recipe'
  local spec = require('kinema.recipes.' .. opts.recipe)
  local cfg = recipe.parse_args({}, recipe.merge(recipe.common, spec.defaults or {}), spec.presets)
  cfg.data.root = 'runs/bench_train_synth'
  cfg.data.synth = {num_train = 48, num_test = 8}
  local tok = require('kinema.recipe_data').tokenizer_or_synth(cfg)
  local model_name = opts.recipe == 'baseline' and 'stoa' or opts.recipe
  local size = math.max(tok:vocab_size(), require('kinema.models.' .. model_name).defaults.text.vocab_size)
  local build_tok = setmetatable({vocab_size = function() return size end}, {__index = function(_, k)
    return function(_, ...) return tok[k](tok, ...) end
  end})
  local model = spec.build(cfg, build_tok)
  local shapes, count = {}, 0
  for k, p in ipairs(model:parameters()) do
    local s = {}
    for d = 0, p:dim() - 1 do s[d + 1] = p:size(d) end
    shapes[k] = s
    count = count + p:numel()
  end
  write_file(opts.shapes_out, json.encode({recipe = opts.recipe, params = count, shapes = shapes}))
  print(json.encode({recipe = opts.recipe, params = count, tensors = #shapes}))
  return
end

if opts.stream_mb > 0 then
  local n = math.floor(opts.stream_mb * 1024 * 1024 / 4)
  local a, b = torch.randn(n), torch.randn(n)
  a:add_(b)
  local walls, cpus = {}, {}
  for k = 1, 7 do
    local t0, c0 = sys.clock(), sys.cpu_clock()
    a:add_(b)
    walls[k], cpus[k] = sys.clock() - t0, sys.cpu_clock() - c0
  end
  local wall, cpu = median(walls), median(cpus)
  print(json.encode({impl = 'stream_add', threads = torch.get_num_threads(), bytes = 12 * n,
                     wall_s_median = round(wall, 5), cpu_s_median = round(cpu, 5),
                     gb_per_s = round(12 * n / wall / 1e9, 3), gb_per_cpu_s = round(12 * n / cpu / 1e9, 3)}))
  return
end

assert(opts.shapes ~= '', 'bench_optim.lua: give --shapes FILE (from --shapes_out) or --stream_mb N')
assert(opts.impl == 'fused' or opts.impl == 'lua', "bench_optim.lua: --impl must be 'fused' or 'lua'")
local set = json.decode(read_file(opts.shapes))
torch.manual_seed(0)
local params, count = {}, 0
for k, s in ipairs(set.shapes) do
  local p = kinema.nn.Parameter(torch.randn(s) * 0.02)
  p.grad = torch.randn(s) * 1e-3
  params[k] = p
  count = count + p:numel()
end
local opt = kinema.optim.AdamW(params, {lr = 1e-4, weight_decay = 0.01, fused = opts.impl == 'fused'})
for _ = 1, opts.warmup do opt:step() end
local times, cpu_times = {}, {}
for k = 1, opts.steps do
  local t0, c0 = sys.clock(), sys.cpu_clock()
  opt:step()
  times[k], cpu_times[k] = sys.clock() - t0, sys.cpu_clock() - c0
end
local rounded = {}
for k, v in ipairs(times) do rounded[k] = round(v, 4) end
print(json.encode({impl = 'kinema_' .. opts.impl, recipe = set.recipe, params = count, tensors = #params,
                   threads = torch.get_num_threads(), steps = opts.steps, warmup = opts.warmup,
                   step_s_median = round(median(times), 4), cpu_s_median = round(median(cpu_times), 4),
                   step_times_s = rounded,
                   peak_rss_mb = round(sys.peak_rss_mb(), 1)}))
