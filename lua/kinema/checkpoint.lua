-- kinema.checkpoint: reading and writing model weights.
--   Training checkpoints (kinema.train writes one per checkpoint_every steps):
--     checkpoint.save(path, state), checkpoint.load(path, state), checkpoint.list(dir),
--     checkpoint.latest(dir); a file holds the model's tensors as model.*, the
--     optimizer's as optim.*, RNG states as rng.<device>, and metadata
--     (kinema.checkpoint = '1', position, extra, scheduler, config, ...).
--   Initial weights of a model (--init): checkpoint.load_init(model, path, layout,
--     opts) reads a training checkpoint's model.* tensors, or published files mapped
--     onto the model's sub-modules by checkpoint.init_layouts (load_layout).
local torch = require 'torch'
local json = require 'kinema.json'
local sys = require 'kinema.sys'
local util = require 'kinema.util'

local checkpoint = {}

local function fail(fmt, ...) error('kinema.checkpoint: ' .. string.format(fmt, ...), 0) end

local check = util.checker('kinema.checkpoint: ')

-- The tensors (or metadata) under `prefix.` with the prefix taken off.
local function with_prefix(entries, prefix)
  local out, pattern = {}, '^' .. prefix .. '%.(.+)$'
  for k, v in pairs(entries) do
    local name = k:match(pattern)
    if name then out[name] = v end
  end
  return out
end

local CHECKPOINT_PATTERN = '^step%-(%d+)%.safetensors$'

