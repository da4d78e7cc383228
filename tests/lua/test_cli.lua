-- The command line of recipes and tools: --help lists every config key,
-- user mistakes end with one line and status 2 (script errors keep their
-- traceback), --config reads .lua (as data) and .json files, kinema inspect
-- lists a checkpoint or weight file.
local T = require 'kinema.test'
local kinema = require 'kinema'
local recipe, cli, json = kinema.recipe, require 'kinema.cli', require 'kinema.json'
local torch = require 'torch'

local root = T.tmpdir()
local exe = kinema.executable()

-- Runs the kinema binary with a shell-quoted argument string; returns status, stdout, stderr.
local function run(args)
  local out, err, code = root .. '/out.txt', root .. '/err.txt', root .. '/code.txt'
  os.execute(string.format('"%s" %s >"%s" 2>"%s"; echo $? >"%s"', exe, args, out, err, code))
  local function read(p) local f = assert(io.open(p)); local s = f:read('*a'); f:close(); return s end
  return tonumber(read(code)), read(out), read(err)
end

local write = T.write_file

local recipes = {'baseline', 'stoa', 'svilm', 'oatrans', 'demovlp'}

T.test('--help of every recipe lists every config key with type, value and meaning, grouped', function()
  for _, name in ipairs(recipes) do
    local spec = require('kinema.recipes.' .. name)
    local cfg = recipe.parse_args({'--tiny'}, recipe.merge(recipe.common, spec.defaults), spec.presets)
    local text = recipe.help(spec, cfg)
    T.is_true(not text:find('(undocumented)', 1, true), name .. ': a key without a meaning:\n' .. text)
    for _, group in ipairs({'data:', 'model:', 'train:', 'eval:', 'weights:'}) do
      T.is_true(text:find('\n' .. group, 1, true) ~= nil, name .. ': no group ' .. group)
    end
    for _, kv in ipairs(cli.flatten(cfg)) do
      if kv[1] ~= 'open_keys' and kv[1] ~= 'preset' and not (type(kv[2]) == 'table' and next(kv[2]) == nil) then
        T.is_true(text:find('--' .. kv[1] .. ' ', 1, true) ~= nil, name .. ': --help misses ' .. kv[1])
      end
    end
  end
  -- the block options of the recipe's model defaults are listed too
  local stoa = require 'kinema.recipes.stoa'
  local text = recipe.help(stoa, recipe.parse_args({}, recipe.merge(recipe.common, stoa.defaults), stoa.presets))
  T.is_true(text:find('%-%-model%.video%.depth%s+number%s+12%s+transformer layers') ~= nil, text)
  T.is_true(text:find('%-%-train%.lr%s+number%s+1e%-05%s+peak learning rate') ~= nil, text)
end)

T.test('kinema run SCRIPT --help prints the options and exits 0, for every script', function()
  for _, script in ipairs({'pretrain_stoa', 'pretrain_baseline', 'pretrain_svilm', 'pretrain_oatrans',
                           'pretrain_demovlp', 'finetune_retrieval', 'eval_suite', 'demo'}) do
    local status, out, err = run('run scripts/' .. script .. '.lua --help')
    T.eq(status, 0, script .. ': ' .. err)
    T.is_true(out:find('usage: kinema run scripts/' .. script .. '.lua', 1, true) ~= nil, script .. ':\n' .. out)
  end
  local _, out = run('run scripts/pretrain_stoa.lua --tiny --help')
  T.is_true(out:find('%-%-train%.max_steps%s+number%s+300 ') ~= nil, 'the preset values are shown:\n' .. out)
end)

