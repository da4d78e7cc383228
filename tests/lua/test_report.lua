-- kinema report and the TensorBoard event file of a real (tiny) run:
--  - the event file beside log.jsonl reads back with TensorBoard's own reader
--    (tensorboard from PyPI, in a cached virtual environment) to the logged
--    values;
--  - the HTML page is self-contained, holds the curves, the retrieval table,
--    frame strips and hard-negative pairs, and loads in headless Chromium with
--    no console errors and every image decoded; its screenshot is kept
--    (build/test-artifacts/report.png, or $KINEMA_TEST_ARTIFACTS).
local T = require 'kinema.test'
local kinema = require 'kinema'
local json = require 'kinema.json'

local root = T.tmpdir()
local data_dir, run_dir = root .. '/synth', root .. '/run'
kinema.data.synth{out_dir = data_dir, num_train = 8, num_test = 6, width = 64, height = 64, min_duration_s = 2,
                  max_duration_s = 3, region_frames = 4, region_dim = 32, threads = 2}
local exe = kinema.executable()
local artifacts = os.getenv('KINEMA_TEST_ARTIFACTS') or 'build/test-artifacts'
os.execute('mkdir -p "' .. artifacts .. '"')

local read = T.read_file

local function sh(cmd)
  local out = root .. '/sh.out'
  local status = os.execute(cmd .. ' >"' .. out .. '" 2>&1')
  return status == 0 or status == true, read(out) or ''
end

kinema.recipe.main(require('kinema.recipes.baseline'), {
  '--tiny', '--data.root', data_dir, '--train.max_steps', '4', '--train.batch_size', '4', '--train.warmup', '1',
  '--train.checkpoint_every', '4', '--train.num_workers', '1', '--train.log_every', '1', '--eval.batch_size', '6',
  '--eval.every', '2', '--image_size', '32', '--out_dir', run_dir})

