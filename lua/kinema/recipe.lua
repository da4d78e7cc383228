-- kinema.recipe: what every pre-training / fine-tuning script shares, so a
-- recipe file only says what is its own (model, loader fields, objectives):
--
--   local recipe = require('kinema').recipe
--   recipe.main{
--     name = 'stoa', defaults = {...paper sizes...}, presets = {tiny = {...}},
--     build = function(cfg, tok) return model end,
--     loader_options = function(cfg, tok, split) return {text = ..., detections = ...} end,
--     inputs = function(model, batch, cfg) return objective_inputs end,   -- for losses.combine
--     embed = {video = function(model, batch) -> [B,E], text = function(model, ids, mask) -> [B,E],
--              score = optional score_fn for eval.similarity},
--   }
--
-- The command line overrides any config key: `--tiny` (a preset), `--key value`,
-- `--key=value`, dotted keys for nested tables (`--train.lr 1e-4`,
-- `--weights.ota 0`), `--no-key` for false. Unknown keys are refused by name.
-- With no data given, the built-in synthetic benchmark (kinema synth) is used,
-- generated on first use under data.root.
local torch = require 'torch'
local json = require 'kinema.json'
local sys = require 'kinema.sys'

local recipe = {}

local function fail(fmt, ...) error('kinema.recipe: ' .. string.format(fmt, ...), 0) end

local function deep_copy(t)
  if type(t) ~= 'table' then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = deep_copy(v) end
  return out
end

-- Overrides `into` with `from` key by key (nested records merge, arrays replace).
local function merge_into(into, from)
  for k, v in pairs(from or {}) do
    if type(v) == 'table' and #v == 0 and next(v) ~= nil and type(into[k]) == 'table' then
      merge_into(into[k], v)
    else
      into[k] = deep_copy(v)
    end
  end
  return into
end
recipe.merge = function(a, b) return merge_into(deep_copy(a), b) end