T.test('user mistakes: one line, status 2, no traceback; script errors keep their traceback', function()
  local cases = {
    {'run scripts/pretrain_stoa.lua --tiny --bogus_flag 3', 'unknown option --bogus_flag'},
    {'run scripts/pretrain_stoa.lua --train.lr fast', "--train.lr expects a number, got 'fast'"},
    {'run scripts/pretrain_stoa.lua --model.preset clip-vit-h14', "--model.preset 'clip-vit-h14' is not a preset"},
    {'run scripts/pretrain_stoa.lua --config ' .. root .. '/missing.lua', 'cannot open'},
    {'run scripts/finetune_retrieval.lua --recipe nope', "unknown --recipe 'nope'"},
    {'run scripts/eval_suite.lua --suite ' .. root .. '/none.lua', 'cannot load suite'},
    {'inspect ' .. root .. '/none.safetensors', 'cannot open'},
  }
  for _, c in ipairs(cases) do
    local status, _, err = run(c[1])
    T.eq(status, 2, c[1] .. ': ' .. err)
    T.is_true(err:find(c[2], 1, true) ~= nil, c[1] .. ': ' .. err)
    T.is_true(not err:find('traceback', 1, true), c[1] .. ': a traceback:\n' .. err)
    T.eq(select(2, err:gsub('\n', '')), 1, c[1] .. ': more than one line:\n' .. err)
  end
  -- an out_dir holding a run
  local out_dir = root .. '/held'
  os.execute('mkdir -p "' .. out_dir .. '"')
  write(out_dir .. '/log.jsonl', '{"kind":"train","step":1,"loss":1}\n')
  local status, _, err = run('run scripts/pretrain_stoa.lua --tiny --out_dir ' .. out_dir)
  T.eq(status, 2, err)
  T.is_true(err:find('holds an earlier run (0 checkpoint(s), log.jsonl): resume it (--resume true)', 1, true) ~= nil, err)
  -- a script's own error: status 1 and the traceback
  write(root .. '/bad.lua', 'local function f() error("boom") end\nf()\n')
  status, _, err = run('run ' .. root .. '/bad.lua')
  T.eq(status, 1)
  T.is_true(err:find('bad.lua:1: boom', 1, true) ~= nil and err:find('stack traceback', 1, true) ~= nil, err)
end)

T.test('--config FILE.lua is read as data, FILE.json too; flags after it override it', function()
  local stoa = require 'kinema.recipes.stoa'
  local defaults = recipe.merge(recipe.common, stoa.defaults)
  write(root .. '/c.lua', [[
-- my run
return {
  train = {lr = 3e-4, batch_size = 16},   -- smaller
  weights = {ota = 0, vtc = 2},
  data = {root = "/data/x", format = 'msrvtt'},
  frames = 6, resume = false,
  model = {video = {grouping_layers = {2, 4}}},
}
]])
  local cfg = recipe.parse_args({'--tiny', '--config', root .. '/c.lua', '--train.batch_size', '8'}, defaults, stoa.presets)
  T.eq(cfg.train.lr, 3e-4)
  T.eq(cfg.train.batch_size, 8)
  T.eq(cfg.train.max_steps, 300)  -- from the preset
  T.eq(cfg.weights.ota, 0)
  T.eq(cfg.weights.vtc, 2)
  T.eq(cfg.data.root, '/data/x')
  T.eq(cfg.frames, 6)
  T.eq(cfg.model.video.grouping_layers, {2, 4})
  T.eq(cfg.model.video.depth, 4)  -- the preset's, merged
  write(root .. '/c.json', '{"train": {"lr": 0.002}, "eval": {"every": 50}}')
  cfg = recipe.parse_args({'--config=' .. root .. '/c.json'}, defaults, stoa.presets)
  T.eq(cfg.train.lr, 0.002)
  T.eq(cfg.eval.every, 50)
  -- the resolved config of a run (its config.json) reproduces it
  local full = recipe.parse_args({'--tiny', '--train.lr', '7e-4', '--model.preset', 'clip-vit-b16'}, defaults, stoa.presets)
  json.write(root .. '/resolved.json', full)
  T.eq(recipe.parse_args({'--config', root .. '/resolved.json'}, defaults, stoa.presets).train, full.train)
  T.eq(recipe.parse_args({'--config', root .. '/resolved.json'}, defaults, stoa.presets).model, full.model)
  -- mistakes are named: unknown keys, types, code
  write(root .. '/bad1.lua', 'return {train = {lrr = 1}}')
  T.raises(function() recipe.parse_args({'--config', root .. '/bad1.lua'}, defaults) end, 'unknown option --train.lrr')
  write(root .. '/bad2.lua', 'return {train = {lr = "high"}}')
  T.raises(function() recipe.parse_args({'--config', root .. '/bad2.lua'}, defaults) end,
           'train.lr expects a number, got string')
  write(root .. '/bad3.lua', 'return {\n  train = {lr = os.execute("touch ' .. root .. '/ran")},\n}')
  T.raises(function() recipe.parse_args({'--config', root .. '/bad3.lua'}, defaults) end,
           "bad3.lua:2: 'os' is not a value")
  T.eq(io.open(root .. '/ran'), nil)
  write(root .. '/bad4.lua', 'return {frames = 2 + 3}')
  T.raises(function() recipe.parse_args({'--config', root .. '/bad4.lua'}, defaults) end, "',' or '}' expected")
  write(root .. '/bad5.lua', 'return {frames = 2} print(1)')
  T.raises(function() recipe.parse_args({'--config', root .. '/bad5.lua'}, defaults) end, 'text after the table')
  T.eq(cli.read_lua_data([==[{[ [[a]] ] = 'x\tq\65', "s", -1.5e2, 0x10, b = true; c = {}}]==]),
       {a = 'x\tqA', 's', -150, 16, b = true, c = {}})
end)

