-- kinema.diagnostics: does each objective do its job? Measured inside a run:
--
--   local diagnostics = require('kinema').diagnostics
--   local monitor = diagnostics.GradientMonitor{model = model, every = 25}
--   -- the Trainer does this when given grad_diagnostics = {every = 25, ...}:
--   if monitor:due(step) then record = monitor:measure(terms, step) end   -- terms: losses.combine's third result
--   monitor:observe(record)         -- every logged record (losses and their 'trivial' parts)
--   print(monitor:summary())        -- objective x group table and the warnings
--
-- Gradient share. On a measured step, for every weighted objective term w_o L_o
-- one extra backward (torch.autograd.grad, retaining the graph; .grad is left
-- untouched) gives the L2 norm of its gradient on each named parameter group
-- (by default the model's top-level children: video, text, fusion, vtm_head,
-- ...), logged as grad.<objective>.<group>. The share of objective o in group g
-- is n(o,g) / sum over objectives of n(.,g). Cost: one backward per objective
-- on the measured steps only (state it with `every`).
--
-- Dead objectives. A warning names the objective when
--   - its loss stays at or above its trivial value (the loss's 'trivial' part:
--     a classifier's label-prior entropy, MLM's unigram entropy, a contrastive
--     loss's log(columns)) less `trivial_tolerance` (relative) for `dead_after`
--     logged steps in a row, or
--   - its share of every backbone group (`backbone`, default video and text)
--     stays under `share_threshold` for `share_after` measured steps in a row.
--     The warning says how its own loss compares with its trivial value at the
--     last logged step: an objective that reaches the backbone only through
--     its own encoder (STOA's OTA, ASP) can learn there while barely moving it.
local torch = require 'torch'
local util = require 'kinema.util'

local diagnostics = {}

local check = util.checker('kinema.diagnostics: ')

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The group of a parameter name: its first dotted component ('video.blocks.0.qkv.weight' -> 'video').
function diagnostics.top_level_group(name) return name:match('^([^%.]+)') or name end

local Monitor = {}
Monitor.__index = Monitor

diagnostics.defaults = {every = 0, backbone = {'video', 'text'}, share_threshold = 0.01, share_after = 3,
                        dead_after = 20, trivial_tolerance = 0.02}

-- opts: model (required), every (measured steps; 0 = never), group (function
-- name -> group, default top_level_group), backbone, share_threshold,
-- share_after, dead_after, trivial_tolerance, print (function(string); warnings).
function diagnostics.GradientMonitor(opts)
  check(type(opts) == 'table' and opts.model ~= nil, "GradientMonitor needs {model = ...}")
  local self = setmetatable({}, Monitor)
  for k, v in pairs(diagnostics.defaults) do self[k] = opts[k] == nil and v or opts[k] end
  check(type(self.every) == 'number' and self.every >= 0 and self.every % 1 == 0,
        "option 'every' must be a non-negative integer, got %s", tostring(self.every))
  check(type(self.share_threshold) == 'number' and self.share_threshold >= 0 and self.share_threshold < 1,
        "option 'share_threshold' must be a number in [0, 1), got %s", tostring(self.share_threshold))
  for _, key in ipairs({'share_after', 'dead_after'}) do
    check(type(self[key]) == 'number' and self[key] >= 1 and self[key] % 1 == 0,
          "option '%s' must be a positive integer, got %s", key, tostring(self[key]))
  end
  check(type(self.backbone) == 'table', "option 'backbone' must be a list of group names")
  local group_of = opts.group or diagnostics.top_level_group
  check(type(group_of) == 'function', "option 'group' must be a function(parameter name) -> group name")
  self.print = opts.print or function(s) io.stderr:write(s) end
  self.params, self.param_group, self.groups = {}, {}, {}
  local seen = {}
  for _, pair in ipairs(opts.model:named_parameters()) do
    if pair[2].requires_grad then
      local g = group_of(pair[1])
      self.params[#self.params + 1] = pair[2]
      self.param_group[#self.params] = g
      if not seen[g] then seen[g] = true; self.groups[#self.groups + 1] = g end
    end
  end
  check(#self.params > 0, 'the model has no trainable parameters')
  self.is_backbone = {}
  for _, g in ipairs(self.backbone) do self.is_backbone[g] = true end
  self.norm_sums = {}        -- objective -> group -> sum of norms over measured steps
  self.last = {}             -- objective -> group -> last norm
  self.measured = 0
  self.seconds = 0
  self.low_share_run, self.trivial_run = {}, {}   -- consecutive counts
  self.last_trivial = {}     -- objective -> {step, loss, trivial} of the last logged record
  self.first = {}            -- objective -> {step, norms = group -> norm, totals = group -> norm} of its first measurement
  self.warned = {}           -- objective -> list of reasons
  self.warnings = {}
  return self
end

function Monitor:due(step) return self.every > 0 and step % self.every == 0 end

local function now() return require('kinema.sys').clock() end

-- Gradient norms of every weighted term on every group; returns the record
-- {['grad.<objective>.<group>'] = norm} and updates the share warnings.
function Monitor:measure(terms, step)
  local t0 = now()
  local record, norms = {}, {}
  for _, name in ipairs(sorted_keys(terms)) do
    local term = terms[name]
    local squares = {}
    for _, g in ipairs(self.groups) do squares[g] = 0 end
    if torch.is_tensor(term) and term.requires_grad then
      local grads = torch.autograd.grad({term}, self.params, {retain_graph = true, allow_unused = true})
      for i, gr in ipairs(grads) do
        if gr then
          local g = self.param_group[i]
          squares[g] = squares[g] + gr:detach():double():pow(2):sum():item()
        end
      end
    end
    norms[name] = {}
    self.norm_sums[name] = self.norm_sums[name] or {}
    for _, g in ipairs(self.groups) do
      local n = math.sqrt(squares[g])
      norms[name][g] = n
      record['grad.' .. name .. '.' .. g] = n
      self.norm_sums[name][g] = (self.norm_sums[name][g] or 0) + n
    end
  end
  self.last = norms
  self.measured = self.measured + 1
  self:_check_shares(norms, step)
  self.seconds = self.seconds + (now() - t0)
  return record
end

-- Shares n(o,g) / sum_o n(.,g) of a table objective -> group -> norm.
function diagnostics.shares(norms)
  local totals, out = {}, {}
  for _, by_group in pairs(norms) do
    for g, n in pairs(by_group) do totals[g] = (totals[g] or 0) + n end
  end
  for o, by_group in pairs(norms) do
    out[o] = {}
    for g, n in pairs(by_group) do out[o][g] = totals[g] > 0 and n / totals[g] or 0 end
  end
  return out
end

function Monitor:_warn(objective, reason, step)
  self.warned[objective] = self.warned[objective] or {}
  for _, r in ipairs(self.warned[objective]) do if r.kind == reason.kind then return end end
  reason.step = step
  table.insert(self.warned[objective], reason)
  local text = string.format('kinema: warning: objective %s looks dead at step %d: %s', objective, step, reason.text)
  self.warnings[#self.warnings + 1] = text
  self.print('\n' .. text .. '\n')
end

-- The share warning also says how the objective's own gradient and the group's
-- total moved since the objective's first measurement: a share can fall because
-- the objective fades or because the others grow while it keeps pushing.
function Monitor:_check_shares(norms, step)
  local shares = diagnostics.shares(norms)
  local totals = {}
  for _, by_group in pairs(norms) do
    for g, n in pairs(by_group) do totals[g] = (totals[g] or 0) + n end
  end
  for name, by_group in pairs(norms) do
    if not self.first[name] then self.first[name] = {step = step, norms = by_group, totals = totals} end
  end
  local any_backbone = false
  for _, g in ipairs(self.groups) do if self.is_backbone[g] then any_backbone = true end end
  if not any_backbone then return end
  for name, by_group in pairs(shares) do
    local best, best_group = 0, nil
    for g, s in pairs(by_group) do
      if self.is_backbone[g] and s >= best then best, best_group = s, g end
    end
    if best < self.share_threshold then
      self.low_share_run[name] = (self.low_share_run[name] or 0) + 1
      if self.low_share_run[name] >= self.share_after then
        local text = string.format(
          'its share of the backbone gradient (%s) stayed under %.3g%% for %d measured steps (last %.3g%%)',
          table.concat(self.backbone, ', '), 100 * self.share_threshold, self.low_share_run[name], 100 * best)
        local first = self.first[name]
        if best_group then
          text = text .. string.format("; its gradient norm on %s went from %.3g (step %d) to %.3g, the group's total "
            .. 'from %.3g to %.3g', best_group, first.norms[best_group], first.step, norms[name][best_group],
            first.totals[best_group], totals[best_group])
        end
        -- whether it still learns where its gradient does go (its own encoders)
        local seen = self.last_trivial[name]
        if seen then
          text = text .. string.format('; its loss at the last logged step (%d) was %.0f%% of its trivial value '
                                       .. '(%.4g vs %.4g)', seen.step, 100 * seen.loss / seen.trivial, seen.loss,
                                       seen.trivial)
        end
        self:_warn(name, {kind = 'share', text = text}, step)
      end
    else
      self.low_share_run[name] = 0
    end
  end
end

-- A logged train record (loss parts: <objective> and <objective>.trivial):
-- counts the logged steps each objective sits at its trivial value.
function Monitor:observe(record)
  for key, trivial in pairs(record) do
    local name = type(key) == 'string' and key:match('^(.+)%.trivial$')
    local loss = name and record[name]
    if type(loss) == 'number' and type(trivial) == 'number' and trivial > 0 then
      self.last_trivial[name] = {step = record.step or 0, loss = loss, trivial = trivial}
      if loss >= trivial * (1 - self.trivial_tolerance) then
        self.trivial_run[name] = (self.trivial_run[name] or 0) + 1
        if self.trivial_run[name] >= self.dead_after then
          self:_warn(name, {kind = 'trivial', text = string.format(
            'its loss stayed at its trivial value (%.4g; last loss %.4g) for %d logged steps in a row',
            trivial, loss, self.trivial_run[name])}, record.step or 0)
        end
      else
        self.trivial_run[name] = 0
      end
    end
  end
end

-- The end-of-run table: per objective and group, the share of the gradient
-- norm (from the norms summed over all measured steps) and, in brackets, the
-- share at the last measured step; then the warnings.
function Monitor:summary()
  if self.measured == 0 then return '' end
  local mean_shares = diagnostics.shares(self.norm_sums)
  local last_shares = diagnostics.shares(self.last)
  local objectives = sorted_keys(self.norm_sums)
  local head = {'| objective'}
  local rule = {'|---'}
  for _, g in ipairs(self.groups) do head[#head + 1] = g; rule[#rule + 1] = '---:' end
  local lines = {string.format('gradient share by objective and parameter group, %% of the group\'s summed norms over %d '
                               .. 'measured steps (last measured step in brackets); %.1f s measuring', self.measured,
                               self.seconds),
                 table.concat(head, ' | ') .. ' |', table.concat(rule, '|') .. '|'}
  for _, o in ipairs(objectives) do
    local row = {'| ' .. o}
    for _, g in ipairs(self.groups) do
      if self.norm_sums[o][g] and self.norm_sums[o][g] > 0 then
        row[#row + 1] = string.format('%.1f (%.1f)', 100 * mean_shares[o][g], 100 * (last_shares[o] and last_shares[o][g] or 0))
      else
        row[#row + 1] = '-'
      end
    end
    lines[#lines + 1] = table.concat(row, ' | ') .. ' |'
  end
  for _, w in ipairs(self.warnings) do lines[#lines + 1] = w end
  return table.concat(lines, '\n')
end

-- State for results files: mean norms and shares, warnings.
function Monitor:state()
  local means = {}
  for o, by_group in pairs(self.norm_sums) do
    means[o] = {}
    for g, s in pairs(by_group) do means[o][g] = s / math.max(1, self.measured) end
  end
  return {measured_steps = self.measured, seconds = self.seconds, mean_norms = means,
          shares = diagnostics.shares(self.norm_sums), warnings = self.warnings}
end

return diagnostics
