-- One recipe's training step, timed: the model, loader, optimizer, scheduler
-- and loss built exactly as kinema.recipe.main builds them, W warm-up steps,
-- then N timed optimizer steps through kinema.train.Trainer:train_step. Prints
-- one JSON line (run.py collects them).
--
--   build/kinema run scripts/bench/train/bench_train.lua --recipe stoa --preset tiny \
--       [--steps 10] [--warmup 2] [--batch 24] [--threads 2] [--workers 2] [--data DIR] [--device cpu]
--       [--prefetch_next_epoch false] [--amp bf16|fp16|none] [--inputs loader|tensors]
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
--
-- --device cuda: the Trainer moves each batch there and runs forward + loss
-- under the recipe's autocast (train.amp, bf16; --amp overrides, 'none' =
-- float32); every timed phase ends with a device synchronisation and
-- peak_gpu_mb is torch.cuda.max_memory_allocated over the timed steps (reset
-- after warm-up). --inputs tensors replaces the loader by one batch of random
-- tensors of the shapes and ranges the recipe's loader yields (video,
-- detections, tokens, MLM / PLM / noun / verb fields; STOA and the baseline),
-- built once and given at every step: no video decoding (a build without
-- FFmpeg, e.g. the GPU bundle's) and no data wait, like the PyTorch peer.
local torch = require 'torch'
local cli = require 'kinema.cli'
local kinema = require 'kinema'
local recipe = require 'kinema.recipe'
local sys = require 'kinema.sys'
local json = require 'kinema.json'
local stats = require 'kinema.eval.stats'

local opts = {recipe = 'baseline', preset = 'tiny', steps = 10, warmup = 2, batch = 0, threads = 2, workers = -1,
              data = 'runs/bench_train_synth', device = 'cpu', paper_vocab = 'auto', prefetch_next_epoch = 'true',
              amp = 'recipe', inputs = 'loader'}
cli.parse_flags('bench_train.lua', arg or {}, opts)
if opts.preset ~= 'tiny' and opts.preset ~= 'base' then
  error("bench_train.lua: --preset must be 'tiny' or 'base', got '" .. opts.preset .. "'", 0)
end
if opts.steps < 1 or opts.warmup < 0 then error('bench_train.lua: need --steps >= 1 and --warmup >= 0', 0) end
if opts.threads > 0 then torch.set_num_threads(opts.threads) end
if opts.prefetch_next_epoch ~= 'true' and opts.prefetch_next_epoch ~= 'false' then
  error("bench_train.lua: --prefetch_next_epoch must be 'true' or 'false'", 0)
end
if opts.amp ~= 'recipe' and opts.amp ~= 'bf16' and opts.amp ~= 'fp16' and opts.amp ~= 'none' then
  error("bench_train.lua: --amp must be 'bf16', 'fp16' or 'none', got '" .. opts.amp .. "'", 0)
end
local tensor_inputs = opts.inputs == 'tensors'
if not tensor_inputs and opts.inputs ~= 'loader' then
  error("bench_train.lua: --inputs must be 'loader' or 'tensors', got '" .. opts.inputs .. "'", 0)
end
if tensor_inputs and opts.recipe ~= 'stoa' and opts.recipe ~= 'baseline' then
  error("bench_train.lua: --inputs tensors builds the batches of 'stoa' and 'baseline', not '" .. opts.recipe .. "'", 0)
end
local cuda = opts.device:match('^cuda') ~= nil
if cuda and not torch.cuda.is_available() then
  error('bench_train.lua: --device ' .. opts.device .. ' but no CUDA device is available', 0)
end
if opts.prefetch_next_epoch == 'false' and not tensor_inputs then
  local data = kinema.data
  local make_loader = data.Loader
  data.Loader = function(ds, o)
    o.prefetch_next_epoch = false
    return make_loader(ds, o)
  end
end

-- One batch of random tensors with the fields, shapes, dtypes and value ranges
-- of the batches kinema.data.Loader gives the recipe (o: the loader options
-- recipe_data.loader builds), from math.random (seeded) and torch's generator.
local function random_batch(o, vocab)
  local B, T, S = o.batch_size, o.num_frames, o.size
  local L, K = o.text.max_len, o.detections and o.detections.k or 1
  local max_nouns, max_verbs = o.text.max_nouns or 8, o.text.max_verbs or 4
  local corner = torch.rand({B, T, K, 2}) * 0.5
  local batch = {
    video = torch.randn({B, T, 3, S, S}),
    boxes = torch.cat({corner, corner + 0.1 + torch.rand({B, T, K, 2}) * 0.4}, -1),
    -- a detector sees the same objects in every frame: one class per box slot
    classes = torch.randint(0, 1600, {B, 1, K}):expand({B, T, K}):contiguous(),
    scores = torch.rand({B, T, K}) * 0.7 + 0.3,
    id = {}, caption = {},
  }
  local ids, mask, mlm_ids, mlm_labels, plm_split, plm_targets = {}, {}, {}, {}, {}, {}
  local nouns, verb_positions, verb_ids = {}, {}, {}
  for b = 1, B do
    local n = math.random(math.ceil(L / 2), L)  -- [CLS] words [EOT], then padding
    ids[b], mask[b], mlm_ids[b], mlm_labels[b], plm_targets[b] = {}, {}, {}, {}, {}
    plm_split[b] = math.random(2, n - 2)
    for p = 1, L do
      local id = p > n and 0 or p == n and vocab - 1 or math.random(1, vocab - 2)  -- CLIP: [EOT] has the largest id
      ids[b][p], mask[b][p] = id, p <= n
      local masked = p == 2 or (p > 2 and p < n and math.random() < 0.15)  -- at least one MLM target per caption
      mlm_ids[b][p], mlm_labels[b][p] = masked and 1 or id, masked and id or -100
      plm_targets[b][p] = (p > plm_split[b] and p <= n) and id or -100
    end
    nouns[b], verb_positions[b], verb_ids[b] = {}, {}, {}
    for j = 1, max_nouns do nouns[b][j] = j <= 4 and j or -1 end  -- 0-based token positions 1..4
    for j = 1, max_verbs do
      verb_positions[b][j] = j <= 2 and 4 + j or -1
      verb_ids[b][j] = j <= 2 and ids[b][5 + j] or -1
    end
    batch.id[b], batch.caption[b] = 'random-' .. b, 'random tokens'
  end
  local function long(t) return torch.tensor(t, {dtype = torch.int64}) end
  batch.ids, batch.mask = long(ids), torch.tensor(mask, {dtype = torch.bool})
  batch.mlm_ids, batch.mlm_labels, batch.plm_split, batch.plm_targets = long(mlm_ids), long(mlm_labels),
                                                                          long(plm_split), long(plm_targets)
  batch.noun_positions, batch.verb_positions, batch.verb_ids = long(nouns), long(verb_positions), long(verb_ids)
  return batch
end

local spec = require('kinema.recipes.' .. opts.recipe)
local defaults = recipe.merge(recipe.common, spec.defaults or {})
local cfg = recipe.parse_args(opts.preset == 'tiny' and {'--tiny'} or {}, defaults, spec.presets)
cfg.data.root = opts.data
cfg.data.synth = not tensor_inputs and {num_train = 48, num_test = 8} or nil
cfg.device = opts.device
if opts.amp ~= 'recipe' then cfg.train.amp = opts.amp ~= 'none' and opts.amp or nil end
-- base: the paper's batch does not fit a small CPU; 2 clips unless told otherwise
local batch = opts.batch > 0 and opts.batch or (opts.preset == 'tiny' and cfg.train.batch_size or 2)
cfg.train.batch_size = batch
if opts.workers >= 0 then cfg.train.num_workers = opts.workers end
cfg.train.max_steps = opts.warmup + opts.steps

torch.manual_seed(cfg.seed + 1)
math.randomseed(cfg.seed + 1)
local paper_vocab = opts.paper_vocab == 'true' or (opts.paper_vocab == 'auto' and opts.preset == 'base')
local tok
if tensor_inputs then
  -- no synthetic benchmark to read a vocabulary from: a stand-in of 64 ids (the paper's size with paper_vocab)
  tok = {vocab_size = function() return 64 end}
else
  tok = require('kinema.recipe_data').tokenizer_or_synth(cfg)
end
local build_tok = tok
if paper_vocab then
  local model_name = opts.recipe == 'baseline' and 'stoa' or opts.recipe
  local size = math.max(tok:vocab_size(), require('kinema.models.' .. model_name).defaults.text.vocab_size)
  build_tok = setmetatable({vocab_size = function() return size end}, {__index = function(_, k)
    return function(_, ...) return tok[k](tok, ...) end
  end})
end
local model = spec.build(cfg, build_tok)
if cfg.device ~= 'cpu' then model:to(cfg.device) end
local parts
if tensor_inputs then
  -- recipe_data.loader hands the options it builds to kinema.data.Loader: keep them, yield the random batch
  local data = kinema.data
  local make_loader = data.Loader
  data.Loader = function(_, o)
    local batch = random_batch(o, build_tok:vocab_size())
    return {num_batches = function() return cfg.train.max_steps end, close = function() end,
            iter = function(_, _, start)
              local i = start or 0
              return function()
                i = i + 1
                if i <= cfg.train.max_steps then return batch end
              end
            end}
  end
  parts = recipe.training_parts(spec, cfg, model, tok, {})
  data.Loader = make_loader
else
  parts = recipe.training_parts(spec, cfg, model, tok)
end
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
if cuda then torch.cuda.reset_peak_memory_stats() end

local step_s, cpu_s, loss = {}, {}, nil
for s = 1, opts.steps do
  local t0, c0 = sys.clock(), sys.cpu_clock()
  loss = trainer:train_step()
  step_s[s], cpu_s[s] = sys.clock() - t0, sys.cpu_clock() - c0
end
local peak = sys.peak_rss_mb()
local peak_gpu = cuda and torch.cuda.max_memory_allocated() / 2 ^ 20 or nil
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
  -- the Trainer autocasts on CUDA only
  vocab_size = build_tok:vocab_size(), amp = cuda and cfg.train.amp or 'none', inputs = opts.inputs,
  peak_gpu_mb = peak_gpu and round(peak_gpu, 1),
}))
