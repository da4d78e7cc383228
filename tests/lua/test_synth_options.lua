-- The synthetic benchmark's sizes: `kinema synth`, data.synth and the recipes'
-- --data.synth true (the demo) make the same one by default, and a
-- --data.synth run finds a kinema-made folder of other options and makes it
-- again (never a folder kinema did not make).
local T = require 'kinema.test'
local kinema = require 'kinema'
local json = require 'kinema.json'
local rdata = require 'kinema.recipe_data'
local recipe = kinema.recipe

local root = T.tmpdir()

T.test('kinema synth, data.synth and the demo share the default sizes: 250 test videos, 4 negatives per kind', function()
  local d = kinema.data.synth_defaults()
  T.eq({d.num_train, d.num_test, d.negatives_per_kind}, {200, 250, 4})
  T.eq(recipe.common.data.synth_options, {num_train = 200, num_test = 250, negatives_per_kind = 4})
  -- the demo's configuration (scripts/demo.lua: STOA --tiny --data.synth true)
  local stoa = require 'kinema.recipes.stoa'
  local cfg = recipe.parse_args({'--tiny', '--data.synth', 'true'}, recipe.merge(recipe.common, stoa.defaults),
                                stoa.presets)
  T.eq(cfg.data.synth_options, {num_train = 200, num_test = 250, negatives_per_kind = 4})
  -- the command line shows the same defaults
  local p = io.popen('"' .. kinema.executable() .. '" synth --help 2>&1')
  local help = p:read('*a')
  p:close()
  T.is_true(help:find('%-%-num%-test arg%s+test videos %(default: 250%)') ~= nil, help)
  T.is_true(help:find('%-%-negatives%-per%-kind arg[^%(]+%(noun, verb%) %(default: 4%)') ~= nil, help)
end)

local small = {num_train = 3, num_test = 2, width = 32, height = 32, min_duration_s = 1, max_duration_s = 1,
               region_frames = 1, region_dim = 4, threads = 1}

local function lines(path)
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end

T.test('--data.synth: a kinema-made folder of the options asked is used as it is', function()
  local dir = root .. '/same'
  rdata.ensure_synth(dir, small)
  T.eq(lines(dir .. '/test.csv'), 1 + 2)
  -- a mark in synth.json survives only if the folder is not written again
  local info = json.decode(T.read_file(dir .. '/synth.json'))
  info.mark = 'kept'
  T.write_file(dir .. '/synth.json', json.encode(info))
  T.eq(rdata.synth_differences(dir, small), {})
  rdata.ensure_synth(dir, small)
  T.eq(json.decode(T.read_file(dir .. '/synth.json')).mark, 'kept')
  -- options not asked for are not compared ('threads' changes no file)
  rdata.ensure_synth(dir, {num_test = 2, threads = 2})
  T.eq(json.decode(T.read_file(dir .. '/synth.json')).mark, 'kept')
end)

T.test('--data.synth: a kinema-made folder of other sizes is made again with the sizes asked', function()
  local dir = root .. '/other'
  rdata.ensure_synth(dir, small)
  local asked = require('kinema.util').merge(small, {num_test = 3, negatives_per_kind = 1})
  T.eq(rdata.synth_differences(dir, asked), {'negatives_per_kind: had 4, asked 1', 'num_test: had 2, asked 3'})
  rdata.ensure_synth(dir, asked)
  local opts = json.decode(T.read_file(dir .. '/synth.json')).options
  T.eq({opts.num_test, opts.negatives_per_kind}, {3, 1})
  T.eq(lines(dir .. '/test.csv'), 1 + 3)
  -- one noun and one verb negative per test video
  local pairs_ = rdata.read_hard_negatives(dir .. '/test_hard_negatives.jsonl', {'2000000', '2000001', '2000002'})
  T.eq(#pairs_, 3 * 2)
  T.eq(rdata.synth_differences(dir, asked), {})
end)

T.test('--data.synth never writes into a folder kinema did not make', function()
  local dir = root .. '/mine'
  os.execute('mkdir -p "' .. dir .. '"')
  T.write_file(dir .. '/notes.txt', 'my files\n')
  T.raises(function() rdata.ensure_synth(dir, small) end, "refusing to write into '" .. dir .. "'")
  T.eq(T.read_file(dir .. '/notes.txt'), 'my files\n')
end)