local function log_records()
  local out = {}
  for line in (read(run_dir .. '/log.jsonl') or ''):gmatch('[^\n]+') do out[#out + 1] = json.decode(line) end
  return out
end

T.test('the run folder holds config.json and the config in every checkpoint', function()
  local cfg = json.decode(read(run_dir .. '/config.json'))
  T.eq(cfg.train.max_steps, 4)
  T.eq(cfg.out_dir, run_dir)
  local _, meta = torch.load_safetensors(kinema.checkpoint.latest(run_dir))
  T.eq(json.decode(meta.config), cfg)
  T.eq(meta.recipe, 'baseline')
end)

T.test('a checkpoint is never read with another vocabulary (same size, other order)', function()
  local rdata = require 'kinema.recipe_data'
  local checkpoint = kinema.checkpoint.latest(run_dir)
  local _, meta = torch.load_safetensors(checkpoint)
  T.eq(meta.vocab, rdata.vocab_fingerprint(data_dir .. '/vocab.txt'))
  local words = {}
  for w in read(data_dir .. '/vocab.txt'):gmatch('[^\n]+') do words[#words + 1] = w end
  words[#words], words[#words - 1] = words[#words - 1], words[#words]
  local swapped = root .. '/vocab_swapped.txt'
  T.write_file(swapped, table.concat(words, '\n') .. '\n')
  T.raises(function()
    kinema.recipe.evaluate('baseline', {'--config', run_dir .. '/config.json', '--data.vocab', swapped}, checkpoint)
  end, 'was trained with another vocabulary (' .. meta.vocab .. ') than this run reads')
  -- its own vocabulary evaluates as before
  local metrics = kinema.recipe.evaluate('baseline', {'--config', run_dir .. '/config.json'}, checkpoint)
  T.eq(metrics.t2v_R1, json.decode(read(run_dir .. '/results.json')).metrics.t2v_R1)
end)

T.test('CRC-32C of the TFRecord framing matches the published check value', function()
  T.eq(require('kinema._report').crc32c('123456789'), 0xE3069283)
  T.eq(require('kinema._report').crc32c(''), 0)
end)

T.test('TensorBoard reads the event file back to the logged scalars', function()
  local venv = os.getenv('KINEMA_TEST_VENV') or '/tmp/kinema-venv-tensorboard'
  local ok, out = sh(string.format('"%s/bin/python" -c "import tensorboard"', venv))
  if not ok then
    ok, out = sh(string.format('/usr/bin/python3 -m venv "%s" && "%s/bin/pip" install -q tensorboard', venv, venv))
    T.is_true(ok, 'cannot create the tensorboard virtual environment:\n' .. out)
  end
  local script = root .. '/read_tb.py'
  local f = assert(io.open(script, 'wb'))
  f:write([[
import json, sys
from tensorboard.backend.event_processing import event_accumulator
ea = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
ea.Reload()
out = {tag: [[e.step, e.value] for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}
print(json.dumps(out))
]])
  f:close()
  ok, out = sh(string.format('"%s/bin/python" "%s" "%s"', venv, script, run_dir))
  T.is_true(ok, out)
  local scalars = json.decode(out:match('(%b{})%s*$'))
  local train_steps, eval_steps = {}, {}
  for _, r in ipairs(log_records()) do
    if r.kind == 'train' then
      train_steps[#train_steps + 1] = r.step
      T.close(scalars['train/loss'][#train_steps][2], r.loss, {rtol = 1e-6, atol = 1e-7}, 'loss at step ' .. r.step)
      T.eq(scalars['train/loss'][#train_steps][1], r.step)
      T.close(scalars['train/lr'][#train_steps][2], r.lr, {rtol = 1e-6, atol = 0})
      T.close(scalars['train/vtc'][#train_steps][2], r.vtc, {rtol = 1e-6, atol = 1e-7})
    elseif r.kind == 'eval' then
      eval_steps[#eval_steps + 1] = r.step
      T.close(scalars['eval/t2v_R1'][#eval_steps][2], r.t2v_R1, {rtol = 1e-6, atol = 1e-6})
    end
  end
  T.eq(#scalars['train/loss'], 4)
  T.eq(#scalars['train/lr'], 4)  -- the last one is 0.0 (cosine schedule), which must be written too
  T.eq(scalars['train/lr'][4][2], 0)
  T.eq(eval_steps, {2, 4})
end)

T.test('kinema report: a self-contained page that loads in headless Chromium, images decoded', function()
  -- gradient-share fields as the trainer's diagnostics log them
  local f = assert(io.open(run_dir .. '/log.jsonl', 'ab'))
  f:write('{"kind":"train","step":5,"loss":1.5,"grad.vtc.video":0.6,"grad.vtc.text":0.4}\n')
  f:close()
  local page = root .. '/report.html'
  local ok, out = sh(string.format('"%s" report "%s" --out "%s"', exe, run_dir, page))
  T.is_true(ok, out)
  local html = read(page)
  for _, want in ipairs({'<h2>Training</h2>', 'loss: vtc', 'learning rate', '<h2>Gradient shares</h2>',
                         'grad.vtc.&lt;group&gt;', '<h2>Evaluation over steps</h2>', 't2v_R1',
                         '<h2>Zero-shot retrieval</h2>', 'id="examples">Retrieval examples</h2>', 'class="hit correct"',
                         '<h2>Hard negatives the model got wrong</h2>', '<h2>Configuration</h2>'}) do
    T.is_true(html:find(want, 1, true) ~= nil, 'the page lacks ' .. want)
  end
  T.is_true(not html:find('src="http', 1, true) and not html:find('href="http', 1, true)
            and not html:find('<script', 1, true), 'the page reaches outside itself')
  -- every hard-negative pair of the synthetic test split is scored, and the
  -- lost ones are those the evaluation counted as lost (results.json)
  local total = 0
  for line in read(data_dir .. '/test_hard_negatives.jsonl'):gmatch('[^\n]+') do
    local r = json.decode(line)
    total = total + (r.negatives and #r.negatives or 1)
  end
  T.is_true(total > 0, 'the synthetic test split has no hard-negative pairs')
  local results = json.decode(read(run_dir .. '/results.json'))
  local hard_all = results.hard_all or (results.metrics or {}).hard_all
  T.is_true(hard_all ~= nil, 'results.json lacks hard_all')
  local lost = math.floor(total * (1 - hard_all / 100) + 0.5)
  local summary = lost == 0 and string.format('in all %d pairs the true caption', total)
                  or string.format('%d of %d pairs where the edited caption', lost, total)
  T.is_true(html:find(summary, 1, true) ~= nil, 'the hard-negative section lacks "' .. summary .. '"')
  T.eq(select(2, html:gsub('<div class="pair">', '')), math.min(lost, 8))
  local images = select(2, html:gsub('<img ', ''))
  T.is_true(images >= 6, 'frame strips: ' .. images)

  local chromium = 'chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run '
                   .. '--disable-dev-shm-usage --allow-file-access-from-files'
  -- the page itself: a screenshot, and no console errors
  local shot = artifacts .. '/report.png'
  os.remove(shot)
  ok, out = sh(string.format('%s --enable-logging=stderr --v=0 --window-size=1360,2400 --screenshot="%s" "file://%s"',
                             chromium, shot, page))
  T.is_true(ok, out)
  local png = read(shot)
  T.is_true(png ~= nil and png:sub(2, 4) == 'PNG' and #png > 10000, 'no screenshot:\n' .. out)
  for line in out:gmatch('[^\n]+') do
    T.is_true(not line:find('CONSOLE', 1, true) and not line:find('report.html', 1, true), 'console: ' .. line)
  end
  -- every image decodes: a harness page loads the report in a frame and counts
  local harness = root .. '/harness.html'
  f = assert(io.open(harness, 'wb'))
  f:write([[<!DOCTYPE html><html><body><iframe id="r" src="report.html" width="1300" height="900"></iframe>
<pre id="result">pending</pre><script>
window.addEventListener('load', function () {
  var doc = document.getElementById('r').contentDocument, imgs = doc.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++;
  var svgs = doc.querySelectorAll('svg.chart').length;
  document.getElementById('result').textContent = 'images=' + imgs.length + ' undecoded=' + bad + ' charts=' + svgs;
});
</script></body></html>]])
  f:close()
  ok, out = sh(string.format('%s --virtual-time-budget=10000 --dump-dom "file://%s"', chromium, harness))
  T.is_true(ok, out)
  local n, bad, charts = out:match('images=(%d+) undecoded=(%d+) charts=(%d+)')
  T.is_true(n ~= nil, 'the harness did not run:\n' .. out)
  T.eq(tonumber(n), images)
  T.eq(tonumber(bad), 0)
  T.is_true(tonumber(charts) >= 6, 'charts: ' .. tostring(charts))
end)

T.test('kinema report on a folder without a run is a usage error', function()
  local ok, out = sh(string.format('"%s" report "%s"', exe, root .. '/empty'))
  T.is_true(not ok and out:find('holds no training run', 1, true) ~= nil, out)
end)