local function convert(text, old, key)
  if type(old) == 'number' then
    local n = tonumber(text)
    if n == nil then fail("--%s expects a number, got '%s'", key, text) end
    return n
  elseif type(old) == 'boolean' then
    if text == 'true' or text == '1' then return true end
    if text == 'false' or text == '0' then return false end
    fail("--%s expects true or false, got '%s'", key, text)
  elseif type(old) == 'table' then
    -- a list: comma separated values (numbers when they parse)
    local out = {}
    for item in text:gmatch('[^,]+') do out[#out + 1] = tonumber(item) or item end
    return out
  end
  if text == 'nil' or text == 'none' then return false end
  return tonumber(text) or text
end

local function set_key(cfg, key, text, allow_new)
  local node, parts = cfg, {}
  for part in key:gmatch('[^%.]+') do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local nxt = node[parts[i]]
    if type(nxt) ~= 'table' then
      if not allow_new then fail("unknown option --%s (no config table '%s')", key, parts[i]) end
      nxt = {}
      node[parts[i]] = nxt
    end
    node = nxt
  end
  local leaf = parts[#parts]
  if node[leaf] == nil and not allow_new then fail('unknown option --%s', key) end
  node[leaf] = text == true and true or convert(text, node[leaf], key)
end

-- parse_args(argv, defaults, presets) -> cfg. Presets apply first (in the order
-- given), then the explicit keys. Keys below a table listed in
-- defaults.open_keys (e.g. 'weights') may be new.
function recipe.parse_args(argv, defaults, presets)
  local cfg = deep_copy(defaults)
  local open = {}
  for _, k in ipairs(defaults.open_keys or {}) do open[k] = true end
  local pending = {}
  local i = 1
  argv = argv or {}
  while i <= #argv do
    local a = argv[i]
    local key, value = a:match('^%-%-([%w_%.%-]+)=(.*)$')
    if not key then key = a:match('^%-%-([%w_%.%-]+)$') end
    if not key then fail("unexpected argument '%s' (options are --key value)", a) end
    key = key:gsub('%-', '_')
    if presets and presets[key] then
      merge_into(cfg, presets[key])
      cfg.preset = key
    elseif key:match('^no_') and value == nil then
      pending[#pending + 1] = {key:sub(4), 'false'}
    else
      if value == nil then
        local nxt = argv[i + 1]
        if nxt == nil or nxt:match('^%-%-') then value = true else value = nxt; i = i + 1 end
      end
      pending[#pending + 1] = {key, value}
    end
    i = i + 1
  end
  for _, kv in ipairs(pending) do
    local top = kv[1]:match('^([^%.]+)')
    set_key(cfg, kv[1], kv[2], open[top])
  end
  return cfg
end

-- ---- data -------------------------------------------------------------------------

-- Generates the synthetic benchmark under root unless it is there already.
function recipe.ensure_synth(root, opts)
  local marker = io.open(root .. '/synth.json')
  if marker then marker:close(); return root end
  local data = require 'kinema.data'
  io.stderr:write(string.format('kinema: generating the synthetic benchmark in %s ...\n', root))
  local o = recipe.merge({out_dir = root}, opts or {})
  data.synth(o)
  return root
end

-- The dataset of a split, from cfg.data: {root=, format=, train=, test=,
-- video_root=, synth = {...}} (paths relative to root).
function recipe.dataset(cfg, split)
  local data = require 'kinema.data'
  local d = cfg.data
  if d.synth then recipe.ensure_synth(d.root, d.synth) end
  local function path(p) return (p:sub(1, 1) == '/' or d.root == '') and p or (d.root .. '/' .. p) end
  local ds = data.read{format = d.format, path = path(d[split]), video_root = path(d.video_root),
                      region_root = d.region_root and path(d.region_root) or nil,
                      detections_root = d.detections_root and path(d.detections_root) or nil,
                      meta = d[split .. '_meta'] and path(d[split .. '_meta']) or nil}
  return ds
end

function recipe.tokenizer(cfg)
  local data = require 'kinema.data'
  local d = cfg.data
  local p = d.vocab
  if p:sub(1, 1) ~= '/' then p = d.root .. '/' .. p end
  return data.tokenizer{kind = d.tokenizer or 'wordpiece', path = p}
end

-- Loader options shared by every recipe plus the recipe's own fields.
function recipe.loader(cfg, ds, split, own)
  local data = require 'kinema.data'
  local dist = require 'kinema.dist'
  local train_split = split == 'train'
  local opts = {batch_size = train_split and cfg.train.batch_size or cfg.eval.batch_size,
                num_workers = cfg.train.num_workers, shuffle = train_split, seed = cfg.seed,
                drop_last = train_split, num_frames = cfg.frames, size = cfg.image_size,
                normalize = cfg.normalize, random_caption = train_split,
                sampling = train_split and 'rand' or 'uniform'}
  if train_split then opts.rank, opts.world_size = dist.rank(), dist.world_size() end
  merge_into(opts, own or {})
  return data.Loader(ds, opts)
end

-- ---- distributed columns ----------------------------------------------------------

-- Bool masks travel as uint8 (Gloo has no bool all_gather).
local function gather(t)
  local dist = require 'kinema.dist'
  if t.dtype == torch.bool then return dist.all_gather(t:to(torch.uint8)):to(torch.bool) end
  return dist.all_gather(t)
end

-- Soft targets [B,B] of this rank's batch placed in the [B,G] global columns.
local function place_local_block(W, offset, G)
  local out = torch.zeros({W:size(0), G}, {dtype = W.dtype, device = W.device})
  out:narrow(1, offset, W:size(1)):copy_(W)
  return out
end

-- With several ranks, the contrastive objectives compare local rows with the
-- columns of every rank: adds the gathered *_all inputs (differentiable
-- all_gather) and rank_offset the objectives read (vtc, weighted_vtc, oac,
-- grounding, rwa), and widens cut-and-paste soft targets to [B, G]. A single
-- process returns inputs unchanged.
function recipe.gather_columns(inputs)
  local dist = require 'kinema.dist'
  if not dist.is_initialized() or dist.world_size() == 1 then return inputs end
  local rows = inputs.text_emb or inputs.video_emb or inputs.group_tokens
  if rows == nil then return inputs end
  local B = rows:size(0)
  local offset = dist.rank_offset(B)
  local G = B * dist.world_size()
  inputs.rank_offset = offset
  if inputs.group_tokens ~= nil and inputs.video_emb == nil then
    inputs.video_emb_all = gather(inputs.group_tokens:mean(1))  -- weighted VTC's video embedding
    inputs.group_tokens_all = gather(inputs.group_tokens)
  end
  for _, key in ipairs({'video_emb', 'text_emb', 'nouns', 'noun_mask', 'regions', 'region_mask', 'words',
                        'word_mask'}) do
    if inputs[key] ~= nil and torch.is_tensor(inputs[key]) then inputs[key .. '_all'] = gather(inputs[key]) end
  end
  for _, key in ipairs({'Wv', 'Wc'}) do
    if inputs[key] ~= nil then inputs[key] = place_local_block(inputs[key], offset, G) end
  end
  return inputs
end

-- ---- evaluation -------------------------------------------------------------------------

local function normalize(x) return x / x:norm(2, {-1}, true):clamp_min(1e-12) end

-- The hard-negative file (JSON Lines {videoid, positive, negatives = [{caption,
-- kind}]}) restricted to the videos in `ids`: rows (0-based gallery rows), the
-- positive captions, and per kind ('noun', 'verb') the negatives, the same
-- number for every video (per_video[kind]).
function recipe.read_hard_negatives(path, ids)
  local row_of = {}
  for i, id in ipairs(ids) do row_of[id] = i - 1 end
  local rows, positives, negatives, per_video = {}, {}, {noun = {}, verb = {}}, {}
  for line_no, r in ipairs(json.read_lines(path)) do
    if row_of[r.videoid] then
      rows[#rows + 1] = row_of[r.videoid]
      positives[#positives + 1] = r.positive
      local mine = {noun = {}, verb = {}}
      for _, n in ipairs(r.negatives or {}) do
        if mine[n.kind] then mine[n.kind][#mine[n.kind] + 1] = n.caption end
      end
      for kind, list in pairs(mine) do
        per_video[kind] = per_video[kind] or #list
        if #list ~= per_video[kind] then
          fail('%s:%d: video %s has %d %s negatives, the others %d', path, line_no, r.videoid, #list, kind,
               per_video[kind])
        end
        for _, c in ipairs(list) do negatives[kind][#negatives[kind] + 1] = c end
      end
    end
  end
  return rows, positives, negatives, per_video
end

-- The global embedding of embed's output: the tensor, or its .global field.
local function global_of(E) return torch.is_tensor(E) and E or E.global end

-- Chunks of captions of cfg.eval.batch_size with their gallery rows:
-- fn(ids, mask, rows [n] int64) -> scores [n]; returns the scores concatenated.
local function score_captions(cfg, tok, captions, video_rows, fn)
  local parts = {}
  for s = 1, #captions, cfg.eval.batch_size do
    local chunk = {}
    for j = s, math.min(#captions, s + cfg.eval.batch_size - 1) do chunk[#chunk + 1] = captions[j] end
    local ids, mask = tok:encode_batch(chunk, cfg.text_len)
    parts[#parts + 1] = fn(ids, mask, video_rows:narrow(0, s - 1, #chunk)):reshape({-1}):to(torch.float64)
  end
  return torch.cat(parts, 0)
end

-- The two scorings of a (caption, its video) pair: 'cosine' of the global
-- embeddings (every recipe), and 'match', the recipe's own matching function
-- where it has one (spec.match.score(model, video_rows, ids, mask, cfg) -> [n],
-- video_rows the rows of what spec.match.video, or else spec.embed.video, made):
-- STOA's VTM head probability, DemoVLP's global + local similarity.
local function pair_scorers(model, cfg, spec, V, Vm)
  local scorers = {cosine = function(ids, mask, rows)
    local E = global_of(spec.embed.text(model, ids, mask, cfg))
    return (E * global_of(V):index_select(0, rows)):sum(-1)
  end}
  if spec.match then
    scorers.match = function(ids, mask, rows)
      return spec.match.score(model, recipe.index_embeddings(Vm or V, rows), ids, mask, cfg)
    end
  end
  return scorers
end

-- Per video, the share of its hard-negative pairs of each kind won (the
-- positive scores strictly higher), and of all its pairs: {noun = [N], verb =
-- [N], all = [N]} float64 in [0, 1].
local function per_video_wins(pos, negs)
  local out, won_all, count_all = {}, nil, 0
  for kind, neg in pairs(negs) do
    local won = pos:view({-1, 1}):gt(neg):to(torch.float64)
    out[kind] = won:mean(1)
    won_all = won_all and (won_all + won:sum(1)) or won:sum(1)
    count_all = count_all + neg:size(1)
  end
  if won_all then out.all = won_all / count_all end
  return out
end

-- Accuracy on the hard-negative caption pairs (the positive caption must score
-- above each one-noun / one-verb edit against the same video) under each
-- scoring of pair_scorers, or nil when the data has no hard-negative file.
-- Returns metrics {noun, verb, all [, match_noun, match_verb, match_all]} in
-- percent and the per-video outcomes behind them (same keys, [N] in [0, 1]).
function recipe.hard_negatives(model, cfg, spec, tok, V, ids, Vm)
  local path = cfg.data.hard_negatives
  if not path or path == '' then return nil end
  if path:sub(1, 1) ~= '/' then path = cfg.data.root .. '/' .. path end
  local f = io.open(path)
  if not f then return nil end
  f:close()
  local rows, positives, negatives, per_video = recipe.read_hard_negatives(path, ids)
  if #rows == 0 then return nil end
  local eval = require 'kinema.eval'
  local videos = torch.tensor(rows, {dtype = torch.int64})
  return torch.no_grad(function()
    local metrics, items = {}, {}
    for scoring, fn in pairs(pair_scorers(model, cfg, spec, V, Vm)) do
      local prefix = scoring == 'cosine' and '' or (scoring .. '_')
      local pos = score_captions(cfg, tok, positives, videos, fn)
      local negs = {}
      for kind, list in pairs(negatives) do
        if #list > 0 then
          negs[kind] = score_captions(cfg, tok, list, videos:repeat_interleave(per_video[kind]), fn)
                         :view({#rows, per_video[kind]})
        end
      end
      for k, v in pairs(eval.hard_negative_accuracy(pos, negs)) do metrics[prefix .. k] = v end
      for k, v in pairs(per_video_wins(pos, negs)) do items[prefix .. k] = v end
    end
    return metrics, items
  end)
end

-- Zero-shot retrieval on the test split, and hard-negative caption accuracy
-- when the data has a hard-negative file (data.hard_negatives). Returns flat
-- metrics (t2v_R1 ..., v2t_..., hard_noun, hard_verb, hard_all, with the
-- recipe's own matching hard_match_noun ..., num_test_videos) and the per-item
-- outcomes behind the R@K and hard-negative metrics ({metric = [N] float64}).
function recipe.zero_shot(model, cfg, spec, tok)
  local eval = require 'kinema.eval'
  local ds = recipe.dataset(cfg, 'test')
  local loader = recipe.loader(cfg, ds, 'test', spec.loader_options(cfg, tok, 'test'))
  local videos, texts, ids, match_videos = {}, {}, {}, {}
  model:eval()
  torch.no_grad(function()
    for batch in loader:iter(0) do
      videos[#videos + 1] = spec.embed.video(model, batch, cfg)
      texts[#texts + 1] = spec.embed.text(model, batch.ids, batch.mask, cfg)
      if spec.match and spec.match.video then match_videos[#match_videos + 1] = spec.match.video(model, batch, cfg) end
      for _, id in ipairs(batch.id) do ids[#ids + 1] = id end
    end
  end)
  loader:close()
  local V, Tt = recipe.cat_embeddings(videos), recipe.cat_embeddings(texts)
  local Vm = #match_videos > 0 and recipe.cat_embeddings(match_videos) or nil
  local score = spec.embed.score
  local sim = eval.similarity(Tt, V, {score_fn = score and function(q, g) return score(model, q, g, cfg) end})
  local metrics = eval.retrieval(sim)
  metrics.num_test_videos = #ids
  -- per-item outcomes for confidence intervals (kinema.eval.stats): hits of each query at K
  local items = {}
  local t2v_ranks, v2t_ranks = eval.ranks(sim)
  for _, k in ipairs({1, 5, 10}) do
    items['t2v_R' .. k] = t2v_ranks:le(k):to(torch.float64)
    items['v2t_R' .. k] = v2t_ranks:le(k):to(torch.float64)
  end
  local hard, hard_items = recipe.hard_negatives(model, cfg, spec, tok, V, ids, Vm)
  for k, v in pairs(hard or {}) do metrics['hard_' .. k] = v end
  for k, v in pairs(hard_items or {}) do items['hard_' .. k] = v end
  model:train()
  return metrics, items
end

-- Captioning on the test split for a recipe with spec.caption (STOA's PLM
-- head): greedy (beam_size 1) or beam decoding, scored against the test
-- captions with BLEU-1..4, ROUGE-L and CIDEr-D as the COCO evaluation does.
function recipe.captioning(model, cfg, spec, tok, opts)
  if not spec.caption then fail("recipe '%s' has no captioning head", spec.name) end
  local eval = require 'kinema.eval'
  local ds = recipe.dataset(cfg, 'test')
  local loader = recipe.loader(cfg, ds, 'test', spec.loader_options(cfg, tok, 'test'))
  local candidates, references = {}, {}
  model:eval()
  torch.no_grad(function()
    for batch in loader:iter(0) do
      local caps = spec.caption(model, batch, cfg, tok, opts)
      for i, id in ipairs(batch.id) do
        candidates[id] = caps[i]
        references[id] = {batch.caption[i]}
      end
    end
  end)
  loader:close()
  model:train()
  return eval.caption.evaluate(candidates, references), candidates
end

-- Embeddings are tensors [B,E] or tables of batch-first tensors.
function recipe.cat_embeddings(list)
  if torch.is_tensor(list[1]) then return torch.cat(list, 0) end
  local out = {}
  for k, v in pairs(list[1]) do
    if torch.is_tensor(v) then
      local parts = {}
      for i, e in ipairs(list) do parts[i] = e[k] end
      out[k] = torch.cat(parts, 0)
    end
  end
  return out
end

function recipe.index_embeddings(E, index)
  if torch.is_tensor(E) then return E:index_select(0, index) end
  local out = {}
  for k, v in pairs(E) do out[k] = v:index_select(0, index) end
  return out
end

recipe.normalize = normalize

-- ---- the main -----------------------------------------------------------------------------

-- Shared config: every recipe's defaults extend this.
recipe.common = {
  seed = 0, frames = 8, image_size = 224, normalize = 'clip', text_len = 32,
  out_dir = 'runs/recipe', resume = false, overwrite = false, device = 'cpu', threads = 0, init = '', init_layout = '',
  data = {root = 'data/synth', format = 'webvid', train = 'train.csv', test = 'test.csv', video_root = 'videos',
          region_root = 'regions', detections_root = 'detections', train_meta = 'train_meta.jsonl',
          test_meta = 'test_meta.jsonl', vocab = 'vocab.txt', tokenizer = 'wordpiece',
          hard_negatives = 'test_hard_negatives.jsonl',
          synth = {num_train = 200, num_test = 50, negatives_per_kind = 2}},
  train = {batch_size = 64, max_steps = 10000, lr = 1e-4, weight_decay = 0.02, warmup = 1000, clip_grad = 1.0,
           accumulate = 1, num_workers = 2, amp = 'bf16', checkpoint_every = 1000, log_every = 10},
  eval = {batch_size = 64, every = 0},
  -- kinema.diagnostics: every N steps the gradient each objective sends to each
  -- parameter group (one extra backward per objective on those steps; 0 = off)
  diagnostics = {every = 0, share_threshold = 0.01, share_after = 3, dead_after = 20, trivial_tolerance = 0.02},
  model = {},
  weights = {},
  open_keys = {'weights', 'model'},
}

-- The pieces of a training run of `spec` under cfg: the train loader (sharded
-- by rank), AdamW, the warm-up + cosine schedule, and the loss function
-- (batch -> total, parts) combining the recipe's weighted objectives, with
-- gathered columns across ranks.
function recipe.training_parts(spec, cfg, model, tok)
  local kinema = require 'kinema'
  local ds = recipe.dataset(cfg, 'train')
  local loader = recipe.loader(cfg, ds, 'train', spec.loader_options(cfg, tok, 'train'))
  local opt = kinema.optim.AdamW(model, {lr = cfg.train.lr, weight_decay = cfg.train.weight_decay})
  local sched = kinema.optim.lr_scheduler.WarmupCosine(opt, {warmup_steps = cfg.train.warmup,
                                                            total_steps = cfg.train.max_steps})
  local weights = {}
  for k, w in pairs(cfg.weights) do if w ~= 0 then weights[k] = w end end
  local function loss_fn(batch)
    local inputs, opts = spec.inputs(model, batch, cfg)
    return kinema.losses.combine(weights, recipe.gather_columns(inputs), opts)
  end
  return {loader = loader, optimizer = opt, scheduler = sched, loss = loss_fn}
end

-- Runs a recipe: parse the command line, build, train, evaluate zero-shot,
-- print the table, write out_dir/results.json. Returns the metrics.
function recipe.main(spec, argv)
  local kinema = require 'kinema'
  local defaults = recipe.merge(recipe.common, spec.defaults or {})
  local cfg = recipe.parse_args(argv or arg, defaults, spec.presets)
  if cfg.threads and cfg.threads > 0 then torch.set_num_threads(cfg.threads) end
  if spec.min_batch and cfg.train.batch_size < spec.min_batch then
    fail("recipe '%s' needs --train.batch_size >= %d per rank (%s), got %d", spec.name, spec.min_batch,
         spec.min_batch_reason or 'its objectives compare samples within a batch', cfg.train.batch_size)
  end
  local dist = kinema.dist
  dist.init()
  torch.manual_seed(cfg.seed + 1)
  local tok = recipe.tokenizer_or_synth(cfg)
  local model = spec.build(cfg, tok)
  if cfg.init and cfg.init ~= '' then recipe.load_init(model, cfg.init, cfg.init_layout) end
  if cfg.device ~= 'cpu' then model:to(cfg.device) end
  if dist.is_initialized() then dist.broadcast_parameters(model) end
  local parts = recipe.training_parts(spec, cfg, model, tok)
  local loader = parts.loader
  local trainer = kinema.train.Trainer{
    model = model, optimizer = parts.optimizer, scheduler = parts.scheduler, loader = loader, loss = parts.loss,
    max_steps = cfg.train.max_steps, accumulate = cfg.train.accumulate, clip_grad = cfg.train.clip_grad,
    device = cfg.device, amp = cfg.train.amp, out_dir = cfg.out_dir, checkpoint_every = cfg.train.checkpoint_every,
    resume = cfg.resume, overwrite = cfg.overwrite, log_every = cfg.train.log_every,
    eval_every = cfg.eval.every > 0 and cfg.eval.every or nil, grad_diagnostics = cfg.diagnostics,
    evaluate = cfg.eval.every > 0 and function() return recipe.zero_shot(model, cfg, spec, tok) end or nil,
  }
  local t0 = sys.clock()
  local summary = trainer:fit()
  loader:close()
  local metrics = {}
  if dist.is_main() and summary.steps > 0 then
    local tm, total = summary.timing, 0
    for _, v in pairs(tm) do total = total + v end
    io.stderr:write(string.format('kinema: %d steps in %s, %.1f clips/s; time split: data wait %.0f%%, forward %.0f%%, '
                                  .. 'backward %.0f%%, optimizer %.0f%%\n', summary.steps,
                                  sys.format_duration(summary.seconds), summary.clips_per_s,
                                  100 * tm.data / total, 100 * tm.forward / total, 100 * tm.backward / total,
                                  100 * tm.optimizer / total))
  end
  local results_path = cfg.out_dir .. '/results.json'
  if dist.is_main() and summary.steps == 0 and sys.is_file(results_path) then
    -- a finished run resumed: nothing was trained, so its results stand as written
    io.stderr:write(string.format("kinema: the run in '%s' had already finished at step %d; '%s' left as it was\n",
                                  cfg.out_dir, trainer.step, results_path))
    local f = assert(io.open(results_path, 'rb'))
    metrics = json.decode(f:read('*a'), results_path).metrics or {}
    f:close()
  elseif dist.is_main() then
    metrics = recipe.zero_shot(model, cfg, spec, tok)
    metrics.train_minutes = summary.seconds / 60
    metrics.clips_per_s = summary.clips_per_s
    metrics.final_loss = summary.last_loss
    if summary.diagnostics then metrics.dead_objectives = #summary.diagnostics.warnings end
    local eval = kinema.eval
    print(string.format('\n## %s%s on %s: zero-shot retrieval (chance R@1 = %.1f%%)\n', spec.name,
                        cfg.preset and (' (' .. cfg.preset .. ')') or '', cfg.data.root,
                        100 / metrics.num_test_videos))
    print(recipe.results_table({[spec.name] = metrics}, {spec.name}))
    json.write(results_path, {recipe = spec.name, preset = cfg.preset, metrics = metrics,
                              config = cfg, seconds = sys.clock() - t0, diagnostics = summary.diagnostics})
  end
  if dist.is_initialized() then dist.barrier() end
  return metrics, cfg, model
end

-- Initial weights: a kinema training checkpoint (its model.* tensors, every
-- parameter required), or a published checkpoint through a name mapping of
-- kinema.models.weights (layout, e.g. 'clip_visual'; partial loads reported).
function recipe.load_init(model, path, layout)
  local ok, tensors, meta = pcall(torch.load_safetensors, path)
  if ok and meta['kinema.checkpoint'] == '1' then
    local sd = {}
    for k, t in pairs(tensors) do
      local name = k:match('^model%.(.+)$')
      if name then sd[name] = t end
    end
    local loaded, err = pcall(model.load_state_dict, model, sd)
    if not loaded then fail("--init %s does not fit the model: %s", path, tostring(err)) end
    return
  end
  if not layout or layout == '' then
    fail("--init %s is not a kinema training checkpoint: give --init_layout (a kinema.models.weights layout)", path)
  end
  local report = require('kinema.models.weights').load(model, path, layout, {strict = false})
  io.stderr:write(string.format('kinema: loaded %s (%s): %d missing, %d unused\n', path, layout,
                                #(report.missing or {}), #(report.unused or {})))
end

function recipe.tokenizer_or_synth(cfg)
  if cfg.data.synth then recipe.ensure_synth(cfg.data.root, cfg.data.synth) end
  return recipe.tokenizer(cfg)
end

-- Zero-shot evaluation of a trained model outside its training run: the
-- recipe `name` (lua/kinema/recipes/<name>.lua) configured by argv (e.g.
-- {'--tiny'}), weights from `checkpoint` (a training checkpoint; default the
-- newest in the config's out_dir). Returns the metrics, the config and the
-- per-item outcomes (see zero_shot);
-- what = {captioning = {beam_size =}} evaluates captioning instead (and
-- returns the generated captions third).
function recipe.evaluate(name, argv, checkpoint, what)
  local spec = require('kinema.recipes.' .. name)
  local cfg = recipe.parse_args(argv or {}, recipe.merge(recipe.common, spec.defaults or {}), spec.presets)
  local tok = recipe.tokenizer_or_synth(cfg)
  torch.manual_seed(cfg.seed + 1)
  local model = spec.build(cfg, tok)
  checkpoint = checkpoint or require('kinema.train').latest_checkpoint(cfg.out_dir)
  if not checkpoint then fail("recipe '%s': no checkpoint in %s (train it first)", name, cfg.out_dir) end
  recipe.load_init(model, checkpoint)
  if cfg.device ~= 'cpu' then model:to(cfg.device) end
  if what and what.captioning then
    local metrics, captions = recipe.captioning(model, cfg, spec, tok, what.captioning)
    return metrics, cfg, captions
  end
  local metrics, items = recipe.zero_shot(model, cfg, spec, tok)
  return metrics, cfg, items
end

-- One row per recipe: R@1/5/10 both directions, MedR, hard-negative accuracy.
recipe.table_columns = {
  {'t2v_R1', 'T2V R@1'}, {'t2v_R5', 'R@5'}, {'t2v_R10', 'R@10'}, {'t2v_MedR', 'MedR'},
  {'v2t_R1', 'V2T R@1'}, {'v2t_R5', 'R@5'}, {'v2t_R10', 'R@10'}, {'v2t_MedR', 'MedR'},
  {'hard_noun', 'hard noun'}, {'hard_verb', 'hard verb'}, {'hard_all', 'hard all'},
  {'hard_match_noun', 'match noun'}, {'hard_match_verb', 'match verb'}, {'hard_match_all', 'match all'},
}

function recipe.results_table(results, order)
  local head, rule = {'| recipe'}, {'|---'}
  for _, c in ipairs(recipe.table_columns) do head[#head + 1] = c[2]; rule[#rule + 1] = '---:' end
  local lines = {table.concat(head, ' | ') .. ' |', table.concat(rule, '|') .. '|'}
  for _, name in ipairs(order) do
    local m = results[name]
    local row = {'| ' .. name}
    for _, c in ipairs(recipe.table_columns) do
      local v = m[c[1]]
      row[#row + 1] = v == nil and '-' or string.format('%.1f', v)
    end
    lines[#lines + 1] = table.concat(row, ' | ') .. ' |'
  end
  return table.concat(lines, '\n')
end

return recipe
