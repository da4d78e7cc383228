-- kinema.report: one self-contained HTML page about a training run
-- (`kinema report RUN_DIR [--out FILE.html]`). Everything is inline (SVG
-- charts, PNG frames as data: URIs, CSS), so the page opens without a network:
--   - loss curves per objective, learning rate, gradient norm (log.jsonl);
--   - gradient-share diagnostics, the grad.<objective>.<group> fields when logged;
--   - evaluation metrics over steps (the log's eval records);
--   - the zero-shot retrieval table (results.json);
--   - from the newest checkpoint, re-evaluated on the test split: for sample
--     queries the top-5 retrieved videos as frame strips (the correct one
--     marked), and the hard-negative pairs the model got wrong; where the
--     recipe has spec.grounding, each noun of a few captions drawn on the
--     frames where the model grounds it (kinema.grounding);
--   - the configuration (config.json).
local torch = require 'torch'
local json = require 'kinema.json'
local cli = require 'kinema.cli'
local read_file = require('kinema.sys').read_file

local report = {}

-- ---- small helpers ------------------------------------------------------------------------

local function escape(s)
  return (tostring(s):gsub('[&<>"]', {['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;'}))
end
report.escape = escape

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function report.base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = math.floor(n / 262144) % 64, math.floor(n / 4096) % 64
    local c3, c4 = math.floor(n / 64) % 64, n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
                    .. (b and b64chars:sub(c3 + 1, c3 + 1) or '=') .. (c and b64chars:sub(c4 + 1, c4 + 1) or '=')
  end
  return table.concat(out)
end


local function fmt(v)
  if type(v) ~= 'number' then return tostring(v) end
  if v ~= v then return 'nan' end
  if v == 0 then return '0' end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return string.format('%.2e', v) end
  return string.format('%.4g', v)
end

-- ---- charts -----------------------------------------------------------------------------

local palette = {'#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf',
                 '#7f7f7f', '#bcbd22'}

-- An SVG line chart: series = {{name =, x = {...}, y = {...}}}; opts.title,
-- opts.ylabel, opts.log (log10 y axis when every value is positive).
function report.line_chart(series, opts)
  opts = opts or {}
  local W, H, left, right, top, bottom = 420, 240, 58, 12, 26, 34
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  local use_log = opts.log
  for _, s in ipairs(series) do
    for i, x in ipairs(s.x) do
      local y = s.y[i]
      if y == y and y ~= math.huge and y ~= -math.huge then
        if y <= 0 then use_log = false end
        xmin, xmax = math.min(xmin, x), math.max(xmax, x)
        ymin, ymax = math.min(ymin, y), math.max(ymax, y)
      end
    end
  end
  local parts = {string.format('<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                               .. 'viewBox="0 0 %d %d" role="img">', W, H, W, H)}
  parts[#parts + 1] = string.format('<text x="%d" y="16" class="title">%s</text>', left, escape(opts.title or ''))
  if xmin == math.huge then
    parts[#parts + 1] = string.format('<text x="%d" y="%d">no values</text></svg>', left, H / 2)
    return table.concat(parts)
  end
  local function ty(y) return use_log and math.log10(y) or y end
  local lo, hi = ty(ymin), ty(ymax)
  if hi - lo < 1e-12 then lo, hi = lo - 0.5, hi + 0.5 end
  if xmax == xmin then xmin, xmax = xmin - 1, xmax + 1 end
  local pw, ph = W - left - right, H - top - bottom
  local function px(x) return left + (x - xmin) / (xmax - xmin) * pw end
  local function py(y) return top + (1 - (ty(y) - lo) / (hi - lo)) * ph end
  parts[#parts + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>', left, top, pw, ph)
  for k = 0, 4 do  -- y grid and labels
    local v = lo + (hi - lo) * k / 4
    local y = top + (1 - k / 4) * ph
    parts[#parts + 1] = string.format('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>', left, left + pw, y, y)
    parts[#parts + 1] = string.format('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>', left - 4,
                                      y + 4, fmt(use_log and 10 ^ v or v))
  end
  for k = 0, 4 do
    local v = xmin + (xmax - xmin) * k / 4
    parts[#parts + 1] = string.format('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>', px(v),
                                      top + ph + 14, fmt(math.floor(v + 0.5)))
  end
  parts[#parts + 1] = string.format('<text x="%d" y="%d" class="tick" text-anchor="middle">%s</text>', left + pw / 2,
                                    H - 4, escape(opts.xlabel or 'step'))
  for i, s in ipairs(series) do
    local color = palette[(i - 1) % #palette + 1]
    local pts = {}
    for j, x in ipairs(s.x) do
      local y = s.y[j]
      if y == y and y ~= math.huge and y ~= -math.huge then
        pts[#pts + 1] = string.format('%.1f,%.1f', px(x), py(y))
      end
    end
    if #pts == 1 then
      local x, y = pts[1]:match('([^,]+),(.+)')
      parts[#parts + 1] = string.format('<circle cx="%s" cy="%s" r="3" fill="%s"/>', x, y, color)
    else
      parts[#parts + 1] = string.format('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>', color,
                                        table.concat(pts, ' '))
    end
    if #series > 1 then
      parts[#parts + 1] = string.format('<text x="%d" y="%d" class="legend" fill="%s">%s</text>', left + pw - 4,
                                        top + 12 * i, color, escape(s.name))
    end
  end
  parts[#parts + 1] = '</svg>'
  return table.concat(parts)
end

-- ---- the run's files ----------------------------------------------------------------------

-- Train and eval records of log.jsonl, and the series of each numeric field.
function report.read_log(run_dir)
  local path = run_dir .. '/log.jsonl'
  local text = read_file(path)
  if not text then return nil end
  local train, eval = {}, {}
  local n = 0
  for line in text:gmatch('[^\n]+') do
    n = n + 1
    local ok, r = pcall(json.decode, line, path .. ':' .. n)
    if ok and type(r) == 'table' then
      if r.kind == 'eval' then eval[#eval + 1] = r else train[#train + 1] = r end
    end
  end
  local function series(records)
    local out, names = {}, {}
    for _, r in ipairs(records) do
      for k, v in pairs(r) do
        if type(v) == 'number' and k ~= 'step' and k ~= 'epoch' then
          if not out[k] then out[k] = {name = k, x = {}, y = {}}; names[#names + 1] = k end
          local s = out[k]
          s.x[#s.x + 1], s.y[#s.y + 1] = r.step, v
        end
      end
    end
    table.sort(names)
    return out, names
  end
  local ts, tnames = series(train)
  local es, enames = series(eval)
  return {train = ts, train_names = tnames, eval = es, eval_names = enames, records = #train}
end

local not_objectives = {loss = true, lr = true, clips_per_s = true, time = true, samples_seen = true, grad_norm = true}

-- ---- pictures from the newest checkpoint -------------------------------------------------

local means = {clip = {{0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}},
               imagenet = {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}}}

-- Frames [T,3,H,W] as the loader normalised them -> uint8 [H, T*W(+gaps), 3] strip.
function report.frame_strip(video, normalize)
  local x = video:float()
  local stats = means[normalize]
  if stats then
    local m = torch.tensor(stats[1]):view({1, 3, 1, 1})
    local s = torch.tensor(stats[2]):view({1, 3, 1, 1})
    x = x * s + m
  end
  x = (x * 255):clamp(0, 255):round():to(torch.uint8)
  local T = x:size(0)
  local frames = {}
  for t = 0, T - 1 do frames[#frames + 1] = x[t]:permute({1, 2, 0}) end
  return torch.cat(frames, 1):contiguous()
end

-- ---- grounding pictures ---------------------------------------------------------------------

local function rgb(hex)
  return {tonumber(hex:sub(2, 3), 16), tonumber(hex:sub(4, 5), 16), tonumber(hex:sub(6, 7), 16)}
end
report.rgb = rgb

-- An image [H, W, 3] uint8 scaled up `s` times (nearest), so boxes drawn on
-- small frames stay visible.
function report.upscale(image, s)
  if s <= 1 then return image end
  return image:repeat_interleave(s, {dim = 0}):repeat_interleave(s, {dim = 1}):contiguous()
end

-- Blends `color` ({r, g, b}) into the pixels of a region view with opacity alpha.
local function blend_into(view, color, alpha)
  local c = torch.tensor(color, {dtype = torch.float32}):view({1, 1, 3})
  view:copy_((view:to(torch.float32) * (1 - alpha) + c * alpha):round():clamp(0, 255):to(torch.uint8))
end

-- Tints a strip of T frames ([H, T*W, 3] uint8, frames side by side) by a heat
-- map [T, gh, gw] (each cell one patch): a pixel's opacity is alpha * heat /
-- max(heat). Returns a new strip.
function report.overlay_heat(strip, heat, color, alpha)
  local T, gh, gw = heat:size(0), heat:size(1), heat:size(2)
  local H, W = strip:size(0), strip:size(1) / T
  assert(H % gh == 0 and W % gw == 0, 'overlay_heat: the frame does not split into the patch grid')
  local a = heat:to(torch.float32):clamp_min(0)
  a = a / a:max():clamp_min(1e-12)
  a = a:repeat_interleave(H / gh, {dim = 1}):repeat_interleave(W / gw, {dim = 2})  -- [T, H, W]
  a = a:permute({1, 0, 2}):reshape({H, T * W, 1}) * alpha
  local c = torch.tensor(color, {dtype = torch.float32}):view({1, 1, 3})
  return (strip:to(torch.float32) * (1 - a) + c * a):round():clamp(0, 255):to(torch.uint8)
end

-- Draws the outline of box {x1, y1, x2, y2} (normalised to the frame) on frame
-- t (0-based) of a strip of T frames, `thickness` pixels wide, in place.
-- The outline covers pixel columns [floor(x1 W), ceil(x2 W)) (and rows alike).
function report.draw_box(strip, T, t, box, color, alpha, thickness)
  local H, W = strip:size(0), strip:size(1) / T
  local function span(lo, hi, size)
    local a = math.max(0, math.min(size - 1, math.floor(lo * size)))
    local b = math.max(a + 1, math.min(size, math.ceil(hi * size)))
    return a, b
  end
  local x1, x2 = span(box[1], box[3], W)
  local y1, y2 = span(box[2], box[4], H)
  local th = math.max(1, math.min(thickness or 2, math.floor((x2 - x1) / 2), math.floor((y2 - y1) / 2)))
  local frame = strip:narrow(1, t * W, W)
  local function fill(y, h, x, w) if h > 0 and w > 0 then blend_into(frame:narrow(0, y, h):narrow(1, x, w), color, alpha) end end
  fill(y1, th, x1, x2 - x1)                      -- top
  fill(y2 - th, th, x1, x2 - x1)                 -- bottom
  fill(y1 + th, y2 - y1 - 2 * th, x1, th)        -- left
  fill(y1 + th, y2 - y1 - 2 * th, x2 - th, th)   -- right
  return strip
end

-- The picture of one grounding item (kinema.grounding) on a strip of T frames
-- [H, T*W, 3]: the heat map tinted and/or the boxes outlined, opacity by weight.
function report.draw_grounding(strip, T, item, color)
  local out = strip:clone()
  if item.heat ~= nil then out = report.overlay_heat(out, item.heat, color, 0.6) end
  local top = 0
  for _, b in ipairs(item.boxes or {}) do top = math.max(top, b.weight or 1) end
  for _, b in ipairs(item.boxes or {}) do
    local w = top > 0 and (b.weight or 1) / top or 1
    report.draw_box(out, T, b.frame, b.box, color, 0.35 + 0.65 * w, math.max(2, math.floor(out:size(0) / 48)))
  end
  return out
end

local function png_uri(image)
  return 'data:image/png;base64,' .. report.base64(require('kinema._report').encode_png(image))
end

-- The newest checkpoint of a run rebuilt as its recipe built it:
-- spec, cfg, tokenizer, model (eval mode), checkpoint path; nil, why without one.
function report.load_run(run_dir, overrides)
  local recipe = require 'kinema.recipe'
  local rdata = require 'kinema.recipe_data'
  local ckpt = require 'kinema.checkpoint'
  local checkpoint = ckpt.latest(run_dir)
  if not checkpoint then return nil, 'no checkpoint in ' .. run_dir end
  local _, meta = torch.load_safetensors(checkpoint)
  local name = meta.recipe
  if not name then return nil, checkpoint .. ' does not record its recipe' end
  local base_name = name:match('^(.-)_ft$')
  local spec
  if base_name then
    spec = require('kinema.recipes.finetune_retrieval').spec(require('kinema.recipes.' .. base_name))
  else
    spec = require('kinema.recipes.' .. name)
  end
  local defaults = recipe.merge(recipe.common, spec.defaults or {})
  local cfg = recipe.parse_args({'--config', run_dir .. '/config.json'}, defaults, spec.presets)
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  local tok, vocab = rdata.tokenizer_or_synth(cfg)
  torch.manual_seed(cfg.seed + 1)
  local model = spec.build(cfg, tok)
  ckpt.load_init(model, checkpoint, nil, {vocab = vocab})
  model:eval()
  return {spec = spec, cfg = cfg, tok = tok, model = model, checkpoint = checkpoint, recipe = name}
end

-- Re-evaluates the newest checkpoint of the run on the test split: the
-- similarity matrix, captions and frame strips, and the hard-negative pairs.
function report.examples(run_dir, opts)
  opts = opts or {}
  local rdata = require 'kinema.recipe_data'
  local eval = require 'kinema.eval'
  local run, why = report.load_run(run_dir, opts.overrides)
  if not run then return nil, why end
  local spec, cfg, tok, model, checkpoint, name = run.spec, run.cfg, run.tok, run.model, run.checkpoint, run.recipe
  local ds = rdata.dataset(cfg, 'test')
  local own = spec.loader_options(cfg, tok, 'test')
  own.video = nil  -- decoded for the pictures even where the model reads no pixels (DemoVLP)
  local loader = rdata.loader(cfg, ds, 'test', own)
  local videos, texts, ids, captions, strips = {}, {}, {}, {}, {}
  torch.no_grad(function()
    for batch in loader:iter(0) do
      videos[#videos + 1] = spec.embed.video(model, batch, cfg)
      texts[#texts + 1] = spec.embed.text(model, batch.ids, batch.mask, cfg)
      for i, id in ipairs(batch.id) do
        ids[#ids + 1] = id
        captions[#captions + 1] = batch.caption[i]
        strips[#strips + 1] = report.frame_strip(batch.video[i - 1], cfg.normalize)
      end
    end
  end)
  loader:close()
  local V, Tt = eval.cat_embeddings(videos), eval.cat_embeddings(texts)
  local score = spec.embed.score
  local sim = eval.similarity(Tt, V, {score_fn = score and function(q, g) return score(model, q, g, cfg) end})
  local out = {checkpoint = checkpoint, recipe = name, sim = sim, ids = ids, captions = captions, strips = strips,
               hard = {}}
  -- hard-negative pairs: the same file the evaluation reads, scored by embedding
  -- cosine; out.hard_total counts every pair of the test videos, out.hard the lost ones
  local path = rdata.data_source(cfg, 'test').hard_negatives
  if path then
    local found = rdata.read_hard_negatives(path, ids)
    out.hard_total = #found
    if #found > 0 then
      local positives, negatives, rows = {}, {}, {}
      for k, p in ipairs(found) do positives[k], negatives[k], rows[k] = p.positive, p.negative, p.row end
      torch.no_grad(function()
        local row_t = torch.tensor(rows, {dtype = torch.int64})
        local pos = eval.pair_scores(model, cfg, spec, tok, V, positives, row_t)
        local neg = eval.pair_scores(model, cfg, spec, tok, V, negatives, row_t)
        for k, p in ipairs(found) do
          local ps, ns = pos[k - 1]:item(), neg[k - 1]:item()
          if ns >= ps then
            out.hard[#out.hard + 1] = {row = p.row, kind = p.kind, positive = p.positive, negative = p.negative,
                                       pos = ps, neg = ns}
          end
        end
      end)
    end
  end
  if spec.grounding then
    local ok, g = pcall(report.grounding, spec, model, cfg, tok, opts)
    out.grounding = ok and g or {about = spec.grounding.about, samples = {}, error = tostring(g):match('^[^\n]*')}
  end
  return out
end

-- The recipe's grounding of the nouns of the first opts.grounding (default 3)
-- test captions, each noun drawn on its video's frames:
-- {about, samples = {{id, caption, items = {{noun, weight, color, image}}}}}.
function report.grounding(spec, model, cfg, tok, opts)
  local rdata = require 'kinema.recipe_data'
  local count = (opts or {}).grounding or 3
  local ds = rdata.dataset(cfg, 'test')
  local own = spec.grounding.loader_options(cfg, tok)
  own.batch_size = count  -- only the captions drawn
  local loader = rdata.loader(cfg, ds, 'test', own)
  local batch = loader:iter(0)()
  loader:close()
  local out = {about = spec.grounding.about, samples = {}}
  if not batch then return out end
  local T = batch.video:size(1)
  local per_sample = torch.no_grad(function() return spec.grounding.run(model, batch, cfg, tok) end)
  out.batch = batch
  for i = 1, math.min(count, #batch.id) do
    local strip = report.frame_strip(batch.video[i - 1], cfg.normalize)
    local scale = math.max(1, math.ceil(128 / strip:size(0)))
    strip = report.upscale(strip, scale)
    local sample = {id = batch.id[i], caption = batch.caption[i], items = {}}
    for k, item in ipairs(per_sample[i] or {}) do
      local color = palette[(k - 1) % #palette + 1]
      sample.items[k] = {noun = item.noun, weight = item.weight, color = color, boxes = item.boxes and #item.boxes,
                         image = report.draw_grounding(strip, T, item, rgb(color)), raw = item}
    end
    out.samples[#out.samples + 1] = sample
  end
  return out
end

-- ---- the page -----------------------------------------------------------------------------

local css = [[
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1320px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px} .grid{display:flex;flex-wrap:wrap;gap:10px}
svg.chart{background:#fff;border:1px solid #e4e4e4} svg .frame{fill:none;stroke:#999} svg .grid{stroke:#eee}
svg .tick{font-size:10px;fill:#555} svg .title{font-size:12px;font-weight:600} svg .legend{font-size:10px;text-anchor:end}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px} th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.query{margin:12px 0 18px} .query .caption{font-weight:600;margin-bottom:6px}
.hits{display:flex;gap:8px;flex-wrap:wrap} .hit{border:3px solid transparent;padding:2px;font-size:11px;color:#555}
.hit.correct{border-color:#2ca02c} .hit img{display:block;image-rendering:pixelated;height:64px}
.pair{display:flex;gap:12px;align-items:center;margin:8px 0;font-size:13px} .pair img{height:64px;image-rendering:pixelated}
.ground{margin:4px 0 8px;font-size:12px;font-weight:600} .ground img{display:block;image-rendering:pixelated;max-width:100%}
.neg{color:#d62728} .pos{color:#2ca02c} .note{color:#777;font-style:italic;font-size:13px}
]]

-- Builds the page; returns the HTML string. opts: queries (sample queries,
-- default 6), hard (wrong hard-negative pairs shown, default 8), pictures
-- (false: no re-evaluation).
function report.build(run_dir, opts)
  opts = opts or {}
  local html = {}
  local function add(s) html[#html + 1] = s end
  local results = read_file(run_dir .. '/results.json')
  results = results and json.decode(results, run_dir .. '/results.json') or nil
  local config = read_file(run_dir .. '/config.json')
  config = config and json.decode(config, run_dir .. '/config.json') or nil
  local log = report.read_log(run_dir)
  if not log and not results then
    cli.usage_error('report: %s holds no training run (no log.jsonl, no results.json)', run_dir)
  end
  add('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>kinema report: ' .. escape(run_dir)
      .. '</title><style>' .. css .. '</style></head><body>')
  add('<h1>' .. escape(run_dir) .. '</h1>')
  local meta = {}
  if results then
    meta[#meta + 1] = 'recipe ' .. escape(results.recipe or '?') .. (results.preset and (' (' .. escape(results.preset) .. ')') or '')
    if results.seconds then meta[#meta + 1] = string.format('%.0f s', results.seconds) end
  end
  if log then meta[#meta + 1] = log.records .. ' logged steps' end
  add('<p class="meta">' .. table.concat(meta, ' &middot; ') .. '</p>')

  if log then
    add('<h2>Training</h2><div class="grid">')
    if log.train.loss then add(report.line_chart({log.train.loss}, {title = 'total loss'})) end
    local objectives = {}
    for _, k in ipairs(log.train_names) do
      if not not_objectives[k] and not k:find('.', 1, true) then objectives[#objectives + 1] = log.train[k] end
    end
    for _, s in ipairs(objectives) do add(report.line_chart({s}, {title = 'loss: ' .. s.name})) end
    if log.train.lr then add(report.line_chart({log.train.lr}, {title = 'learning rate'})) end
    if log.train.grad_norm then add(report.line_chart({log.train.grad_norm}, {title = 'gradient norm (before clipping)'})) end
    if log.train.clips_per_s then add(report.line_chart({log.train.clips_per_s}, {title = 'clips / s'})) end
    add('</div>')
    -- gradient shares: grad.<objective>.<group>, one chart per objective
    local by_objective, order = {}, {}
    for _, k in ipairs(log.train_names) do
      local objective, group = k:match('^grad%.([^%.]+)%.(.+)$')
      if objective then
        if not by_objective[objective] then by_objective[objective] = {}; order[#order + 1] = objective end
        local s = log.train[k]
        table.insert(by_objective[objective], {name = group, x = s.x, y = s.y})
      end
    end
    if #order > 0 then
      add('<h2>Gradient shares</h2><div class="grid">')
      for _, objective in ipairs(order) do
        add(report.line_chart(by_objective[objective], {title = 'grad.' .. objective .. '.<group>'}))
      end
      add('</div>')
    end
    if #log.eval_names > 0 then
      add('<h2>Evaluation over steps</h2><div class="grid">')
      for _, k in ipairs(log.eval_names) do add(report.line_chart({log.eval[k]}, {title = k})) end
      add('</div>')
    end
  end

  if results and results.metrics then
    add('<h2>Zero-shot retrieval</h2>')
    local columns = require('kinema.eval.zero_shot').table_columns
    add('<table><tr><th>recipe</th>')
    for _, c in ipairs(columns) do add('<th>' .. escape(c[2]) .. '</th>') end
    add('</tr><tr><td>' .. escape(results.recipe or '') .. '</td>')
    for _, c in ipairs(columns) do
      local v = results.metrics[c[1]]
      add('<td class="num">' .. (v and string.format('%.1f', v) or '-') .. '</td>')
    end
    add('</tr></table>')
    if results.metrics.num_test_videos then
      add(string.format('<p class="meta">%d test videos; chance R@1 = %.1f%%</p>', results.metrics.num_test_videos,
                        100 / results.metrics.num_test_videos))
    end
  end

  local examples
  if opts.pictures ~= false then
    local ok, ex, why = pcall(report.examples, run_dir, opts)
    if ok then examples = ex end
    if not ok then ex, why = nil, tostring(ex):match('^[^\n]*') end
    if not ex then
      add('<h2>Retrieval examples</h2><p class="note">no pictures: ' .. escape(why) .. '</p>')
    else
      add('<h2 id="examples">Retrieval examples</h2><p class="meta">' .. escape(ex.checkpoint)
          .. ' re-evaluated on the test split; the top-5 videos of each caption, the correct one framed in green.</p>')
      local n = #ex.ids
      local count = math.min(opts.queries or 6, n)
      for q = 1, count do
        local row = math.floor((q - 1) * n / count)  -- spread over the split
        local scores = ex.sim[row]
        local _, order = scores:sort(0, true)
        local rank
        for r = 0, n - 1 do if order[r]:item() == row then rank = r + 1; break end end
        add('<div class="query"><div class="caption">&ldquo;' .. escape(ex.captions[row + 1]) .. '&rdquo; '
            .. '<span class="meta">(correct video ' .. escape(ex.ids[row + 1]) .. ' at rank ' .. rank .. ')</span></div>'
            .. '<div class="hits">')
        for r = 0, math.min(5, n) - 1 do
          local v = order[r]:item()
          add(string.format('<div class="hit%s"><img alt="%s" src="%s"><div>#%d %s &middot; %.3f</div></div>',
                            v == row and ' correct' or '', escape(ex.ids[v + 1]), png_uri(ex.strips[v + 1]), r + 1,
                            escape(ex.ids[v + 1]), scores[v]:item()))
        end
        add('</div></div>')
      end
      add('<h2>Hard negatives the model got wrong</h2>')
      if not ex.hard_total then
        add('<p class="note">the test split has no hard-negative file (--data.hard_negatives)</p>')
      elseif #ex.hard == 0 then
        add(string.format('<p class="note">none: in all %d pairs the true caption scored above its edit</p>',
                          ex.hard_total))
      else
        add(string.format('<p class="meta">%d of %d pairs where the edited caption scored at least as high as the '
                          .. 'true one; the first %d:</p>', #ex.hard, ex.hard_total, math.min(#ex.hard, opts.hard or 8)))
        for i = 1, math.min(#ex.hard, opts.hard or 8) do
          local h = ex.hard[i]
          add(string.format('<div class="pair"><img alt="%s" src="%s"><div><div class="pos">true: %s (%.3f)</div>'
                            .. '<div class="neg">%s edit: %s (%.3f)</div></div></div>', escape(ex.ids[h.row + 1]),
                            png_uri(ex.strips[h.row + 1]), escape(h.positive), h.pos, escape(h.kind),
                            escape(h.negative), h.neg))
        end
      end
    end
  end

  if opts.pictures ~= false and examples and examples.grounding then
    local g = examples.grounding
    add('<h2 id="grounding">Grounding of the nouns</h2><p class="meta">' .. escape(g.about) .. '</p>')
    if g.error then add('<p class="note">no pictures: ' .. escape(g.error) .. '</p>')
    elseif #g.samples == 0 then add('<p class="note">no test sample to draw</p>') end
    for _, sample in ipairs(g.samples) do
      add('<div class="query"><div class="caption">&ldquo;' .. escape(sample.caption) .. '&rdquo; <span class="meta">('
          .. escape(sample.id) .. ')</span></div>')
      if #sample.items == 0 then add('<p class="note">no noun of this caption is grounded</p>') end
      for _, item in ipairs(sample.items) do
        add(string.format('<div class="ground"><img alt="%s" src="%s"><div style="color:%s">%s &middot; %.3f%s</div></div>',
                          escape(item.noun), png_uri(item.image), item.color, escape(item.noun), item.weight,
                          item.boxes and string.format(' &middot; %d boxes', item.boxes) or ''))
      end
      add('</div>')
    end
  end

  if config then
    add('<h2>Configuration</h2><table><tr><th>key</th><th>value</th></tr>')
    for _, kv in ipairs(cli.flatten(config)) do
      local v = kv[2]
      if type(v) == 'table' then v = json.encode(v) end
      add('<tr><td>' .. escape(kv[1]) .. '</td><td>' .. escape(tostring(v)) .. '</td></tr>')
    end
    add('</table>')
  end
  add('<p class="meta">written by kinema report</p></body></html>')
  return table.concat(html, '\n')
end

-- `kinema report RUN_DIR [--out FILE.html] [--no-pictures]`
function report.main(argv)
  local usage = 'usage: kinema report RUN_DIR [--out FILE.html (default RUN_DIR/report.html)] [--no-pictures]'
  if cli.wants_help(argv) then print(usage); return end
  local run_dir, out, pictures = nil, nil, true
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == '--out' then out = argv[i + 1]; i = i + 1
    elseif a:match('^%-%-out=') then out = a:sub(7)
    elseif a == '--no-pictures' then pictures = false
    elseif a:sub(1, 2) == '--' then cli.usage_error("report: unknown option '%s' (%s)", a, usage)
    elseif run_dir then cli.usage_error("report: one RUN_DIR, got '%s' and '%s'", run_dir, a)
    else run_dir = a end
    i = i + 1
  end
  if not run_dir then cli.usage_error('report: give RUN_DIR (%s)', usage) end
  run_dir = run_dir:gsub('/+$', '')
  out = out or (run_dir .. '/report.html')
  local html = report.build(run_dir, {pictures = pictures})
  local tmp = out .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  if not f then cli.usage_error("report: cannot write '%s': %s", out, tostring(err)) end
  f:write(html)
  f:close()
  assert(os.rename(tmp, out))
  print('wrote ' .. out)
end

return report
