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
-- `--weights.ota 0`), `--no-key` for false (a key that itself begins with no_ is
-- written `--no_key`; where both spellings are keys, `--no-key` is refused as
-- ambiguous). Unknown keys are refused by name.
-- Data (docs/data.md): --data.root DIR --data.format webvid|msrvtt|...; the
-- synthetic benchmark is generated only with --data.synth true.
--
-- This file holds the command line, the configuration and main; the data of a
-- run is found by kinema.recipe_data, evaluated by kinema.eval.zero_shot (with
-- the results table), and weights are read and written by kinema.checkpoint.
local torch = require 'torch'
local json = require 'kinema.json'
local sys = require 'kinema.sys'
local cli = require 'kinema.cli'
local util = require 'kinema.util'
local rdata = require 'kinema.recipe_data'
local ckpt = require 'kinema.checkpoint'
local eval = require 'kinema.eval.zero_shot'

local recipe = {}

local function fail(fmt, ...) error('kinema.recipe: ' .. string.format(fmt, ...), 0) end
local is_file, is_dir, given = sys.is_file, sys.is_dir, rdata.given

recipe.merge = util.merge

local function convert(text, old, key)
  if type(old) == 'number' then
    local n = tonumber(text)
    if n == nil then fail("--%s expects a number, got '%s'", key, text) end
    return n
  elseif type(old) == 'boolean' then
    if text == 'true' or text == '1' then return true end
    if text == 'false' or text == '0' then return false end
    fail("--%s expects true or false, got '%s'", key, text)
  elseif type(old) == 'table' or type(old) == 'string' or old == nil then
    if text == 'false' or text == 'none' or text == 'nil' then return false end
  end
  if type(old) == 'table' then
    -- a list: comma separated values (numbers when they parse)
    local out = {}
    for item in text:gmatch('[^,]+') do out[#out + 1] = tonumber(item) or item end
    return out
  end
  if type(old) == 'string' then return text end
  return tonumber(text) or text
end

-- ' (did you mean --NEAR?)' for the misspelled part i of a key, NEAR the
-- closest existing key of node (tables only when a table was needed), or ''.
local function suggestion(node, i, parts, tables_only)
  local names = {}
  for k, v in pairs(node) do
    if type(k) == 'string' and k ~= 'open_keys' and (not tables_only or type(v) == 'table') then names[#names + 1] = k end
  end
  local near = util.closest(parts[i], names)
  if not near then return '' end
  local prefix = table.concat(parts, '.', 1, i - 1)
  return string.format(' (did you mean --%s%s?)', prefix ~= '' and (prefix .. '.') or '', near)
end

local function set_key(cfg, key, text, allow_new, typed)
  local node, parts = cfg, {}
  for part in key:gmatch('[^%.]+') do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local nxt = node[parts[i]]
    if type(nxt) ~= 'table' then
      if not allow_new then
        fail("unknown option --%s (no config table '%s')%s", key, parts[i], suggestion(node, i, parts, true))
      end
      nxt = {}
      node[parts[i]] = nxt
    end
    node = nxt
  end
  local leaf = parts[#parts]
  if node[leaf] == nil and not allow_new then fail('unknown option --%s%s', key, suggestion(node, #parts, parts)) end
  if typed then
    -- a value of a config file: its type must be the default's
    local old = node[leaf]
    if old ~= nil and type(old) ~= type(text) and not (type(old) == 'string' and text == false) then
      fail('%s: %s expects a %s, got %s', typed, key, type(old), type(text))
    end
    node[leaf] = text
    return
  end
  -- --no-KEY (text false) is false for any key: off, or no file
  if text == true or text == false then node[leaf] = text else node[leaf] = convert(text, node[leaf], key) end
end

-- Whether the dotted key names a value in cfg.
local function has_key(cfg, key)
  local node = cfg
  for part in key:gmatch('[^%.]+') do
    if type(node) ~= 'table' then return false end
    node = node[part]
  end
  return node ~= nil
end

-- parse_args(argv, defaults, presets) -> cfg. Presets apply first (in the order
-- given), then the explicit keys. Keys below a table listed in
-- defaults.open_keys (e.g. 'weights') may be new.
function recipe.parse_args(argv, defaults, presets)
  local cfg = util.copy(defaults)
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
    -- `--no-KEY` (a hyphen after "no", as typed) negates KEY; `--no_KEY` is the
    -- key no_KEY itself. Where both KEY and no_KEY are keys, `--no-KEY` is refused
    -- as ambiguous rather than guessed.
    local negated = key:match('^no%-(.+)$')
    key = key:gsub('%-', '_')
    if negated then
      negated = negated:gsub('%-', '_')
      local as_key = has_key(cfg, key)
      if as_key and has_key(cfg, negated) then
        fail("--%s is ambiguous: both '%s' and '%s' are keys (write --%s false, or --%s VALUE)", a:match('^%-%-([^=]*)'),
             negated, key, negated, key)
      end
      if as_key then negated = nil end
    end
    if negated then
      if value ~= nil then fail("--no-%s takes no value (got '%s'; write --%s %s)", negated, value, negated, value) end
      pending[#pending + 1] = {negated, false}
    elseif presets and presets[key] then
      util.merge_into(cfg, presets[key])
      cfg.preset = key
    elseif key == 'config' then
      -- a config file's keys, applied where the flag stands among the explicit keys
      if value == nil then value = argv[i + 1]; i = i + 1 end
      if value == nil then fail('--config expects a file (.lua or .json)') end
      local file = cli.read_config(value)
      if type(file.preset) == 'string' and presets and presets[file.preset] then  -- a run's resolved config
        util.merge_into(cfg, presets[file.preset])
        cfg.preset = file.preset
      end
      for _, kv in ipairs(cli.flatten(file)) do
        local is_empty = type(kv[2]) == 'table' and next(kv[2]) == nil
        if kv[1] ~= 'preset' and kv[1] ~= 'open_keys' and not is_empty then
          pending[#pending + 1] = {kv[1], kv[2], typed = '--config ' .. value}
        end
      end
    elseif key == 'model.preset' then
      if value == nil then value = argv[i + 1]; i = i + 1 end
      local preset = recipe.model_presets[value or '']
      if not preset then
        local names = {}
        for k in pairs(recipe.model_presets) do names[#names + 1] = k end
        table.sort(names)
        fail("--model.preset '%s' is not a preset (known: %s)", tostring(value), table.concat(names, ', '))
      end
      cfg.model = cfg.model or {}
      util.merge_into(cfg.model, preset.model)
      cfg.model.preset = value
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
    set_key(cfg, kv[1], kv[2], open[top], kv.typed)
  end
  return cfg
end

-- ---- checking a run's data (kinema.recipe_data finds it) ----------------------------

-- What an objective reads beyond video and captions, and the option giving it.
recipe.objective_inputs = {
  detections = {key = 'detections_root', column = 'boxes_path',
                what = 'per-video detections ({id}.json, {id}.tsv or a folder {id}/ of .npz frames)'},
  regions = {key = 'region_root', column = 'region_path', what = 'per-video region feature folders'},
}

-- Each weighted objective of spec.needs ({objective = input}) must find its
-- input in the training data: an error now, not a silent zero loss later.
local function check_objective_inputs(spec, cfg, ds, src)
  for objective, input in pairs(spec.needs or {}) do
    if (cfg.weights[objective] or 0) ~= 0 then
      local need = recipe.objective_inputs[input]
      local root = src[need.key]
      if not root then
        fail("objective '%s' needs %s and the training data has none: give --data.%s DIR, or turn it off with "
             .. '--weights.%s 0', objective, need.what, need.key, objective)
      end
      local column, ids = ds:column(need.column), ds:column('id')
      local missing = {}
      for i, p in ipairs(column) do
        if p == '' or (input == 'regions' and not is_dir(p)) then missing[#missing + 1] = ids[i] end
      end
      if #missing == #column then
        fail("objective '%s' needs %s: none of the %d training videos has one under --data.%s %s", objective,
             need.what, #column, need.key, root)
      elseif #missing > 0 then
        io.stderr:write(string.format("kinema: %d of %d training videos have no %s under %s (e.g. '%s'): objective "
                                      .. "'%s' sees no boxes for them\n", #missing, #column, input, root,
                                      missing[1], objective))
      end
    end
  end
end

-- Every input of a run, read and checked before it trains: the splits, their
-- videos, side folders, hard negatives, the objectives' inputs. Returns
-- {train =, train_source =, test =, test_source =, dropped = {ids}} (train
-- only when opts.train).
function recipe.prepare_data(spec, cfg, opts)
  local d = cfg.data
  if d.synth then rdata.ensure_synth(d.root, recipe.merge(d.synth_options or {}, type(d.synth) == 'table' and d.synth or {})) end
  local out = {}
  local function read(split)
    local src = rdata.data_source(cfg, split)
    if not is_file(src.path) then
      local hint = ''
      if d[split] == recipe.common.data[split] then
        hint = string.format(' (your own data: give --data.%s FILE and --data.format; kinema\'s synthetic benchmark: '
                             .. 'run `kinema synth --out %s` or add --data.synth true)', split, src.root)
      end
      fail('--data.%s: %s: no such file%s', split, src.path, hint)
    end
    for _, key in ipairs({'region_root', 'detections_root'}) do
      if src[key] and given(d[key]) and not is_dir(src[key]) then fail('--data.%s %s: no such folder', key, src[key]) end
    end
    if src.meta and not is_file(src.meta) then fail('--data.%s_meta %s: no such file', split, src.meta) end
    local ds = rdata.dataset(cfg, split)
    if ds:size() == 0 then fail('--data.%s %s holds no videos', split, src.path) end
    return ds, src
  end
  local function missing_videos(ds, limit)
    local ids, paths, missing = ds:column('id'), ds:column('video_path'), {}
    for i = 1, math.min(#paths, limit or #paths) do
      if not is_file(paths[i]) then missing[#missing + 1] = string.format("'%s' (%s)", ids[i], paths[i]) end
    end
    return missing, math.min(#paths, limit or #paths)
  end
  local function listing(list) return table.concat(list, ', ', 1, math.min(#list, 5)) .. (#list > 5 and ', ...' or '') end
  if opts.train then
    out.train, out.train_source = read('train')
    local missing, checked = missing_videos(out.train, 1000)
    if #missing == checked then
      fail('none of the training videos exists under --data.video_root %s: %s', out.train_source.video_root,
           listing(missing))
    elseif #missing > 0 then
      io.stderr:write(string.format('kinema: %d of the first %d training videos are missing (%s); training replaces '
                                    .. 'them by the next readable ones\n', #missing, checked, listing(missing)))
    end
    check_objective_inputs(spec, cfg, out.train, out.train_source)
  end
  out.test, out.test_source = read('test')
  -- every test video's header opens now, not after training
  local data = require 'kinema.data'
  local ids, paths, unreadable = out.test:column('id'), out.test:column('video_path'), {}
  for i, p in ipairs(paths) do
    local ok, err = pcall(data.video_info, p)
    if not ok then
      unreadable[#unreadable + 1] = string.format("'%s' (%s)", ids[i], is_file(p) and tostring(err) or (p .. ': missing'))
    end
  end
  if #unreadable > 0 then
    if not cfg.eval.drop_unreadable then
      fail('%d of %d test videos cannot be read: %s; evaluation never substitutes videos: fix the data, or pass '
           .. '--eval.drop_unreadable true to evaluate without them (they are listed with the results)', #unreadable,
           #paths, listing(unreadable))
    end
    io.stderr:write(string.format('kinema: --eval.drop_unreadable: %d unreadable test videos will be left out: %s\n',
                                  #unreadable, listing(unreadable)))
  end
  local hard = out.test_source.hard_negatives
  if hard then
    if not is_file(hard) then fail('--data.hard_negatives %s: no such file', hard) end
    local found = rdata.read_hard_negatives(hard, out.test:column('id'))
    if #found == 0 then fail('--data.hard_negatives %s: none of its videos is in the test split', hard) end
  end
  return out
end

-- ---- the main -----------------------------------------------------------------------------

-- The sizes of the synthetic benchmark --data.synth true makes: kinema synth's
-- own defaults, so `kinema synth`, the demo and the recipes make the same one
-- (250 test videos with 4 hard negatives of each kind: 1,000 noun + 1,000 verb pairs).
local synth_defaults = require('kinema.data').synth_defaults()
local synth_sizes = {num_train = synth_defaults.num_train, num_test = synth_defaults.num_test,
                     negatives_per_kind = synth_defaults.negatives_per_kind}

-- Shared config: every recipe's defaults extend this.
recipe.common = {
  seed = 0, frames = 8, image_size = 224, normalize = 'clip', text_len = 32,
  out_dir = 'runs/recipe', resume = false, overwrite = false, device = 'cpu', threads = 0, init = '', init_layout = '',
  init_strict = true,
  -- data: docs/data.md. Side paths left '' take the synthetic benchmark's files in a kinema-made root
  -- and are absent elsewhere (vocab: built from the training captions); the synthetic benchmark is
  -- generated only with --data.synth true, and only into an empty folder or one kinema made.
  data = {root = 'data/synth', format = 'webvid', train = 'train.csv', test = 'test.csv', video_root = 'videos',
          train_split = '', test_split = '', test_root = '', test_format = '', test_video_root = '',
          region_root = '', detections_root = '', train_meta = '', test_meta = '', vocab = '', tokenizer = 'wordpiece',
          hard_negatives = '', allow_outside_root = false, synth = false,
          synth_options = synth_sizes},
  train = {batch_size = 64, max_steps = 10000, lr = 1e-4, weight_decay = 0.02, warmup = 1000, clip_grad = 1.0,
           accumulate = 1, num_workers = 2, amp = 'bf16', checkpoint_every = 1000, log_every = 10},
  eval = {batch_size = 64, every = 0, drop_unreadable = false},
  -- kinema.diagnostics: every N steps the gradient each objective sends to each
  -- parameter group (one extra backward per objective on those steps; 0 = off)
  diagnostics = {every = 0, share_threshold = 0.01, share_after = 3, dead_after = 20, trivial_tolerance = 0.02},
  model = {},
  weights = {},
  open_keys = {'weights', 'model'},
}

-- One line of meaning per config key, and its --help group. 'model.*.KEY' is
-- an option of any model block (model.video.depth, model.text.depth, ...).
-- Recipes document their own keys in spec.docs.
recipe.help_groups = {'data', 'model', 'train', 'eval', 'weights'}
recipe.docs = {
  seed = {'train', 'random seed of the initialisation, data order and augmentation'},
  frames = {'data', 'frames sampled per clip'},
  image_size = {'data', 'frame side in pixels after resizing and cropping'},
  normalize = {'data', "pixel normalisation: 'clip', 'imagenet' or 'none'"},
  text_len = {'data', 'caption length in tokens (padded / truncated)'},
  out_dir = {'train', 'run folder: config.json, log.jsonl, checkpoints, loss plot, results.json'},
  resume = {'train', 'continue the run in out_dir from its newest checkpoint'},
  overwrite = {'train', 'a fresh run may delete the earlier run in out_dir'},
  device = {'train', "'cpu', 'cuda' or 'cuda:N'"},
  threads = {'train', 'intra-op CPU threads (0: LibTorch default)'},
  init = {'model', 'initial weights: a kinema checkpoint, or published files (comma-separated) read by init_layout'},
  init_layout = {'model', 'layouts of the --init files: clip, clip_visual, clip_text, timm_vit, bert, distilbert'},
  init_strict = {'model', 'stop when --init leaves parameters missing or checkpoint tensors unused'},
  ['data.root'] = {'data', 'dataset folder; other data paths are relative to it'},
  ['data.format'] = {'data', 'annotation format: webvid, msrvtt, alpro, ...'},
  ['data.train'] = {'data', 'training annotations'},
  ['data.test'] = {'data', 'test annotations (zero-shot evaluation)'},
  ['data.video_root'] = {'data', 'folder of the video files'},
  ['data.region_root'] = {'data', 'folder of region-feature .npz files (DemoVLP)'},
  ['data.detections_root'] = {'data', 'folder of per-video detection files (STOA, OA-Trans)'},
  ['data.train_meta'] = {'data', 'per-video metadata of the training split (JSON Lines)'},
  ['data.test_meta'] = {'data', 'per-video metadata of the test split (JSON Lines)'},
  ['data.vocab'] = {'data', 'tokenizer vocabulary file'},
  ['data.tokenizer'] = {'data', "tokenizer kind: 'wordpiece', 'clip_bpe' or 'sentencepiece'"},
  ['data.hard_negatives'] = {'data', 'hard-negative captions of the test split (JSON Lines; evaluation)'},
  ['data.synth'] = {'data', 'generate the synthetic benchmark into data.root (an empty or kinema-made folder)'},
  ['data.synth_options.num_train'] = {'data', 'synthetic benchmark: training videos'},
  ['data.synth_options.num_test'] = {'data', 'synthetic benchmark: test videos'},
  ['data.synth_options.negatives_per_kind'] = {'data', 'synthetic benchmark: hard-negative captions per kind (noun, verb)'},
  ['data.train_split'] = {'data', 'split file selecting the training videos (docs/data.md)'},
  ['data.test_split'] = {'data', 'split file selecting the test videos'},
  ['data.test_root'] = {'data', "the test split's root when it differs from data.root"},
  ['data.test_format'] = {'data', "the test split's annotation format when it differs"},
  ['data.test_video_root'] = {'data', "the test split's video folder when it differs"},
  ['data.allow_outside_root'] = {'data', 'annotation paths may point outside data.root'},
  ['eval.drop_unreadable'] = {'eval', 'leave out unreadable test videos (reported) instead of stopping'},
  ['diagnostics.every'] = {'train', 'steps between per-objective gradient measurements (0: off)'},
  ['diagnostics.share_threshold'] = {'train', 'warn when an objective\'s gradient share of every backbone group stays below'},
  ['diagnostics.share_after'] = {'train', '... for this many measured steps'},
  ['diagnostics.dead_after'] = {'train', 'warn when an objective stays at its trivial loss this many logged steps'},
  ['diagnostics.trivial_tolerance'] = {'train', 'how close to the trivial loss counts as trivial'},
  ['train.batch_size'] = {'train', 'clips per step and rank'},
  ['train.max_steps'] = {'train', 'optimizer steps'},
  ['train.lr'] = {'train', 'peak learning rate (AdamW)'},
  ['train.weight_decay'] = {'train', 'AdamW weight decay'},
  ['train.warmup'] = {'train', 'linear warm-up steps before the cosine decay'},
  ['train.clip_grad'] = {'train', 'maximum global gradient norm'},
  ['train.accumulate'] = {'train', 'micro-batches per optimizer step'},
  ['train.num_workers'] = {'train', 'data loader threads'},
  ['train.amp'] = {'train', "autocast dtype on CUDA: 'bf16', 'fp16' or none"},
  ['train.checkpoint_every'] = {'train', 'steps between checkpoints'},
  ['train.log_every'] = {'train', 'steps between log.jsonl records'},
  ['eval.batch_size'] = {'eval', 'clips per evaluation batch'},
  ['eval.every'] = {'eval', 'steps between zero-shot evaluations during training (0: only at the end)'},
  ['model.preset'] = {'model', 'published tower sizes: clip-vit-b32, clip-vit-b16, vit-b16-bert-base'},
  ['model.embed'] = {'model', 'width of the joint video-text space'},
  ['model.temperature'] = {'model', 'initial contrastive temperature'},
  ['model.frames'] = {'model', '(set from --frames)'},
  ['model.image_size'] = {'model', '(set from --image_size)'},
  ['model.fusion_init'] = {'model', "initialisation of the fusion encoder's weights: 'clip' or 'bert'"},
  ['model.vtm_token'] = {'model', "fused token the VTM head reads: 'video_cls' or 'text_cls'"},
  ['model.object_layer'] = {'model', 'video layer (1-based) feeding the trajectory encoder'},
  ['model.action_layer'] = {'model', 'video layer (1-based) feeding the action encoder'},
  ['model.*.patch_size'] = {'model', 'patch side in pixels'},
  ['model.*.tubelet'] = {'model', 'frames per patch (3-D patch embedding when > 1)'},
  ['model.*.embed_dim'] = {'model', 'block width'},
  ['model.*.depth'] = {'model', 'transformer layers'},
  ['model.*.num_heads'] = {'model', 'attention heads'},
  ['model.*.act'] = {'model', "MLP activation: 'gelu' or 'quick_gelu'"},
  ['model.*.layer_norm_eps'] = {'model', 'LayerNorm epsilon'},
  ['model.*.patch_bias'] = {'model', 'bias in the patch embedding (false: CLIP)'},
  ['model.*.norm_pre'] = {'model', "LayerNorm before the transformer (CLIP's ln_pre)"},
  ['model.*.pre_norm'] = {'model', 'pre-norm layers (ViT, CLIP) or post-norm (BERT)'},
  ['model.*.attention'] = {'model', "space-time attention: 'frame', 'joint' or 'divided'"},
  ['model.*.grouping_layers'] = {'model', 'layers (1-based) followed by a grouping block (S-ViLM)'},
  ['model.*.num_groups'] = {'model', 'learnable group tokens (S-ViLM)'},
  ['model.*.style'] = {'model', "text encoder style: 'bert' or 'clip'"},
  ['model.*.vocab_size'] = {'model', '(set from the tokenizer)'},
  ['model.*.max_len'] = {'model', 'text positions'},
  ['model.*.type_vocab_size'] = {'model', 'BERT token types (0: none, DistilBERT)'},
  ['model.*.num_trajectories'] = {'model', 'object trajectories (STOA)'},
  ['model.*.num_queries'] = {'model', 'action queries (STOA)'},
  ['model.*.feat_dim'] = {'model', 'region feature width (DemoVLP)'},
  ['weights.*'] = {'weights', 'weight of the objective (0: off)'},
  ['loss.*'] = {'weights', 'option of an objective'},
}

-- The --help text of a recipe: usage, presets, every config key (with the
-- values of cfg, so `--tiny --help` shows the tiny preset) grouped, with type,
-- default and meaning.
function recipe.help(spec, cfg)
  local docs = recipe.merge(recipe.docs, spec.docs or {})
  local shown = util.copy(cfg)
  shown.open_keys, shown.preset = nil, nil
  shown.model = util.merge_into(util.copy(spec.model_defaults or {}), cfg.model or {})
  shown.model.frames, shown.model.image_size = nil, nil
  if shown.model.preset == nil then shown.model.preset = '' end
  for _, kv in ipairs(cli.flatten(shown)) do
    local key = kv[1]
    if not cli.doc_of(docs, key) then
      local group = key:match('^(%a+)%.')
      if group == 'weights' or group == 'loss' then docs[key] = docs[group .. '.*'] end
    end
  end
  local presets = {}
  for name in pairs(spec.presets or {}) do presets[#presets + 1] = '--' .. name end
  table.sort(presets)
  local model_presets = {}
  for name in pairs(recipe.model_presets) do model_presets[#model_presets + 1] = name end
  table.sort(model_presets)
  local script = (arg and arg[0]) or ('scripts/pretrain_' .. spec.name .. '.lua')
  return cli.help_text{
    usage = string.format('usage: kinema run %s [%s] [--config FILE.lua|json] [--KEY VALUE | --KEY=VALUE | --no-KEY ...]',
                          script, #presets > 0 and table.concat(presets, '|') or 'PRESET'),
    about = {(spec.about or ("recipe '" .. spec.name .. "'")),
             'presets: ' .. (#presets > 0 and table.concat(presets, ', ') or '(none)')
               .. '; model presets (--model.preset NAME): ' .. table.concat(model_presets, ', '),
             'Flags apply in order: presets and --config where they stand, then the keys. Columns: key, type, value, meaning.'},
    cfg = shown, docs = docs, groups = recipe.help_groups,
  }
end

-- The pieces of a training run of `spec` under cfg: the train loader (sharded
-- by rank), AdamW, the warm-up + cosine schedule, and the loss function
-- (batch -> total, parts) combining the recipe's weighted objectives; across
-- ranks the objectives gather their columns through dist.column_gatherer().
function recipe.training_parts(spec, cfg, model, tok, train_ds)
  local kinema = require 'kinema'
  local ds = train_ds or rdata.dataset(cfg, 'train')
  local loader = rdata.loader(cfg, ds, 'train', spec.loader_options(cfg, tok, 'train'))
  local opt = kinema.optim.AdamW(model, {lr = cfg.train.lr, weight_decay = cfg.train.weight_decay})
  local sched = kinema.optim.lr_scheduler.WarmupCosine(opt, {warmup_steps = cfg.train.warmup,
                                                            total_steps = cfg.train.max_steps})
  local weights = {}
  for k, w in pairs(cfg.weights) do if w ~= 0 then weights[k] = w end end
  local function loss_fn(batch)
    local inputs, opts = spec.inputs(model, batch, cfg)
    inputs.gather = kinema.dist.column_gatherer()
    return kinema.losses.combine(weights, inputs, opts)
  end
  return {loader = loader, optimizer = opt, scheduler = sched, loss = loss_fn}
end

-- Runs a recipe: parse the command line, build, train, evaluate zero-shot,
-- print the table, write out_dir/results.json. Returns the metrics.
-- A user mistake on the command line raises a usage error (one line, exit
-- status 2); --help prints recipe.help and returns nothing.
function recipe.main(spec, argv)
  local kinema = require 'kinema'
  argv = argv or arg
  local defaults = recipe.merge(recipe.common, spec.defaults or {})
  if cli.wants_help(argv) then
    local rest = {}
    for _, a in ipairs(argv) do if a ~= '--help' and a ~= '-h' then rest[#rest + 1] = a end end
    print(recipe.help(spec, cli.as_usage(recipe.parse_args, rest, defaults, spec.presets)))
    return
  end
  local cfg = cli.as_usage(recipe.parse_args, argv, defaults, spec.presets)
  if cfg.threads and cfg.threads > 0 then torch.set_num_threads(cfg.threads) end
  if spec.min_batch and cfg.train.batch_size < spec.min_batch then
    cli.usage_error("kinema.recipe: recipe '%s' needs --train.batch_size >= %d per rank (%s), got %d", spec.name,
                    spec.min_batch, spec.min_batch_reason or 'its objectives compare samples within a batch',
                    cfg.train.batch_size)
  end
  local earlier = not cfg.resume and not cfg.overwrite and kinema.train.earlier_run(cfg.out_dir)
  if earlier then
    cli.usage_error('kinema.recipe: --out_dir %s holds an earlier run (%s): resume it (--resume true), start over '
                    .. '(--overwrite true) or choose another --out_dir', cfg.out_dir, earlier)
  end
  local dist = kinema.dist
  dist.init()
  torch.manual_seed(cfg.seed + 1)
  -- every input checked before any training (rank 0 builds the vocabulary the others read)
  local prepared = recipe.prepare_data(spec, cfg, {train = true})
  local tok, vocab
  if dist.is_main() then tok, vocab = rdata.tokenizer(cfg, prepared.train) end
  if dist.is_initialized() then dist.barrier() end
  if not tok then tok, vocab = rdata.tokenizer(cfg) end
  local model = spec.build(cfg, tok)
  cli.as_usage(recipe.init_model, model, cfg, spec, vocab)
  if cfg.device ~= 'cpu' then model:to(cfg.device) end
  if dist.is_initialized() then dist.broadcast_parameters(model) end
  local parts = recipe.training_parts(spec, cfg, model, tok, prepared.train)
  local loader = parts.loader
  local trainer = kinema.train.Trainer{
    model = model, optimizer = parts.optimizer, scheduler = parts.scheduler, loader = loader, loss = parts.loss,
    max_steps = cfg.train.max_steps, accumulate = cfg.train.accumulate, clip_grad = cfg.train.clip_grad,
    device = cfg.device, amp = cfg.train.amp, out_dir = cfg.out_dir, checkpoint_every = cfg.train.checkpoint_every,
    resume = cfg.resume, overwrite = cfg.overwrite, log_every = cfg.train.log_every,
    config = cfg, metadata = {recipe = spec.name, vocab = vocab},
    eval_every = cfg.eval.every > 0 and cfg.eval.every or nil, grad_diagnostics = cfg.diagnostics,
    evaluate = cfg.eval.every > 0 and function() return (eval.zero_shot(model, cfg, spec, tok, prepared.test)) end
               or nil,
  }
  local t0 = sys.clock()
  local summary = trainer:fit()
  loader:close()
  if summary.interrupted then
    if dist.is_initialized() then dist.barrier() end
    cli.exit_error(summary.interrupted == 'SIGINT' and 130 or 143, 'kinema: %s at step %d%s; resume with: %s',
                   summary.interrupted, trainer.step,
                   summary.checkpoint and (', checkpoint ' .. summary.checkpoint) or '', cli.resume_command())
  end
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
    local trained = {train_minutes = summary.seconds / 60, clips_per_s = summary.clips_per_s,
                     final_loss = summary.last_loss}
    if summary.diagnostics then trained.dead_objectives = #summary.diagnostics.warnings end
    local function write_results(m, extra)
      json.write(results_path, recipe.merge({recipe = spec.name, preset = cfg.preset, metrics = m,
                                             config = cfg, seconds = sys.clock() - t0,
                                             diagnostics = summary.diagnostics}, extra or {}))
    end
    local ok, m, items, dropped = pcall(eval.zero_shot, model, cfg, spec, tok, prepared.test)
    if not ok then
      -- the trained run stays usable: its checkpoints are written; record why evaluation failed
      write_results(trained, {eval_error = tostring(m)})
      fail('training finished (checkpoints and %s/results.json kept) but the evaluation failed: %s', cfg.out_dir,
           tostring(m))
    end
    metrics = recipe.merge(m, trained)
    local intervals = eval.hard_negative_intervals(m, items)
    print(string.format('\n## %s%s on %s: zero-shot retrieval (chance R@1 = %.1f%%)%s\n', spec.name,
                        cfg.preset and (' (' .. cfg.preset .. ')') or '', prepared.test_source.root,
                        100 / metrics.num_test_videos, intervals and string.format(
                          '; hard negatives: %% of %d pairs won [95%% interval]', metrics.hard_pairs) or ''))
    print(eval.results_table({[spec.name] = recipe.merge(metrics, intervals or {})}, {spec.name}))
    if intervals then print('\n' .. eval.chance_note(intervals, spec.match and spec.match.name)) end
    local note = eval.dropped_note(dropped)
    if note then print('\n' .. note) end
    write_results(metrics, {intervals = intervals, dropped_test_videos = #dropped > 0 and dropped or nil})
  end
  if dist.is_initialized() then dist.barrier() end
  return metrics, cfg, model
end

-- ---- initial weights --------------------------------------------------------------------

-- Published tower sizes for --model.preset NAME (applied where the flag
-- stands, so later --model.* flags override them), and the --init_layout they
-- load (kinema.checkpoint.init_layouts). Sizes: OpenAI CLIP (Radford et al. 2021,
-- ViT-B/32 and ViT-B/16 image towers, 12-layer 512-wide causal text tower,
-- 512-d joint space) and timm's vit_base_patch16_224 with HuggingFace
-- bert-base-uncased.
local clip_text_tower = {style = 'clip', vocab_size = 49408, max_len = 77, embed_dim = 512, depth = 12, num_heads = 8,
                         act = 'quick_gelu', pre_norm = true, layer_norm_eps = 1e-5}
local function clip_image_tower(patch)
  return {patch_size = patch, tubelet = 1, embed_dim = 768, depth = 12, num_heads = 12, act = 'quick_gelu',
          layer_norm_eps = 1e-5, patch_bias = false, norm_pre = true}
end
recipe.model_presets = {
  ['clip-vit-b32'] = {init_layout = 'clip', model = {embed = 512, video = clip_image_tower(32), text = clip_text_tower}},
  ['clip-vit-b16'] = {init_layout = 'clip', model = {embed = 512, video = clip_image_tower(16), text = clip_text_tower}},
  ['vit-b16-bert-base'] = {init_layout = 'timm_vit,bert', model = {
    video = {patch_size = 16, tubelet = 1, embed_dim = 768, depth = 12, num_heads = 12, act = 'gelu',
             layer_norm_eps = 1e-6, patch_bias = true, norm_pre = false},
    text = {style = 'bert', vocab_size = 30522, max_len = 512, embed_dim = 768, depth = 12, num_heads = 12,
            act = 'gelu', pre_norm = false, layer_norm_eps = 1e-12}}},
}

-- The --init / --init_layout / --init_strict of cfg applied to a built model
-- (the layout defaults to the --model.preset's; kinema.checkpoint.load_init);
-- vocab: this run's rdata.vocab_fingerprint, checked against a kinema checkpoint's.
function recipe.init_model(model, cfg, spec, vocab)
  if not cfg.init or cfg.init == '' then return end
  local layout = cfg.init_layout
  if (not layout or layout == '') and cfg.model and cfg.model.preset then
    layout = (recipe.model_presets[cfg.model.preset] or {}).init_layout
  end
  local layouts = ckpt.init_layouts
  if spec and spec.init_layouts then layouts = recipe.merge(ckpt.init_layouts, spec.init_layouts) end
  return ckpt.load_init(model, cfg.init, layout, {strict = cfg.init_strict, layouts = layouts,
                                                 fresh = spec and spec.init_fresh, vocab = vocab})
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
  local prepared = recipe.prepare_data(spec, cfg, {train = false})
  local tok, vocab = rdata.tokenizer(cfg)
  torch.manual_seed(cfg.seed + 1)
  local model = spec.build(cfg, tok)
  checkpoint = checkpoint or ckpt.latest(cfg.out_dir)
  if not checkpoint then fail("recipe '%s': no checkpoint in %s (train it first)", name, cfg.out_dir) end
  ckpt.load_init(model, checkpoint, nil, {vocab = vocab})
  if cfg.device ~= 'cpu' then model:to(cfg.device) end
  if what and what.captioning then
    local metrics, captions = eval.captioning(model, cfg, spec, tok, what.captioning)
    return metrics, cfg, captions
  end
  local metrics, items, dropped = eval.zero_shot(model, cfg, spec, tok, prepared.test)
  return metrics, cfg, items, dropped
end

return recipe