-- The training checkpoints under dir (step-N.safetensors) as {step =, path =}, oldest first.
function checkpoint.list(dir)
  local found = {}
  if not sys.is_dir(dir) then return found end
  for _, name in ipairs(sys.list_dir(dir)) do
    local step = name:match(CHECKPOINT_PATTERN)
    if step then found[#found + 1] = {step = tonumber(step), path = dir .. '/' .. name} end
  end
  table.sort(found, function(a, b) return a.step < b.step end)
  return found
end

-- The newest checkpoint under dir, or nil.
function checkpoint.latest(dir)
  local all = checkpoint.list(dir)
  return all[#all] and all[#all].path or nil
end

local function rng_devices(device)
  local devices = {'cpu'}
  if device and tostring(device):match('^cuda') then devices[2] = tostring(device):find(':') and device or 'cuda:0' end
  return devices
end

-- Writes {model, optimizer, scheduler, position, rng, extra} to path
-- atomically (the io layer writes a temporary file and renames it).
function checkpoint.save(path, state)
  local tensors, meta = {}, {['kinema.checkpoint'] = '1'}
  local sd = state.model:state_dict()
  for name, t in pairs(sd) do tensors['model.' .. name] = t:to('cpu') end
  if state.optimizer then
    local ot, om = state.optimizer:state_dict()
    for k, t in pairs(ot) do tensors['optim.' .. k] = t:to('cpu') end
    for k, v in pairs(om) do meta['optim.' .. k] = v end
  end
  -- a poisoned checkpoint would replace a good one and resume into NaN
  local bad = {}
  for name, t in pairs(tensors) do
    if t:is_floating_point() and not t:isfinite():all():item() then bad[#bad + 1] = name end
  end
  if #bad > 0 then
    table.sort(bad)
    local n = 0
    for _ in pairs(tensors) do n = n + 1 end
    error(string.format("kinema.checkpoint: refusing to write checkpoint '%s': %d of %d tensors hold NaN/Inf (%s%s)",
                        path, #bad, n, table.concat(bad, ', ', 1, math.min(#bad, 5)), #bad > 5 and ', ...' or ''), 2)
  end
  if state.scheduler then meta['scheduler'] = json.encode(state.scheduler:state_dict()) end
  for _, dev in ipairs(rng_devices(state.device)) do tensors['rng.' .. dev] = torch.get_device_rng_state(dev) end
  if state.config then meta['config'] = json.encode(state.config) end
  for k, v in pairs(state.metadata or {}) do meta[k] = tostring(v) end
  meta['position'] = json.encode(state.position or {})
  meta['extra'] = json.encode(state.extra or {})
  torch.save_safetensors(path, tensors, meta)
end

-- Restores what checkpoint.save wrote into the given objects; returns the
-- position and extra tables. A file that is not a kinema checkpoint, or a model
-- that does not match it, raises naming the file.
function checkpoint.load(path, state)
  local ok, tensors, meta = pcall(torch.load_safetensors, path)
  check(ok, "cannot read checkpoint '%s': %s", tostring(path), tostring(tensors))
  check(meta['kinema.checkpoint'] == '1', "'%s' is not a kinema training checkpoint", path)
  local loaded, err = pcall(state.model.load_state_dict, state.model, with_prefix(tensors, 'model'))
  check(loaded, "checkpoint '%s' does not fit the model: %s", path, tostring(err))
  if state.optimizer then
    local okopt, oerr = pcall(state.optimizer.load_state_dict, state.optimizer, with_prefix(tensors, 'optim'),
                              with_prefix(meta, 'optim'))
    check(okopt, "checkpoint '%s' does not fit the optimizer: %s", path, tostring(oerr))
  end
  if state.scheduler and meta.scheduler then state.scheduler:load_state_dict(json.decode(meta.scheduler, path)) end
  for _, dev in ipairs(rng_devices(state.device)) do
    if tensors['rng.' .. dev] then torch.set_device_rng_state(dev, tensors['rng.' .. dev]) end
  end
  return json.decode(meta.position or '{}', path), json.decode(meta.extra or '{}', path)
end

-- ---- initial weights --------------------------------------------------------------------

-- Published checkpoint layouts mapped onto a recipe model's sub-modules by name:
-- targets are {model field, kinema.models.weights rules [, leftover = true]}
-- (a leftover target is tried only where the model has that field, with the
-- checkpoint tensors the earlier targets left unused: CLIP's projections go
-- into a recipe's own video_proj/text_proj when its towers have none); scope (a
-- pattern) limits the checkpoint keys a layout is expected to use;
-- allow_missing (model names, with the field prefix) and allow_unused
-- (checkpoint keys) are the gaps that do not stop a run; missing parameters
-- that match zero_missing are set to zero. A recipe may add layouts in
-- spec.init_layouts and declare its own parameters in spec.init_fresh.
--
-- Image towers loaded into video towers: the time embedding starts at zero and
-- a divided space-time block's temporal branch (temporal_norm1, temporal_attn,
-- temporal_fc, which the model initialises at zero as TimeSformer does) is new,
-- so each frame starts out exactly as the image model sees it.
local image_tower_missing = {'^video%.time_embed$', '^video%.blocks%.%d+%.temporal_'}
local with = require('kinema.util').concat
local projection_bias = {'^video_proj%.proj%.bias$', '^text_proj%.proj%.bias$'}
checkpoint.init_layouts = {
  clip = {targets = {{'video', 'clip_visual'}, {'text', 'clip_text'}, {'temperature', 'clip_temperature'},
                     {'video_proj', 'clip_visual_projection', leftover = true},
                     {'text_proj', 'clip_text_projection', leftover = true}},
          allow_missing = with(image_tower_missing, projection_bias),
          zero_missing = with({'^video%.time_embed$'}, projection_bias),
          allow_unused = {'^input_resolution$', '^context_length$', '^vocab_size$'}},
  clip_visual = {targets = {{'video', 'clip_visual'}, {'video_proj', 'clip_visual_projection', leftover = true}},
                 scope = '^visual%.', allow_missing = with(image_tower_missing, {projection_bias[1]}),
                 zero_missing = {'^video%.time_embed$', projection_bias[1]}},
  clip_text = {targets = {{'text', 'clip_text'}, {'text_proj', 'clip_text_projection', leftover = true}},
               allow_missing = {projection_bias[2]}, zero_missing = {projection_bias[2]},
               allow_unused = {'^visual%.', '^logit_scale$', '^input_resolution$', '^context_length$', '^vocab_size$'}},
  -- unimodal checkpoints have no projection into the joint space: it starts random
  timm_vit = {targets = {{'video', 'timm_vit'}}, allow_missing = with(image_tower_missing, {'^video%.proj$'}),
              zero_missing = {'^video%.time_embed$'}, allow_unused = {'^head%.'}},
  bert = {targets = {{'text', 'bert'}}, allow_missing = {'^text%.proj$'},
          allow_unused = {'^bert%.pooler%.', '^cls%.', '^bert%.embeddings%.position_ids$'}},
  distilbert = {targets = {{'text', 'distilbert'}}, allow_missing = {'^text%.proj$'},
                allow_unused = {'^vocab_transform%.', '^vocab_layer_norm%.', '^vocab_projector%.',
                                '^distilbert%.embeddings%.position_ids$'}},
}

local function list_names(names, limit)
  local shown = {}
  for i = 1, math.min(#names, limit) do shown[i] = names[i] end
  local text = table.concat(shown, ', ')
  if #names > limit then text = text .. string.format(', ... (%d in all)', #names) end
  return text
end

local function matches_any(name, patterns)
  for _, p in ipairs(patterns or {}) do if name:match(p) then return true end end
  return false
end

-- Loads one published checkpoint into the model's sub-modules by layout name.
-- Returns the report {loaded = n, missing = {...}, unused = {...},
-- mismatched = {...}, zeroed = {...}, fields = {sub-modules that got tensors}}
-- where missing/unused/mismatched are
-- the gaps outside the layout's allow-lists (strict: a non-empty one stops).
function checkpoint.load_layout(model, path, layout_name, opts)
  opts = opts or {}
  local W = require 'kinema.models.weights'
  local layouts = opts.layouts or checkpoint.init_layouts
  local layout = layouts[layout_name]
  if not layout then
    local names = {}
    for k in pairs(layouts) do names[#names + 1] = k end
    table.sort(names)
    fail("--init_layout '%s' is not a layout (known: %s)", layout_name, table.concat(names, ', '))
  end
  local state = W.read(path)
  local used, out = {}, {loaded = 0, missing = {}, unused = {}, mismatched = {}, zeroed = {}, allowed = {}, fields = {},
                         own = {}}
  local own_patterns = {}
  for key, why in pairs(opts.fresh or {}) do
    if key:sub(1, 1) == '^' then own_patterns[#own_patterns + 1] = {key, why} end
  end
  table.sort(own_patterns, function(a, b) return a[1] < b[1] end)
  for _, target in ipairs(layout.targets) do
    local field, rules = target[1], target[2]
    local sub = model[field]
    local source = state
    if target.leftover then
      source = {}
      for k, v in pairs(state) do if not used[k] then source[k] = v end end
    end
    if sub == nil and not target.leftover then
      fail("--init_layout %s: the model has no sub-module '%s'", layout_name, field)
    end
    if sub ~= nil and next(source) ~= nil then
      local report = W.load(sub, source, rules, target[3])
      local unused_here = {}
      for _, k in ipairs(report.unused) do unused_here[k] = true end
      for k in pairs(source) do if not unused_here[k] then used[k] = true end end
      out.loaded = out.loaded + #report.loaded
      for _, name in ipairs(report.missing) do
        local full = field .. '.' .. name
        local own_reason
        for _, p in ipairs(own_patterns) do if full:match(p[1]) then own_reason = p[2]; break end end
        if own_reason then
          out.own[#out.own + 1] = {full, own_reason}
        elseif matches_any(full, layout.allow_missing) then
          out.allowed[#out.allowed + 1] = full
          if matches_any(full, layout.zero_missing) then
            for _, pair in ipairs(sub:named_parameters()) do
              if pair[1] == name then torch.no_grad(function() pair[2]:zero_() end) end
            end
            out.zeroed[#out.zeroed + 1] = full
          end
        else
          out.missing[#out.missing + 1] = full
        end
      end
      for _, m in ipairs(report.mismatched) do out.mismatched[#out.mismatched + 1] = field .. '.' .. m end
      if #report.loaded > 0 then out.fields[#out.fields + 1] = field end
    end
  end
  for k in pairs(state) do
    if not used[k] and (not layout.scope or k:match(layout.scope)) and not matches_any(k, layout.allow_unused) then
      out.unused[#out.unused + 1] = k
    end
  end
  table.sort(out.unused)
  return out
end

-- Initial weights (--init): a kinema training checkpoint (its model.* tensors,
-- every parameter required), or published checkpoints mapped onto the model's
-- sub-modules by --init_layout (comma-separated paths pair with
-- comma-separated layouts: --init vit.pt,bert.bin --init_layout timm_vit,bert).
-- A published load that leaves model parameters missing, checkpoint tensors
-- unused or shapes mismatched beyond the layout's allow-lists stops with their
-- names unless opts.strict is false (--init_strict false). The model's
-- sub-modules that no layout fills keep their initialisation and are named on
-- stderr. opts.fresh declares the recipe's own: {sub-module name = why} and,
-- for parameters inside a loaded tower, {['^pattern'] = why} (matched against
-- full names such as video.grouping.0.mlp.fc1.weight; they never stop a load).
-- Returns {fresh = {{name, why}, ...}, own = {{why, {parameter names}}, ...}}
-- for published layouts. A kinema checkpoint whose metadata names another
-- vocabulary than opts.vocab (kinema.recipe_data.vocab_fingerprint) stops.
function checkpoint.load_init(model, path, layout, opts)
  opts = opts or {}
  local ok, tensors, meta = pcall(torch.load_safetensors, path)
  if ok and meta['kinema.checkpoint'] == '1' then
    if opts.vocab and meta.vocab and meta.vocab ~= opts.vocab then
      fail('%s was trained with another vocabulary (%s) than this run reads (%s): give --data.vocab the vocabulary '
           .. 'of its training run (its data root\'s or out_dir\'s vocab.txt)', path, meta.vocab, opts.vocab)
    end
    local loaded, err = pcall(model.load_state_dict, model, with_prefix(tensors, 'model'))
    if not loaded then fail("--init %s does not fit the model: %s", path, tostring(err)) end
    return
  end
  if not layout or layout == '' then
    fail("--init %s is not a kinema training checkpoint: give --init_layout (one of the layouts of "
         .. "kinema.checkpoint.init_layouts, e.g. clip, clip_visual, timm_vit, bert)", path)
  end
  local paths, layouts = {}, {}
  for p in path:gmatch('[^,]+') do paths[#paths + 1] = p end
  for l in layout:gmatch('[^,]+') do layouts[#layouts + 1] = l end
  if #paths ~= #layouts then
    fail('--init names %d file(s) but --init_layout %d layout(s); give one layout per file', #paths, #layouts)
  end
  local filled, own_params = {}, {}
  for i, p in ipairs(paths) do
    local r = checkpoint.load_layout(model, p, layouts[i], {layouts = opts.layouts, fresh = opts.fresh})
    for _, field in ipairs(r.fields) do filled[field] = true end
    local gaps = {}
    if #r.missing > 0 then gaps[#gaps + 1] = string.format('%d model parameter(s) not in the checkpoint: %s',
                                                           #r.missing, list_names(r.missing, 12)) end
    if #r.unused > 0 then gaps[#gaps + 1] = string.format('%d checkpoint tensor(s) unused: %s', #r.unused,
                                                          list_names(r.unused, 12)) end
    if #r.mismatched > 0 then gaps[#gaps + 1] = string.format('%d shape mismatch(es): %s', #r.mismatched,
                                                              list_names(r.mismatched, 6)) end
    if #gaps > 0 and opts.strict ~= false then
      fail('--init %s (layout %s) does not fit the model: %s (check --model sizes, e.g. --model.preset; '
           .. '--init_strict false loads what fits)', p, layouts[i], table.concat(gaps, '; '))
    end
    -- the recipe's own parameters inside loaded towers, one line per reason
    local by_reason, reasons = {}, {}
    for _, o in ipairs(r.own) do
      if not by_reason[o[2]] then by_reason[o[2]] = {}; reasons[#reasons + 1] = o[2] end
      table.insert(by_reason[o[2]], o[1])
    end
    local own_text = {}
    for _, why in ipairs(reasons) do
      own_text[#own_text + 1] = string.format('%s (%s)', list_names(by_reason[why], 4), why)
      own_params[#own_params + 1] = {why, by_reason[why]}
    end
    io.stderr:write(string.format('kinema: --init %s (%s): %d tensors loaded%s%s%s\n', p, layouts[i], r.loaded,
                                  #r.zeroed > 0 and ('; set to zero: ' .. table.concat(r.zeroed, ', ')) or '',
                                  #own_text > 0 and ('; the recipe\'s own, kept at their initialisation: '
                                                     .. table.concat(own_text, '; ')) or '',
                                  #gaps > 0 and ('; NOT loaded (--init_strict false): ' .. table.concat(gaps, '; ')) or ''))
  end
  -- Sub-modules no layout fills keep their initialisation: said by name, with
  -- the recipe's reason where it declares them its own (spec.init_fresh).
  local fresh, own, other = {}, {}, {}
  for name, child in model:named_children() do
    if not filled[name] and #child:named_parameters() > 0 then
      local reason = (opts.fresh or {})[name]
      fresh[#fresh + 1] = {name, reason or 'no --init layout fills it'}
      if reason then own[#own + 1] = name else other[#other + 1] = name end
    end
  end
  if #own > 0 then
    io.stderr:write(string.format('kinema: --init: kept at their initialisation (the recipe\'s own modules, trained '
                                  .. 'from scratch): %s\n', table.concat(own, ', ')))
  end
  if #other > 0 then
    io.stderr:write(string.format('kinema: --init: kept at their initialisation (no --init layout fills them): %s\n',
                                  table.concat(other, ', ')))
  end
  return {fresh = fresh, own = own_params}
end

return checkpoint