T.test('kinema inspect: tensors grouped by prefix, checkpoint metadata, optimizer state', function()
  local nn, optim, train = kinema.nn, kinema.optim, kinema.train
  torch.manual_seed(0)
  local model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
  local opt = optim.AdamW(model, {lr = 1e-3})
  model(torch.randn(2, 4)):sum():backward()
  opt:step()
  local path = root .. '/step-00000007.safetensors'
  require('kinema.checkpoint').save(path, {model = model, optimizer = opt, position = {step = 7, epoch = 1, samples_seen = 14},
                               config = {train = {lr = 1e-3}}, metadata = {recipe = 'toy'}})
  local status, out, err = run('inspect ' .. path)
  T.eq(status, 0, err)
  for _, want in ipairs({'kinema training checkpoint', 'recipe: toy', 'step: 7  epoch: 1  samples seen: 14',
                         'train.lr = 0.001', 'optimizer state: ', 'model.0.weight', '[3, 4]', 'float32'}) do
    T.is_true(out:find(want, 1, true) ~= nil, 'missing ' .. want .. ':\n' .. out)
  end
  T.is_true(out:find('model%s+4 tensors%s+23 elements') ~= nil, out)
  status, out, err = run('inspect tests/fixtures/models_clip_vitb16.pt tests/fixtures/io_regions.npz')
  T.eq(status, 0, err)
  T.is_true(out:find('visual%s+%d+ tensors') ~= nil, out)
  T.is_true(out:find('visual.conv1.weight%s+%[32, 3, 16, 16%]%s+float32%s+24576') ~= nil, out)
  T.is_true(out:find('io_regions.npz', 1, true) ~= nil, out)
end)

T.test('eval_suite without --continue stops at a failure but prints the table, the failed row marked', function()
  write(root .. '/suite.lua', [[
return {
  {name = 'good', fn = function() return {t2v_R1 = 12.5} end},
  {name = 'broken', fn = function() local t = nil; return t.x end},
  {name = 'later', fn = function() return {t2v_R1 = 1} end},
}
]])
  local status, out, err = run('run scripts/eval_suite.lua --suite ' .. root .. '/suite.lua --out ' .. root .. '/r.json')
  T.eq(status, 1, err)
  T.is_true(out:find('| good | 12.5 |', 1, true) ~= nil, out)
  T.is_true(out:find('| broken (FAILED) | -', 1, true) ~= nil, out)
  T.is_true(out:find('| broken | FAILED | ', 1, true) ~= nil, out)
  T.is_true(not out:find('later', 1, true), 'an eval after the failure ran:\n' .. out)
  T.is_true(not out:find('traceback', 1, true), out)
  T.is_true(err:find('eval_suite: broken failed; 2 of 3 evaluations ran (--continue runs the rest)', 1, true) ~= nil, err)
  status, out = run('run scripts/eval_suite.lua --continue --suite ' .. root .. '/suite.lua --out ' .. root .. '/r.json')
  T.eq(status, 0)
  T.is_true(out:find('| later | 1.0 |', 1, true) ~= nil, out)
end)

