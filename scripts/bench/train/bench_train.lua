-- One recipe's training step, timed: the model, loader, optimizer, scheduler
-- and loss built exactly as kinema.recipe.main builds them, W warm-up steps,
-- then N timed optimizer steps through kinema.train.Trainer:train_step. Prints
-- one JSON line (run.py collects them).
--
--   build/kinema run scripts/bench/train/bench_train.lua --recipe stoa --preset tiny \
--       [--steps 10] [--warmup 2] [--batch 24] [--threads 2] [--workers 2] [--data DIR] [--device cpu]
--       [--prefetch_next_epoch false]
--
-- Presets: 'tiny' = the recipe's --tiny preset; 'base' = the recipe's paper
-- defaults (frames, image size, model sizes) with only the batch overridden.
-- The data are the synthetic benchmark (generated under --data on first use,
-- 48 train / 8 test videos). Its vocabulary has a few dozen words; for 'base'
-- the model is built with the paper's vocabulary size (the models' default
-- text.vocab_size: CLIP 49408, BERT 30522) so that parameter counts, the
-- MLM head and the optimizer are paper-sized (--paper_vocab false: the
-- synthetic vocabulary, as recipe.main would). Token ids stay those of the
-- synthetic tokenizer, valid for either size. --prefetch_next_epoch false
-- gives the training loader a cold start at every epoch boundary, as before
-- the loader option existed (the "before" of bench/train's data-wait figures).
local torch = require 'torch'
local cli = require 'kinema.cli'
local kinema = require 'kinema'
local recipe = require 'kinema.recipe'
local sys = require 'kinema.sys'
local json = require 'kinema.json'
local stats = require 'kinema.eval.stats'

local opts = {recipe = 'baseline', preset = 'tiny', steps = 10, warmup = 2, batch = 0, threads = 2, workers = -1,
              data = 'runs/bench_train_synth', device = 'cpu', paper_vocab = 'auto', prefetch_next_epoch = 'true'}
cli.parse_flags('bench_train.lua', arg or {}, opts)
if opts.preset ~= 'tiny' and opts.preset ~= 'base' then
  error("bench_train.lua: --preset must be 'tiny' or 'base', got '" .. opts.preset .. "'", 0)
end
if opts.steps < 1 or opts.warmup < 0 then error('bench_train.lua: need --steps >= 1 and --warmup >= 0', 0) end
if opts.threads > 0 then torch.set_num_threads(opts.threads) end
if opts.prefetch_next_epoch ~= 'true' and opts.prefetch_next_epoch ~= 'false' then
  error("bench_train.lua: --prefetch_next_epoch must be 'true' or 'false'", 0)
end
if opts.prefetch_next_epoch == 'false' then
  local data = kinema.data
  local make_loader = data.Loader
  data.Loader = function(ds, o)
    o.prefetch_next_epoch = false
    return make_loader(ds, o)
  end
end

local spec = require('kinema.recipes.' .. opts.recipe)
local defaults = recipe.merge(recipe.common, spec.defaults or {})
local cfg = recipe.parse_args(opts.preset == 'tiny' and {'--tiny'} or {}, defaults, spec.presets)
cfg.data.root = opts.data
cfg.data.synth = {num_train = 48, num_test = 8}
cfg.device = opts.device
-- base: the paper's batch does not fit a small CPU; 2 clips unless told otherwise
local batch = opts.batch > 0 and opts.batch or (opts.preset == 'tiny' and cfg.train.batch_size or 2)
cfg.train.batch_size = batch
if opts.workers >= 0 then cfg.train.num_workers = opts.workers end
cfg.train.max_steps = opts.warmup + opts.steps

torch.manual_seed(cfg.seed + 1)
local tok = require('kinema.recipe_data').tokenizer_or_synth(cfg)
local build_tok = tok
local paper_vocab = opts.paper_vocab == 'true' or (opts.paper_vocab == 'auto' and opts.preset == 'base')
if paper_vocab then
  local model_name = opts.recipe == 'baseline' and 'stoa' or opts.recipe
  local size = math.max(tok:vocab_size(), require('kinema.models.' .. model_name).defaults.text.vocab_size)
  build_tok = setmetatable({vocab_size = function() return size end}, {__index = function(_, k)
    return function(_, ...) return tok[k](tok, ...) end
  end})
end
local model = spec.build(cfg, build_tok)
if cfg.device ~= 'cpu' then model:to(cfg.device) end
local parts = recipe.training_parts(spec, cfg, model, tok)
local loader = parts.loader
local trainer = kinema.train.Trainer{
  model = model, optimizer = parts.optimizer, scheduler = parts.scheduler, loader = loader, loss = parts.loss,
  max_steps = cfg.train.max_steps, accumulate = cfg.train.accumulate, clip_grad = cfg.train.clip_grad,
  device = cfg.device, amp = cfg.train.amp, progress = false, plot = false,
}

local params = 0
for _, p in ipairs(model:parameters()) do params = params + p:numel() end
local rss_built = sys.rss_mb()

for _ = 1, opts.warmup do trainer:train_step() end
for k in pairs(trainer.timing) do trainer.timing[k] = 0 end

local step_s, cpu_s, loss = {}, {}, nil
for s = 1, opts.steps do
  local t0, c0 = sys.clock(), sys.cpu_clock()
  loss = trainer:train_step()
  step_s[s], cpu_s[s] = sys.clock() - t0, sys.cpu_clock() - c0
end
local peak = sys.peak_rss_mb()
loader:close()

-- The median of a list of numbers (kinema.eval.stats.quantile at q = 0.5).
local function median(list) return stats.quantile(torch.tensor(list, {dtype = torch.float64}), 0.5) end

local tm, phases = trainer.timing, 0
for _, v in pairs(tm) do phases = phases + v end
local function pct(key) return math.floor(1000 * tm[key] / phases + 0.5) / 10 end
local function round(x, digits) local m = 10 ^ digits; return math.floor(x * m + 0.5) / m end
local total_s = 0
for _, v in ipairs(step_s) do total_s = total_s + v end
local step_median = median(step_s)
print(json.encode({
  impl = 'kinema', recipe = opts.recipe, preset = opts.preset, batch = batch, frames = cfg.frames,
  image_size = cfg.image_size, regions = cfg.regions, threads = torch.get_num_threads(),
  workers = cfg.train.num_workers, prefetch_next_epoch = opts.prefetch_next_epoch == 'true', data = opts.data,
  device = cfg.device, steps = opts.steps, warmup = opts.warmup, params = params,
  clips_per_s = round(batch / step_median, 6), clips_per_s_mean = round(batch * opts.steps / total_s, 6),
  step_s_median = round(step_median, 4), cpu_s_median = round(median(cpu_s), 4),
  -- the step without data wait, the time a peer on random tensors measures
  compute_s_per_step = round((tm.forward + tm.backward + tm.optimizer) / opts.steps, 4),
  split_pct = {data = pct('data'), forward = pct('forward'), backward = pct('backward'),
               optimizer = pct('optimizer')},
  step_times_s = (function() local r = {}; for k, v in ipairs(step_s) do r[k] = round(v, 4) end; return r end)(),
  rss_built_mb = round(rss_built, 1), peak_rss_mb = round(peak, 1), last_loss = round(loss, 4),
  vocab_size = build_tok:vocab_size(),
}))
