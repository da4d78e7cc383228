-- A dataset kinema did not make (tests/fixtures/make_public_dataset.py: WebVid
-- CSVs, VinVL / bottom-up-attention detections, one-record-per-pair hard
-- negatives, MSR-VTT's JSON and 1k-A-style split with videos one folder down)
-- trains and evaluates with command-line flags alone, and what used to go
-- silently wrong is an error or explicit: synthetic data never lands in a
-- user's folder, evaluation never substitutes videos, an objective never runs
-- without its inputs, evaluation inputs are checked before training and a
-- finished run keeps its results.
local T = require 'kinema.test'
local kinema = require 'kinema'
local recipe, json = kinema.recipe, require 'kinema.json'

local root = T.tmpdir()
local data_dir, runs = root .. '/public', root .. '/runs'
local web, msr = data_dir .. '/webvid', data_dir .. '/msrvtt'
os.execute('mkdir -p "' .. runs .. '"')
local made = os.execute(string.format('/usr/bin/python3 tests/fixtures/make_public_dataset.py "%s" > "%s/gen.log" 2>&1',
                                      data_dir, root))
local gen_log = io.open(root .. '/gen.log'):read('*a')
assert(made == 0 or made == true, 'tests/fixtures/make_public_dataset.py failed (needs python3-av and numpy, '
       .. 'installed by scripts/dev.sh test):\n' .. gen_log)
local manifest = json.decode(io.open(data_dir .. '/manifest.json'):read('*a'))

local read, write = T.read_file, T.write_file

-- Every file below dir with its size: what "nothing written there" compares.
local function listing(dir)
  local p = io.popen('find "' .. dir .. '" -type f -printf "%P %s\\n" | sort')
  local s = p:read('*a')
  p:close()
  return s
end

local small = {'--tiny', '--train.max_steps', '2', '--train.batch_size', '4', '--train.warmup', '1',
               '--train.checkpoint_every', '2', '--train.num_workers', '1', '--train.log_every', '1',
               '--eval.batch_size', '4', '--image_size', '32'}

local function args(out, extra)
  local argv = {}
  for _, a in ipairs(small) do argv[#argv + 1] = a end
  argv[#argv + 1] = '--out_dir'
  argv[#argv + 1] = runs .. '/' .. out
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  return argv
end

local function main(name, out, extra)
  return recipe.main(require('kinema.recipes.' .. name), args(out, extra))
end

-- The user's WebVid root, by flags alone.
local webvid = {'--data.root', web, '--data.format', 'webvid', '--data.train', 'results_train.csv',
                '--data.test', 'results_test.csv'}
local function with(list, more)
  local out = {}
  for _, a in ipairs(list) do out[#out + 1] = a end
  for _, a in ipairs(more or {}) do out[#out + 1] = a end
  return out
end

local function no_run_in(out)
  T.is_true(read(runs .. '/' .. out .. '/log.jsonl') == nil, out .. ': a log was written, so training started')
  T.is_true(kinema.checkpoint.latest(runs .. '/' .. out) == nil, out .. ': a checkpoint was written')
end

T.test('command line: --data.synth false and --no-KEY are false, not a truthy value', function()
  local spec = require 'kinema.recipes.baseline'
  local defaults = recipe.merge(recipe.common, spec.defaults)
  local cfg = recipe.parse_args({'--data.synth', 'false', '--no-data.train_meta', '--no-data.detections_root',
                                 '--data.vocab', 'none'}, defaults, spec.presets)
  T.eq(cfg.data.synth, false)
  T.eq(cfg.data.train_meta, false)
  T.eq(cfg.data.detections_root, false)
  T.eq(cfg.data.vocab, false)
  T.eq(recipe.parse_args({'--data.synth'}, defaults).data.synth, true)
  T.eq(recipe.parse_args({'--data.synth_options.num_train', '10'}, defaults).data.synth_options.num_train, 10)
  -- a string key keeps digits as text
  T.eq(recipe.parse_args({'--data.train', '2024'}, defaults).data.train, '2024')
end)

T.test('synthetic data is never written into a user\'s data folder', function()
  local before = listing(web)
  -- the default annotation names are not there: an error naming the file and the ways on, no generation
  T.raises(function() main('baseline', 'nosynth', {'--data.root', web}) end, web .. '/train.csv: no such file')
  T.raises(function() main('baseline', 'nosynth', {'--data.root', web}) end, 'kinema synth --out')
  -- asking for it explicitly into a folder kinema did not make is refused
  T.raises(function() main('baseline', 'nosynth', {'--data.root', web, '--data.synth', 'true'}) end,
           "refusing to write into '" .. web .. "'")
  T.eq(listing(web), before)
  no_run_in('nosynth')
end)

T.test('flags alone: WebVid CSVs, VinVL detections, per-pair hard negatives; vocabulary and tagger built in', function()
  local before = listing(data_dir)
  local out = runs .. '/stoa'
  local cmd = string.format('"%s" run scripts/pretrain_stoa.lua %s --out_dir "%s" --data.root "%s" --data.format webvid '
                            .. '--data.train results_train.csv --data.test results_test.csv --data.detections_root detections '
                            .. '--data.hard_negatives hard_negatives.jsonl > "%s.log" 2>&1', kinema.executable(),
                            table.concat(small, ' '), out, web, out)
  local status = os.execute(cmd)
  local log = read(out .. '.log')
  T.is_true(status == 0 or status == true, 'run failed:\n' .. log)
  T.eq(listing(data_dir), before, 'the data folder changed')
  -- the vocabulary comes from these captions, into the run folder, and the run says so
  local vocab = read(out .. '/vocab.txt')
  T.is_true(vocab ~= nil and (vocab:find('\nseen\n') ~= nil and vocab:find('\nafar\n') ~= nil), 'vocab: ' .. tostring(vocab))
  T.is_true(log:find('built a %d+%-token WordPiece vocabulary from the 12 training captions') ~= nil, log)
  local res = json.decode(read(out .. '/results.json'))
  T.eq(res.metrics.num_test_videos, #manifest.test)
  for _, key in ipairs({'hard_noun', 'hard_verb', 'hard_all', 't2v_R1'}) do
    T.is_true(type(res.metrics[key]) == 'number' and res.metrics[key] >= 0 and res.metrics[key] <= 100, key)
  end
  -- hard_all pools every pair: noun and verb accuracies weighted by their counts
  local nouns, pairs_n = manifest.hard_noun, manifest.hard_pairs
  T.close(res.metrics.hard_all, (res.metrics.hard_noun * nouns + res.metrics.hard_verb * (pairs_n - nouns)) / pairs_n,
          {atol = 1e-9})
  -- OTA saw the boxes of the JSON-list and TSV layouts: a real loss, not a zero
  local recs = json.read_lines(out .. '/log.jsonl')
  T.eq(#recs, 2)
  T.is_true(recs[1].ota > 0, 'ota = ' .. tostring(recs[1].ota))
  T.is_true(recs[1].asp > 0, 'asp = ' .. tostring(recs[1].asp))
end)

T.test('flags alone: train on WebVid, evaluate zero-shot on MSR-VTT with a 1k-A-style split file', function()
  local m = main('baseline', 'msrvtt', with(webvid, {'--data.test_root', msr, '--data.test_format', 'msrvtt',
                                                     '--data.test', 'MSRVTT_data.json',
                                                     '--data.test_split', 'MSRVTT_JSFUSION_test.csv',
                                                     '--data.test_video_root', 'videos'}))
  T.eq(m.num_test_videos, #manifest.msrvtt_test)
  T.eq(m.hard_all, nil)  -- no hard-negative file for this split
  local res = json.decode(read(runs .. '/msrvtt/results.json'))
  T.eq(res.metrics.num_test_videos, #manifest.msrvtt_test)
  -- evaluating the saved run reads the vocabulary it built
  local again = recipe.evaluate('baseline', args('msrvtt', with(webvid, {'--data.test_root', msr, '--data.test_format',
                                'msrvtt', '--data.test', 'MSRVTT_data.json', '--data.test_split',
                                'MSRVTT_JSFUSION_test.csv'})))
  T.close(again.t2v_R1, m.t2v_R1)
end)

-- A copy of the test CSV with one more row, for a video that is missing or corrupt.
local function test_csv_with(name, videoid, bytes)
  local csv = read(web .. '/results_test.csv') .. videoid .. ',u,PT00H00M02S,extra,"a pink ring falls"\n'
  local path = root .. '/' .. name .. '.csv'
  write(path, csv)
  if bytes then
    os.execute('mkdir -p "' .. web .. '/videos/extra"')
    write(web .. '/videos/extra/' .. videoid .. '.mp4', bytes)
  end
  return path
end

T.test('a missing test video stops the run before training, or is dropped and reported when asked', function()
  local csv = test_csv_with('missing', '999')
  T.raises(function() main('baseline', 'missing', with(webvid, {'--data.test', csv})) end,
           "1 of 7 test videos cannot be read: '999' (" .. web .. '/videos/extra/999.mp4: missing)')
  no_run_in('missing')
  local m = main('baseline', 'dropped', with(webvid, {'--data.test', csv, '--eval.drop_unreadable', 'true'}))
  T.eq(m.num_test_videos, #manifest.test)  -- the gallery holds each readable video once
  T.eq(m.dropped_test_videos, 1)
  local res = json.decode(read(runs .. '/dropped/results.json'))
  T.eq(#res.dropped_test_videos, 1)
  T.eq(res.dropped_test_videos[1].id, '999')
  T.is_true(res.dropped_test_videos[1].error:find('999.mp4', 1, true) ~= nil, res.dropped_test_videos[1].error)
  local note = kinema.eval.dropped_note(res.dropped_test_videos)
  T.is_true(note:find("1 unreadable test video(s) left out (--eval.drop_unreadable): '999'", 1, true) ~= nil, note)
end)

T.test('a corrupt test video is named before training', function()
  local csv = test_csv_with('corrupt', '998', string.rep('not a video ', 100))
  T.raises(function() main('baseline', 'corrupt', with(webvid, {'--data.test', csv})) end, "test videos cannot be read: '998'")
  no_run_in('corrupt')
  os.remove(web .. '/videos/extra/998.mp4')
  os.remove(web .. '/videos/extra')
end)

T.test('an objective without its inputs is an error at start, naming it, the input and the flag', function()
  T.raises(function() main('stoa', 'noboxes', webvid) end,
           "objective 'ota' needs per-video detections ({id}.json, {id}.tsv or a folder {id}/ of .npz frames) and the "
           .. 'training data has none: give --data.detections_root DIR, or turn it off with --weights.ota 0')
  no_run_in('noboxes')
  T.raises(function() main('stoa', 'noboxes', with(webvid, {'--data.detections_root', 'nowhere'})) end,
           '--data.detections_root ' .. web .. '/nowhere: no such folder')
  T.raises(function() main('demovlp', 'noboxes', webvid) end, "objective 'rwa' needs per-video region feature folders")
end)

T.test('evaluation inputs are checked before training; a failed evaluation keeps the run\'s results', function()
  local bad = root .. '/bad_hard.jsonl'
  write(bad, '{"videoid": "' .. manifest.test[1] .. '", "negatives": ["x"], "positive": "p"}\n')
  T.raises(function() main('baseline', 'badhard', with(webvid, {'--data.hard_negatives', bad})) end,
           bad .. ":1: negatives[1] must be an object")
  write(bad, '{"videoid": "' .. manifest.test[1] .. '", "text": "p"}\n')
  T.raises(function() main('baseline', 'badhard', with(webvid, {'--data.hard_negatives', bad})) end,
           bad .. ':1: expected {videoid, positive, negatives')
  no_run_in('badhard')
  T.raises(function() main('baseline', 'badvocab', with(webvid, {'--data.vocab', 'absent.txt'})) end,
           '--data.vocab ' .. web .. '/absent.txt: no such file')
  -- an evaluation that fails after training: results.json keeps the training summary and the error
  local spec = recipe.merge(require 'kinema.recipes.baseline', {})
  local embed_video = spec.embed.video
  spec.embed = {text = spec.embed.text, video = function() error('embedding exploded', 0) end}
  T.raises(function() recipe.main(spec, args('evalfail', webvid)) end,
           'training finished (checkpoints and ' .. runs .. '/evalfail/results.json kept) but the evaluation failed')
  local res = json.decode(read(runs .. '/evalfail/results.json'))
  T.is_true(res.eval_error:find('embedding exploded', 1, true) ~= nil, res.eval_error)
  T.is_true(type(res.metrics.final_loss) == 'number', 'final_loss kept')
  T.is_true(kinema.checkpoint.latest(runs .. '/evalfail') ~= nil, 'checkpoint kept')
  T.is_true(embed_video ~= nil)
end)

T.test('cleanup', function() os.execute('rm -rf "' .. root .. '"') end)