T.test('REPL: _ holds the last value, errors name stdin:LINE, :help finds names under their path', function()
  write(root .. '/session.txt', table.concat({
    '21 * 2',
    '_ + 1',
    'local a = torch.ones(2)',
    'local b = torch.ones(3)',
    'print(\"sum\", (torch.ones(2) + torch.ones(3)))',
    'for i = 1, 2 do',
    '  error("second line")',
    'end',
    ':help kinema.models.VideoEncoder',
    ':help kinema.train.Trainer',
    ':help kinema.recipe.main',
    ':help kinema.checkpoint.load_init',
    ':help kinema.cli',
  }, '\n') .. '\n')
  local status, out, err = run('repl < "' .. root .. '/session.txt"')
  T.eq(status, 0, err)
  T.is_true(out:find('42\n', 1, true) ~= nil and out:find('43\n', 1, true) ~= nil, out)
  T.is_true(err:find('stdin:1: ', 1, true) ~= nil and err:find('size of tensor a (2) must match', 1, true) ~= nil, err)
  T.is_true(not err:find('^%[C%]'), err)
  T.is_true(err:find('stdin:2: second line', 1, true) ~= nil, err)
  T.is_true(out:find('VideoEncoder: ', 1, true) ~= nil, out)
  T.is_true(out:find('train.Trainer{', 1, true) ~= nil, out)
  T.is_true(out:find('function recipe.main(spec, argv)', 1, true) ~= nil, out)
  T.is_true(out:find('unused or shapes mismatched beyond the layout', 1, true) ~= nil, out)
  T.is_true(out:find('kinema.cli\nkinema.cli: what the command-line tools share.', 1, true) ~= nil, out)
  T.is_true(not out:find('no help for', 1, true), out)
end)

T.test('kinema test removes the T.tmpdir / T.tmpname scratch of each file, failing or not, unless asked to keep it', function()
  local file = root .. '/test_scratch.lua'
  write(file, [[
local T = require 'kinema.test'
local dir = T.tmpdir()
local f = assert(io.open(dir .. '/made.txt', 'w')); f:write('x'); f:close()
local name = T.tmpname('.bin')
f = assert(io.open(name, 'w')); f:write('y'); f:close()
print('scratch ' .. dir .. ' ' .. name)
T.test('fails on purpose', function() error('on purpose') end)
]])
  local status, out = run('test "' .. file .. '"')
  T.eq(status, 1, out)
  local dir, name = out:match('scratch (%S+) (%S+)')
  T.is_true(dir ~= nil and name:sub(-4) == '.bin', out)
  T.is_true(not kinema.sys.exists(dir) and not kinema.sys.exists(name), 'scratch left behind:\n' .. out)
  T.is_true(not kinema.sys.exists(dir:gsub('%.d$', '')), 'the reserved name was left behind')
  local code = kinema.sys.spawn({'env', 'KINEMA_KEEP_TEST_TMP=1', exe, 'test', file},
                                 {stdout = root .. '/keep.txt', stderr = root .. '/keep_err.txt'})
  T.is_true(code ~= 0)
  out = T.read_file(root .. '/keep.txt')
  dir = out:match('scratch (%S+)')
  T.is_true(kinema.sys.is_file(dir .. '/made.txt'), out)
  T.is_true(out:find('kept ' .. dir, 1, true) ~= nil, out)
  for kept in out:gmatch('kept (%S+)') do
    kinema.sys.remove_tree(kept)
    os.remove((kept:gsub('%.d$', '')))
  end
end)
