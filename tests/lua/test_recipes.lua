-- The five pre-training recipes and fine-tuning run end to end on a tiny
-- synthetic benchmark (2 steps each), and the recipe command line parses.
local T = require 'kinema.test'
local kinema = require 'kinema'
local recipe, json = kinema.recipe, require 'kinema.json'

local root = T.tmpdir()
local data_dir, runs = root .. '/synth', root .. '/runs'
os.execute('mkdir -p "' .. runs .. '"')
kinema.data.synth{out_dir = data_dir, num_train = 8, num_test = 4, width = 64, height = 64, min_duration_s = 2,
                  max_duration_s = 3, region_frames = 4, region_dim = 32, threads = 2}

local function run(name, extra)
  local argv = {'--tiny', '--data.root', data_dir, '--train.max_steps', '2', '--train.batch_size', '4',
                '--train.warmup', '1', '--train.checkpoint_every', '2', '--train.num_workers', '1', '--train.log_every', '1',
                '--eval.batch_size', '4', '--image_size', '32', '--out_dir', runs .. '/' .. name}
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local spec = require('kinema.recipes.' .. name)
  return recipe.main(spec, argv)
end

local function check_metrics(m, name, recipe_name)
  for _, key in ipairs({'t2v_R1', 't2v_R5', 't2v_R10', 'v2t_R1', 'v2t_R5', 'v2t_R10', 'hard_noun', 'hard_verb'}) do
    T.is_true(type(m[key]) == 'number' and m[key] >= 0 and m[key] <= 100, name .. ': ' .. key .. ' = ' .. tostring(m[key]))
  end
  T.is_true(m.t2v_R1 <= m.t2v_R5 and m.t2v_R5 <= m.t2v_R10, name .. ': recall must grow with K')
  T.eq(m.num_test_videos, 4)
  T.is_true(m.final_loss == m.final_loss and math.abs(m.final_loss) < 1e6, name .. ': final loss not finite')
  local f = io.open(runs .. '/' .. name .. '/results.json')
  T.is_true(f ~= nil, name .. ': results.json missing')
  local res = json.decode(f:read('*a'))
  f:close()
  T.eq(res.recipe, recipe_name or name)
  T.eq(res.metrics.t2v_R1, m.t2v_R1)
  T.is_true(kinema.checkpoint.latest(runs .. '/' .. name) ~= nil, name .. ': no checkpoint')
end

