-- The report's grounding pictures: where each noun of a caption is grounded,
-- drawn on the frames (S-ViLM group attention, STOA trajectory boxes, DemoVLP
-- region-word attention).
--  - the drawing primitives against hand-computed pixels;
--  - each recipe's spec.grounding against an independent computation from the
--    model's own outputs (a short real run of each recipe, its checkpoint
--    reloaded as the report reloads it), and the drawn picture against it;
--  - the page holds one decodable image per grounded noun (headless Chromium).
local T = require 'kinema.test'
local kinema = require 'kinema'
local report = require 'kinema.report'

local root = T.tmpdir()
local data_dir = root .. '/synth'
kinema.data.synth{out_dir = data_dir, num_train = 8, num_test = 6, width = 64, height = 64, min_duration_s = 2,
                  max_duration_s = 3, region_frames = 4, region_dim = 32, threads = 2}
local exe = kinema.executable()
local read = T.read_file

local function sh(cmd)
  local out = root .. '/sh.out'
  local status = os.execute(cmd .. ' >"' .. out .. '" 2>&1')
  return status == 0 or status == true, read(out) or ''
end

-- A two-step run of a recipe's tiny preset on 4 frames of 32^2.
local runs = {}
local function run(name)
  if runs[name] then return runs[name] end
  local dir = root .. '/run_' .. name
  local args = {'--tiny', '--data.root', data_dir, '--train.max_steps', '2', '--train.batch_size', '4',
                '--train.warmup', '1', '--train.checkpoint_every', '2', '--train.num_workers', '1',
                '--train.log_every', '1', '--eval.batch_size', '6', '--image_size', '32', '--frames', '4',
                '--out_dir', dir}
  if name == 'demovlp' then args[#args + 1] = '--region_dim'; args[#args + 1] = '32' end
  kinema.recipe.main(require('kinema.recipes.' .. name), args)
  runs[name] = dir
  return dir
end

local function grounding_of(name)
  local r = assert(report.load_run(run(name)))
  return r, report.grounding(r.spec, r.model, r.cfg, r.tok, {grounding = 6})
end

local function unit(x) return x / x:norm(2, {-1}, true):clamp_min(1e-12) end

T.test('draw_box outlines exactly the box on its frame', function()
  local strip = torch.zeros({8, 16, 3}, {dtype = torch.uint8})  -- two 8x8 frames side by side
  report.draw_box(strip, 2, 1, {0.25, 0.25, 0.75, 0.75}, {255, 0, 0}, 1, 1)
  local red = strip:select(2, 0)
  -- columns and rows [2, 6) of frame 1 (x offset 8): the 4x4 outline, 12 pixels
  T.eq(red:gt(0):sum():item(), 12)
  for _, p in ipairs({{2, 10}, {2, 13}, {5, 10}, {5, 13}, {3, 10}, {4, 13}, {2, 11}, {5, 12}}) do
    T.eq(red[p[1]][p[2]]:item(), 255, 'outline pixel ' .. p[1] .. ',' .. p[2])
  end
  T.eq(red[3][11]:item(), 0, 'inside')
  T.eq(red:narrow(1, 0, 8):sum():item(), 0, 'frame 0 untouched')
  T.eq(strip:select(2, 1):sum():item(), 0, 'green untouched')
  -- opacity 0.5 over grey 100: round(100 * 0.5 + 200 * 0.5) = 150
  strip = torch.full({4, 4, 3}, 100, {dtype = torch.uint8})
  report.draw_box(strip, 1, 0, {0, 0, 1, 1}, {200, 0, 0}, 0.5, 1)
  T.eq(strip[0][0]:totable(), {150, 50, 50})
  T.eq(strip[1][1]:totable(), {100, 100, 100})
end)

T.test('overlay_heat tints each patch by its heat relative to the strongest', function()
  local strip = torch.full({4, 8, 3}, 96, {dtype = torch.uint8})  -- two 4x4 frames, 2x2 patches of 2x2 pixels
  local heat = torch.tensor({{{0, 1}, {2, 4}}, {{4, 0}, {0, 0}}}, {dtype = torch.float32})
  local out = report.overlay_heat(strip, heat, {200, 0, 0}, 0.5)
  local function px(y, x) return out[y][x]:totable() end
  -- opacity a = 0.5 * heat / 4; channel = 96 (1 - a) + colour a
  T.eq(px(0, 0), {96, 96, 96})            -- frame 0, patch (0,0): heat 0
  T.eq(px(1, 3), {109, 84, 84})           -- frame 0, patch (0,1): a = 0.125
  T.eq(px(3, 3), {148, 48, 48})           -- frame 0, patch (1,1): a = 0.5
  T.eq(px(2, 0), {122, 72, 72})           -- frame 0, patch (1,0): a = 0.25
  T.eq(px(0, 5), {148, 48, 48})           -- frame 1, patch (0,0): heat 4
  T.eq(px(3, 7), {96, 96, 96})
end)

T.test('S-ViLM: group attention of each noun phrase, drawn as the patches of its groups', function()
  local r, g = grounding_of('svilm')
  local model, cfg, tok, batch = r.model, r.cfg, r.tok, g.batch
  T.is_true(#g.samples >= 3, 'samples: ' .. #g.samples)
  local v = torch.no_grad(function() return model:encode_video(batch.video) end)
  local side = cfg.image_size / model.cfg.video.patch_size
  local slices = batch.video:size(1) / model.cfg.video.tubelet
  local tau_g = cfg.loss.grounding.tau_g or 0.07
  local checked = 0
  for i, sample in ipairs(g.samples) do
    local phrases = kinema.data.parts(sample.caption).noun_phrases
    T.eq(#sample.items, math.min(#phrases, cfg.phrases), sample.caption)
    for k, item in ipairs(sample.items) do
      T.eq(item.noun, phrases[k])
      -- the noun embedding: the 12 prompts encoded one at a time, each unit length, averaged
      local prompts = kinema.data.prompts(phrases[k])
      local sum
      for _, p in ipairs(prompts) do
        local ids, mask = tok:encode_batch({p}, cfg.phrase_len)
        local e = unit(torch.no_grad(function() return model:encode_text(ids, mask).embed end)[0])
        sum = sum and sum + e or e
      end
      local n = unit(sum / #prompts)
      -- softmax over the groups of cos / tau_g, one group at a time
      local groups = v.groups[i - 1]
      local logits = {}
      for m = 0, groups:size(0) - 1 do logits[m + 1] = (unit(groups[m]) * n):sum():item() / tau_g end
      local w = torch.tensor(logits, {dtype = torch.float64}):softmax(0)
      -- each patch (one tubelet slice) takes the weight of the group that owns it
      local owner = v.assignment[i - 1]:argmax(0):totable()  -- [slices * side * side]
      local heat = torch.zeros({slices, side, side}, {dtype = torch.float64})
      for p, m in ipairs(owner) do
        local s, rest = math.floor((p - 1) / (side * side)), (p - 1) % (side * side)
        heat[s][math.floor(rest / side)][rest % side] = w[m]:item()
      end
      local raw = item.raw.heat:double()
      T.close(raw:narrow(0, 0, 1), heat:narrow(0, 0, 1), {atol = 1e-5, rtol = 1e-4}, item.noun)
      for t = 0, batch.video:size(1) - 1 do
        T.close(raw:narrow(0, t, 1), heat:narrow(0, math.floor(t / model.cfg.video.tubelet), 1),
                {atol = 1e-5, rtol = 1e-4}, item.noun .. ' frame ' .. t)
      end
      T.close(item.weight, w:max():item(), {atol = 1e-5, rtol = 1e-4})
      -- the picture: the strongest patch carries the full tint (opacity 0.6)
      local strip = report.upscale(report.frame_strip(batch.video[i - 1], cfg.normalize),
                                   math.ceil(128 / cfg.image_size))
      local W, cell = strip:size(1) / batch.video:size(1), strip:size(0) / side
      local flat = raw:reshape({-1})
      local best = flat:argmax():item()
      local t, rest = math.floor(best / (side * side)), best % (side * side)
      local y, x = math.floor(rest / side) * cell, t * W + (rest % side) * cell
      local color = report.rgb(item.color)
      local want = {}
      for c = 1, 3 do want[c] = math.floor(strip[y][x][c - 1]:item() * 0.4 + color[c] * 0.6 + 0.5) end
      local got = item.image[y][x]:totable()
      for c = 1, 3 do T.is_true(math.abs(got[c] - want[c]) <= 1, 'tinted pixel ' .. c) end
      checked = checked + 1
    end
  end
  T.is_true(checked >= 3, 'grounded phrases: ' .. checked)
end)

T.test('STOA: each noun drawn as the boxes of the trajectory OTA matches it to', function()
  local r, g = grounding_of('stoa')
  local model, batch = r.model, g.batch
  local v, t = torch.no_grad(function()
    return model:encode_video(batch.video, batch.boxes, batch.classes, batch.scores), model:encode_text(batch.ids, batch.mask)
  end)
  local checked = 0
  for i, sample in ipairs(g.samples) do
    local b = i - 1
    local positions = {}
    for _, p in ipairs(batch.noun_positions[b]:totable()) do if p >= 0 then positions[#positions + 1] = p end end
    local valid = {}
    for n, ok in ipairs(v.trajectory_mask[b]:totable()) do if ok then valid[#valid + 1] = n - 1 end end
    -- P = softmax over [valid nouns ; t_CLS] of o . t, recomputed from the outputs
    local targets = {}
    for _, p in ipairs(positions) do targets[#targets + 1] = t.tokens[b][p] end
    targets[#targets + 1] = t.tokens[b][t.pool_index[b]:item()]
    local used = {}
    for _, item in ipairs(sample.items) do
      T.is_true(not used[item.raw.trajectory], 'a trajectory matched twice')
      used[item.raw.trajectory] = true
      T.eq(v.trajectory_mask[b][item.raw.trajectory]:item(), true)
      local class = v.trajectory_class[b][item.raw.trajectory]:item()
      T.eq(item.raw.class, class)
      T.is_true(class >= 0, 'class of a valid trajectory')
      local o = v.trajectories[b][item.raw.trajectory]
      local logits = {}
      for k, target in ipairs(targets) do logits[k] = (o * target):sum():item() end
      local P = torch.tensor(logits, {dtype = torch.float64}):softmax(0)
      local c
      for k, p in ipairs(positions) do if p == item.raw.position then c = k end end
      T.is_true(c ~= nil, 'the noun position is one of the caption nouns')
      T.close(item.weight, P[c - 1]:item(), {atol = 1e-5, rtol = 1e-4}, item.noun)
      -- the boxes drawn: every detection of that class, frame by frame
      local want = {}
      for f, frame in ipairs(batch.classes[b]:totable()) do
        for k, cls in ipairs(frame) do
          if cls == class then want[#want + 1] = {frame = f - 1, box = batch.boxes[b][f - 1][k - 1]:totable()} end
        end
      end
      T.is_true(#want > 0, 'a trajectory follows a detected class')
      T.eq(#item.raw.boxes, #want)
      for k, w in ipairs(want) do
        T.eq(item.raw.boxes[k].frame, w.frame)
        T.close(torch.tensor(item.raw.boxes[k].box), torch.tensor(w.box))
      end
      -- the picture: the top-left corner of each box is in the noun's colour
      local strip = report.upscale(report.frame_strip(batch.video[b], r.cfg.normalize), math.ceil(128 / r.cfg.image_size))
      local W, H = strip:size(1) / batch.video:size(1), strip:size(0)
      local color = report.rgb(item.color)
      for _, w in ipairs(want) do
        local x = w.frame * W + math.max(0, math.min(W - 1, math.floor(w.box[1] * W)))
        local y = math.max(0, math.min(H - 1, math.floor(w.box[2] * H)))
        local got, before = item.image[y][x]:totable(), strip[y][x]:totable()
        for ch = 1, 3 do
          -- opacity 1 (every box of a trajectory has weight 1)
          T.is_true(math.abs(got[ch] - color[ch]) <= 1, string.format('corner %d,%d channel %d: %d vs %d (was %d)', y, x,
                                                                       ch, got[ch], color[ch], before[ch]))
        end
      end
      checked = checked + 1
    end
  end
  T.is_true(checked >= 1, 'no noun was matched to a trajectory')
end)

T.test('DemoVLP: each noun drawn as the regions its word -> region attention keeps', function()
  local r, g = grounding_of('demovlp')
  local model, batch, cfg = r.model, g.batch, r.cfg
  local v, t = torch.no_grad(function()
    return model:encode_video(batch.features, batch.locations, batch.frame_index, batch.region_mask),
           model:encode_text(batch.ids, batch.mask)
  end)
  local lambda = cfg.loss.rwa.lambda or 1
  local checked = 0
  for i, sample in ipairs(g.samples) do
    local b = i - 1
    local valid = {}
    for n, ok in ipairs(batch.region_mask[b]:totable()) do if ok then valid[#valid + 1] = n - 1 end end
    for _, item in ipairs(sample.items) do
      local word = unit(t.words[b][item.raw.position])
      local logits = {}
      for k, n in ipairs(valid) do logits[k] = lambda * (unit(v.regions[b][n]) * word):sum():item() end
      local a = torch.tensor(logits, {dtype = torch.float64}):softmax(0):totable()
      local mean = 0
      for _, x in ipairs(a) do mean = mean + x / #a end
      local want = {}
      for k, n in ipairs(valid) do if a[k] > mean then want[#want + 1] = {region = n, weight = a[k]} end end
      T.eq(#item.raw.boxes, #want, item.noun)
      for k, w in ipairs(want) do
        local box = item.raw.boxes[k]
        T.eq(box.region, w.region)
        T.close(box.weight, w.weight, {atol = 1e-5, rtol = 1e-4})
        T.close(torch.tensor(box.box), batch.locations[b][w.region]:narrow(0, 0, 4):double())
        T.eq(box.frame, batch.frame_index[b][w.region]:item())  -- 4 region files on 4 decoded frames
      end
      checked = checked + 1
    end
  end
  T.is_true(checked >= 3, 'grounded nouns: ' .. checked)
end)

T.test('the page shows one decodable picture per grounded noun, for each of the three recipes', function()
  local chromium = 'chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run '
                   .. '--disable-dev-shm-usage --allow-file-access-from-files'
  for _, name in ipairs({'svilm', 'stoa', 'demovlp'}) do
    local page = root .. '/' .. name .. '.html'
    local ok, out = sh(string.format('"%s" report "%s" --out "%s"', exe, run(name), page))
    T.is_true(ok, out)
    local html = read(page)
    local section = html:match('<h2 id="grounding">(.-)<h2>')
    T.is_true(section ~= nil, name .. ': no grounding section')
    T.is_true(not section:find('no pictures', 1, true), name .. ': ' .. section:sub(1, 400))
    local pictures = select(2, section:gsub('<div class="ground"><img ', ''))
    local _, g = grounding_of(name)
    local items = 0
    for i = 1, 3 do items = items + #g.samples[i].items end
    T.eq(pictures, items, name .. ': one picture per grounded noun of the first 3 captions')
    T.is_true(pictures >= 1, name .. ': no grounding picture')
    local harness = root .. '/harness_' .. name .. '.html'
    T.write_file(harness, string.format([[<!DOCTYPE html><html><body><iframe id="r" src="%s.html" width="1300"
height="900"></iframe><pre id="result">pending</pre><script>
window.addEventListener('load', function () {
  var imgs = document.getElementById('r').contentDocument.querySelectorAll('div.ground img'), bad = 0;
  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth < 256) bad++;
  document.getElementById('result').textContent = 'images=' + imgs.length + ' undecoded=' + bad;
});
</script></body></html>]], name))
    ok, out = sh(string.format('%s --virtual-time-budget=10000 --dump-dom "file://%s"', chromium, harness))
    T.is_true(ok, out)
    local n, bad = out:match('images=(%d+) undecoded=(%d+)')
    T.is_true(n ~= nil, 'the harness did not run:\n' .. out)
    T.eq(tonumber(n), pictures, name)
    T.eq(tonumber(bad), 0, name)
  end
end)
