-- kinema.recipe_data: where a recipe's data is, from its configuration (cfg.data,
-- docs/data.md): the files of each split, the dataset, the tokenizer and the
-- loader options every recipe shares, the synthetic benchmark generated on
-- request, and the hard-negative caption file of the test split. kinema.recipe
-- checks a run's inputs with these; kinema.eval.zero_shot evaluates with them.
local sys = require 'kinema.sys'
local json = require 'kinema.json'
local util = require 'kinema.util'

local rdata = {}

local function fail(fmt, ...) error('kinema.recipe_data: ' .. string.format(fmt, ...), 0) end
local is_file, is_dir = sys.is_file, sys.is_dir

-- A path option: false or '' is "none" ('' leaves the choice to kinema, see data_source).
local function given(v) return v ~= nil and v ~= false and v ~= '' end
rdata.given = given

-- A complete kinema synth folder.
function rdata.is_synth_root(root)
  return is_file(root .. '/synth.json') and not is_file(root .. '/.kinema-synth-incomplete')
end

-- The options of opts that a finished synthetic benchmark in root was not made
-- with (its synth.json): a list of 'name: had X, asked Y' ('threads' changes
-- no file).
function rdata.synth_differences(root, opts)
  local path = root .. '/synth.json'
  local info = json.decode(sys.read_file(path) or fail('%s: cannot read it', path), path)
  local made = type(info) == 'table' and type(info.options) == 'table' and info.options or {}
  local out = {}
  for _, key in ipairs(json.sorted_keys(opts)) do
    if key ~= 'threads' and key ~= 'out_dir' and made[key] ~= opts[key] then
      out[#out + 1] = string.format('%s: had %s, asked %s', key, tostring(made[key]), tostring(opts[key]))
    end
  end
  return out
end

-- Generates the synthetic benchmark under root unless it is there already with
-- the options asked (data.synth asks for it; kinema synth refuses a folder it
-- did not make). A kinema-made root of other options is made again, saying so:
-- same options and seed give the same files, so nothing is lost.
function rdata.ensure_synth(root, opts)
  opts = type(opts) == 'table' and opts or {}
  local what = string.format('generating the synthetic benchmark in %s', root)
  if rdata.is_synth_root(root) then
    local differs = rdata.synth_differences(root, opts)
    if #differs == 0 then return root end
    what = string.format('%s holds a synthetic benchmark kinema made with other options (%s): generating it again',
                         root, table.concat(differs, '; '))
  end
  local data = require 'kinema.data'
  io.stderr:write(string.format('kinema: %s ...\n', what))
  data.synth(util.merge(opts, {out_dir = root}))
  return root
end

-- The synthetic benchmark's side files, used by default only in a kinema-made root.
local synth_side_files = {detections_root = 'detections', region_root = 'regions', train_meta = 'train_meta.jsonl',
                          test_meta = 'test_meta.jsonl', hard_negatives = 'test_hard_negatives.jsonl',
                          vocab = 'vocab.txt'}

-- Where the files of a split are, from cfg.data (paths relative to the split's
-- root: data.test_root for the test split when given, else data.root):
-- {format, path, split, video_root, region_root, detections_root, meta,
-- allow_outside_root} for data.read, plus root and hard_negatives. A side
-- option left '' takes the synthetic benchmark's file in a kinema-made root
-- and is absent elsewhere; false (--no-data.KEY) is always absent.
function rdata.data_source(cfg, split)
  local d = cfg.data
  local test = split == 'test'
  local root = (test and given(d.test_root)) and d.test_root or d.root
  local synth_root = rdata.is_synth_root(root)
  local function path(p) return (p:sub(1, 1) == '/' or root == '') and p or (root .. '/' .. p) end
  local function side(key)
    local v = d[key]
    if given(v) then return path(v) end
    if v == '' and synth_root and synth_side_files[key] then return path(synth_side_files[key]) end
    return nil
  end
  if not given(d[split]) then fail('--data.%s: the %s annotation file is required', split, split) end
  local per_split = function(key) return test and given(d['test_' .. key]) and d['test_' .. key] or d[key] end
  return {format = per_split('format'), path = path(d[split]),
          split = given(d[split .. '_split']) and path(d[split .. '_split']) or nil,
          video_root = path(per_split('video_root')), region_root = side('region_root'),
          detections_root = side('detections_root'), meta = side(split .. '_meta'),
          allow_outside_root = d.allow_outside_root == true,
          hard_negatives = test and side('hard_negatives') or nil, root = root}
end

-- The dataset of a split (rdata.data_source).
function rdata.dataset(cfg, split)
  local data = require 'kinema.data'
  local src = rdata.data_source(cfg, split)
  return (data.read{format = src.format, path = src.path, split = src.split, video_root = src.video_root,
                    region_root = src.region_root, detections_root = src.detections_root, meta = src.meta,
                    allow_outside_root = src.allow_outside_root})
end

-- The tokenizer: data.vocab when given; the synthetic benchmark's vocab.txt in
-- a kinema-made root; else a WordPiece vocabulary of the training captions
-- (train_ds) built into out_dir/vocab.txt, which a later evaluation of the run
-- (no train_ds) reads.
function rdata.tokenizer(cfg, train_ds)
  local data = require 'kinema.data'
  local d = cfg.data
  local kind = given(d.tokenizer) and d.tokenizer or 'wordpiece'
  local p
  if given(d.vocab) then
    p = (d.vocab:sub(1, 1) == '/' or d.root == '') and d.vocab or (d.root .. '/' .. d.vocab)
    if not is_file(p) then fail('--data.vocab %s: no such file', p) end
  elseif d.vocab == '' and rdata.is_synth_root(d.root) then
    p = d.root .. '/vocab.txt'
  else
    if kind ~= 'wordpiece' then fail("--data.tokenizer %s needs its vocabulary: give --data.vocab FILE", kind) end
    p = cfg.out_dir .. '/vocab.txt'
    if train_ds then
      local captions = train_ds:column('captions')
      if #captions == 0 then fail('the training split has no captions to build a vocabulary from') end
      local tokens = data.build_vocab{texts = captions}
      local old = sys.read_file(p)
      if old ~= table.concat(tokens, '\n') .. '\n' then
        if old and (cfg.resume or not cfg.overwrite) then
          fail("%s was built from other training captions: start over with --overwrite true, choose another "
               .. "--out_dir, or give --data.vocab", p)
        end
        data.build_vocab{texts = captions, path = p}
        io.stderr:write(string.format('kinema: no --data.vocab: built a %d-token WordPiece vocabulary from the %d '
                                      .. 'training captions into %s\n', #tokens, #captions, p))
      end
    elseif not is_file(p) then
      fail('no vocabulary: %s is absent (it is built when the run trains) and no --data.vocab was given', p)
    end
  end
  return data.tokenizer{kind = kind, path = p}, rdata.vocab_fingerprint(p)
end

-- The identity of a vocabulary file ('N lines, crc32c C'), kept in every
-- checkpoint's metadata: weights read with another vocabulary of the same size
-- (another data root's vocab.txt, words in another order) would embed every
-- token wrongly without any error.
function rdata.vocab_fingerprint(path)
  local text = sys.read_file(path)
  if not text then fail('vocabulary %s: cannot read it', path) end
  local _, lines = text:gsub('\n', '')
  return string.format('%d lines, crc32c %.0f', lines, require('kinema._report').crc32c(text))
end

-- Loader options shared by every recipe plus the recipe's own fields. The
-- training split replaces an unreadable sample by the next one; evaluation
-- never substitutes: it stops naming the sample, or leaves it out with
-- --eval.drop_unreadable (reported with the results).
function rdata.loader(cfg, ds, split, own)
  local data = require 'kinema.data'
  local dist = require 'kinema.dist'
  local train_split = split == 'train'
  local opts = {batch_size = train_split and cfg.train.batch_size or cfg.eval.batch_size,
                num_workers = cfg.train.num_workers, shuffle = train_split, seed = cfg.seed,
                drop_last = train_split, num_frames = cfg.frames, size = cfg.image_size,
                normalize = cfg.normalize, random_caption = train_split, prefetch_next_epoch = train_split,
                sampling = train_split and 'rand' or 'uniform',
                on_error = train_split and 'replace' or (cfg.eval.drop_unreadable and 'drop' or 'raise')}
  if train_split then opts.rank, opts.world_size = dist.rank(), dist.world_size() end
  util.merge_into(opts, own or {})
  return data.Loader(ds, opts)
end

-- The hard-negative pairs of the test videos in `ids`, from a JSON Lines file
-- in either layout (any number of negatives of any kind per video):
--   grouped:  {"videoid", "positive", "negatives": [{"caption", "kind"}, ...]}
--   per pair: {"videoid", "caption", "negative", "kind"}
-- -> a list of {row = 0-based gallery row, positive =, negative =, kind =};
-- records of videos outside ids are skipped. A malformed line raises naming
-- the file, line and field.
function rdata.read_hard_negatives(path, ids)
  local row_of = {}
  for i, id in ipairs(ids) do row_of[id] = i - 1 end
  local f = io.open(path, 'rb')
  if not f then fail('hard negatives %s: cannot open', path) end
  local out, line_no = {}, 0
  local function text(r, key, where)
    local v = r[key]
    if type(v) ~= 'string' or v == '' then
      f:close()
      fail("%s:%d: %s'%s' must be a non-empty string, got %s", path, line_no, where or '', key,
           v == nil and 'nothing' or type(v))
    end
    return v
  end
  for line in f:lines() do
    line_no = line_no + 1
    if line:match('%S') then
      local ok, r = pcall(json.decode, line, path .. ':' .. line_no)
      if not ok then f:close(); fail('%s', tostring(r)) end
      if type(r) ~= 'table' then f:close(); fail('%s:%d: expected a JSON object', path, line_no) end
      if type(r.videoid) == 'number' then r.videoid = string.format('%d', r.videoid) end
      local row = row_of[text(r, 'videoid')]
      if r.negatives ~= nil then
        local positive = text(r, 'positive')
        if type(r.negatives) ~= 'table' then f:close(); fail("%s:%d: 'negatives' must be a list", path, line_no) end
        for k, n in ipairs(r.negatives) do
          if type(n) ~= 'table' then f:close(); fail("%s:%d: negatives[%d] must be an object", path, line_no, k) end
          local where = string.format('negatives[%d].', k)
          local neg, kind = text(n, 'caption', where), text(n, 'kind', where)
          if row then out[#out + 1] = {row = row, positive = positive, negative = neg, kind = kind} end
        end
      elseif r.negative ~= nil then
        local positive, neg, kind = text(r, 'caption'), text(r, 'negative'), text(r, 'kind')
        if row then out[#out + 1] = {row = row, positive = positive, negative = neg, kind = kind} end
      else
        f:close()
        fail("%s:%d: expected {videoid, positive, negatives = [{caption, kind}]} or {videoid, caption, negative, "
             .. 'kind}', path, line_no)
      end
    end
  end
  f:close()
  return out
end


-- The tokenizer of a run outside recipe.main (benchmarks): the synthetic
-- benchmark generated first when data.synth asks for it.
function rdata.tokenizer_or_synth(cfg)
  if cfg.data.synth then rdata.ensure_synth(cfg.data.root, cfg.data.synth) end
  return rdata.tokenizer(cfg, rdata.dataset(cfg, 'train'))
end

return rdata