for _, name in ipairs({'baseline', 'stoa', 'svilm', 'oatrans', 'demovlp'}) do
  T.test(name .. ' pre-trains 2 steps and evaluates zero-shot', function()
    local extra = name == 'demovlp' and {'--region_dim', '32'} or nil
    local m = run(name, extra)
    check_metrics(m, name)
    -- the logged parts are the recipe's objectives
    local recs = json.read_lines(runs .. '/' .. name .. '/log.jsonl')
    T.eq(#recs, 2)
    local spec = require('kinema.recipes.' .. name)
    for objective in pairs(spec.defaults.weights) do
      T.is_true(type(recs[2][objective]) == 'number', name .. ': objective ' .. objective .. ' not logged')
    end
  end)
end

T.test('the printed table gives the hard negatives with 95% intervals and a verdict against chance', function()
  local printed, saved = {}, print
  print = function(...) printed[#printed + 1] = table.concat({...}, '\t') end
  local ok, m = pcall(run, 'stoa', {'--out_dir', runs .. '/stoa_table'})
  print = saved
  T.is_true(ok, tostring(m))
  local text = table.concat(printed, '\n')
  -- 4 test videos, 4 noun + 4 verb negatives each (kinema synth's default)
  T.eq(m.hard_pairs, 32)
  T.is_true(text:find('; hard negatives: % of 32 pairs won [95% interval]', 1, true) ~= nil, text)
  local res = json.decode(io.open(runs .. '/stoa_table/results.json'):read('*a'))
  for _, key in ipairs({'hard_noun', 'hard_verb', 'hard_all', 'hard_match_noun', 'hard_match_verb', 'hard_match_all'}) do
    local e = res.intervals[key]
    T.close(e.mean, m[key], {atol = 1e-9}, key)
    T.is_true(e.lo <= e.mean and e.mean <= e.hi, key)
    T.is_true(text:find(' ' .. kinema.eval.format_interval(e) .. ' |', 1, true) ~= nil, key .. ' cell missing:\n' .. text)
  end
  T.is_true(text:find('\nhard negatives against chance (50%, 95% interval over the test videos): VTM head: nouns ', 1,
                      true) ~= nil, text)
  T.eq(res.intervals.t2v_R1, nil)
end)

T.test('resuming a finished run leaves its results.json as it was', function()
  local path = runs .. '/baseline/results.json'
  local before = io.open(path, 'rb'):read('*a')
  local m = run('baseline', {'--resume', 'true'})
  T.eq(io.open(path, 'rb'):read('*a'), before)
  T.eq(m.t2v_R1, json.decode(before).metrics.t2v_R1)
  T.is_true(type(m.final_loss) == 'number', 'final_loss lost')
end)

T.test('the evaluation of a saved run reproduces the run\'s own numbers', function()
  local m = recipe.evaluate('baseline', {'--tiny', '--data.root', data_dir, '--eval.batch_size', '4',
                                         '--image_size', '32', '--out_dir', runs .. '/baseline'})
  local res = json.decode(io.open(runs .. '/baseline/results.json'):read('*a'))
  T.close(m.t2v_R1, res.metrics.t2v_R1)
  T.close(m.hard_all, res.metrics.hard_all)
end)

T.test('STOA captions the test videos from its PLM head (greedy and beam) and is scored', function()
  local argv = {'--tiny', '--data.root', data_dir, '--eval.batch_size', '4', '--image_size', '32',
                '--out_dir', runs .. '/stoa'}
  for _, beam in ipairs({1, 2}) do
    local m, _, captions = recipe.evaluate('stoa', argv, nil, {captioning = {beam_size = beam}})
    local n = 0
    for _, c in pairs(captions) do
      n = n + 1
      T.is_true(type(c) == 'string' and not c:find('[CLS]', 1, true) and not c:find('[PAD]', 1, true), c)
    end
    T.eq(n, 4)
    for _, key in ipairs({'Bleu_1', 'Bleu_4', 'ROUGE_L'}) do
      T.is_true(m[key] >= 0 and m[key] <= 1, key .. ' = ' .. tostring(m[key]))
    end
    T.is_true(m.CIDEr >= 0)
  end
end)

T.test('fine-tuning starts from a pre-training checkpoint', function()
  local ft = require 'kinema.recipes.finetune_retrieval'
  local base = require 'kinema.recipes.baseline'
  local ckpt = kinema.checkpoint.latest(runs .. '/baseline')
  local argv = {'--tiny', '--data.root', data_dir, '--train.max_steps', '1', '--train.batch_size', '4',
                '--train.warmup', '1', '--train.num_workers', '1', '--eval.batch_size', '4', '--image_size', '32',
                '--out_dir', runs .. '/ft', '--init', ckpt}
  local m = recipe.main(ft.spec(base), argv)
  check_metrics(m, 'ft', 'baseline_ft')
  T.raises(function()
    recipe.main(ft.spec(require 'kinema.recipes.stoa'), {'--tiny', '--data.root', data_dir, '--init', ckpt,
                                                          '--out_dir', runs .. '/ft2', '--image_size', '32'})
  end, 'does not fit the model')
end)

T.test('two ranks (kinema launch) train S-ViLM with gathered columns and widened soft targets', function()
  local out = runs .. '/svilm2'
  local cmd = string.format('"%s" launch --nproc 2 scripts/pretrain_svilm.lua --tiny --data.root "%s" '
                            .. '--train.max_steps 2 --train.batch_size 2 --train.warmup 1 --train.num_workers 1 '
                            .. '--train.log_every 1 --eval.batch_size 4 --image_size 32 --out_dir "%s" > "%s.log" 2>&1',
                            kinema.executable(), data_dir, out, out)
  local status = os.execute(cmd)
  local log = io.open(out .. '.log'):read('*a')
  T.is_true(status == 0 or status == true, 'launch failed:\n' .. log)
  local recs = json.read_lines(out .. '/log.jsonl')
  T.eq(#recs, 2)  -- rank 0 logs alone
  -- 2 ranks x 2 clips per step
  T.eq(recs[2].samples_seen, 8)
  T.is_true(type(recs[2].weighted_vtc) == 'number' and type(recs[2].grounding) == 'number')
  -- a global batch of 4 columns: the weighted contrastive loss starts near log 4, not log 2
  T.is_true(recs[1].weighted_vtc > 2 * math.log(2) + 0.3, 'weighted_vtc = ' .. recs[1].weighted_vtc)
end)

T.test('command line: a key that begins with no_ is that key, --no-KEY negates unambiguously', function()
  local defaults = {no_shuffle = false, shuffle = true, b = {no_cache = 0, x = 'a'}, both = true, no_both = 2,
                    data = {vocab = 'v.txt'}}
  -- the key itself, written with an underscore or a hyphen
  local cfg = recipe.parse_args({'--no_shuffle', 'true', '--b.no_cache', '3'}, defaults)
  T.eq(cfg.no_shuffle, true)
  T.eq(cfg.shuffle, true)
  T.eq(cfg.b.no_cache, 3)
  cfg = recipe.parse_args({'--no-shuffle'}, {no_shuffle = false})
  T.eq(cfg.no_shuffle, true)
  cfg = recipe.parse_args({'--no_shuffle=1'}, defaults)
  T.eq(cfg.no_shuffle, true)
  T.eq(cfg.shuffle, true)
  -- the negation where only KEY is a key
  cfg = recipe.parse_args({'--no-data.vocab', '--no-b.x'}, defaults)
  T.eq(cfg.data.vocab, false)
  T.eq(cfg.b.x, false)
  -- both spellings name keys: refused, naming both
  T.raises(function() recipe.parse_args({'--no-both'}, defaults) end,
           "--no-both is ambiguous: both 'both' and 'no_both' are keys")
  cfg = recipe.parse_args({'--both', 'false', '--no_both', '5'}, defaults)
  T.eq(cfg.both, false)
  T.eq(cfg.no_both, 5)
  T.raises(function() recipe.parse_args({'--no-data.vocab=x'}, defaults) end, '--no-data.vocab takes no value')
  T.raises(function() recipe.parse_args({'--no_such', '1'}, defaults) end, 'unknown option --no_such')
end)

T.test('a batch too small for the recipe is refused before training', function()
  T.raises(function() run('stoa', {'--train.batch_size', '1'}) end, 'needs --train.batch_size >= 2 per rank (VTM')
end)

T.test('command line: presets, dotted keys, types and unknown keys', function()
  local defaults = {a = 1, b = {c = 'x', d = true}, list = {1, 2}, weights = {vtc = 1}, open_keys = {'weights'}}
  local cfg = recipe.parse_args({'--p', '--a', '3', '--b.c=y', '--no-b.d', '--list', '4,5', '--weights.ota', '0.5'},
                                defaults, {p = {a = 2, b = {c = 'z'}}})
  T.eq(cfg.a, 3)
  T.eq(cfg.b.c, 'y')
  T.eq(cfg.b.d, false)
  T.eq(cfg.list, {4, 5})
  T.eq(cfg.weights, {vtc = 1, ota = 0.5})
  T.eq(cfg.preset, 'p')
  T.raises(function() recipe.parse_args({'--nope', '1'}, defaults) end, 'unknown option --nope')
  T.raises(function() recipe.parse_args({'--a', 'abc'}, defaults) end, '--a expects a number')
  T.raises(function() recipe.parse_args({'stray'}, defaults) end, "unexpected argument 'stray'")
end)

T.test("the recipes built on STOA's tiny preset keep their own objective weights", function()
  local function tiny_weights(spec)
    return recipe.parse_args({'--tiny'}, recipe.merge(recipe.common, spec.defaults), spec.presets).weights
  end
  local stoa = require 'kinema.recipes.stoa'
  T.eq(tiny_weights(stoa).vtm, 3)
  T.eq(tiny_weights(require 'kinema.recipes.baseline'), {vtc = 1})
  T.eq(tiny_weights(require('kinema.recipes.finetune_retrieval').spec(stoa)), {vtc = 1})
end)

T.test('cleanup', function() os.execute('rm -rf "' .. root .. '"') end)
