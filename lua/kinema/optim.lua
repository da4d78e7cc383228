-- kinema.optim: AdamW and SGD (with momentum) with parameter groups, gradient
-- clipping by global norm, LR schedules, and state that round-trips through
-- safetensors (tensors + string metadata) so that training resumes exactly.
-- The update rules are PyTorch's (torch.optim.AdamW / SGD, 1.13). By default a
-- step is one fused kinema operator per group and device (kinema::adamw_,
-- kinema::sgd_: one pass over each tensor's memory); `{fused = false}` runs the
-- reference update below, one ATen call per term, which is also the pattern
-- for optimizers written in Lua. Both keep the same state, so checkpoints
-- move between them.
local torch = require 'torch'
local help = require 'kinema.help'

local fused_ops = torch.ops.kinema

local optim = {}

local function is_module(v) return type(v) == 'table' and rawget(v, '_kinema_module') == true end

-- params: a module, a list of tensors, or a list of groups {params = {...}, lr = ...}.
local function make_groups(params, defaults)
  if is_module(params) then params = params:parameters() end
  assert(type(params) == 'table', 'optimizer: params must be a module, a list of tensors or a list of groups')
  local groups = {}
  if torch.is_tensor(params[1]) or #params == 0 then
    groups[1] = {params = params}
  else
    for i, g in ipairs(params) do
      assert(type(g) == 'table' and type(g.params) == 'table', 'optimizer: group ' .. i .. ' has no params list')
      groups[i] = g
    end
  end
  for gi, g in ipairs(groups) do
    if is_module(g.params) then g.params = g.params:parameters() end
    for k, v in pairs(defaults) do
      if g[k] == nil then g[k] = v end
    end
    for pi, p in ipairs(g.params) do
      assert(torch.is_tensor(p), string.format('optimizer: group %d element %d is not a Tensor', gi, pi))
    end
  end
  return groups
end

local Optimizer = {}
Optimizer.__index = Optimizer

-- Hyper-parameter checks (as torch.optim's constructors): a number in
-- [0, inf), or in [0, 1) when below_one; NaN and infinities are refused.
local function check_hyper(kind, gi, ngroups, name, v, below_one)
  local ok = type(v) == 'number' and v == v and v >= 0 and v < (below_one and 1 or math.huge)
  if not ok then
    error(string.format("%s: %sargument '%s' must be a number in [0, %s), got %s", kind,
                        ngroups > 1 and ('group ' .. gi .. ' ') or '', name, below_one and '1' or 'inf',
                        tostring(v)), 4)
  end
end

local function new_optimizer(kind, params, opts, defaults, update, fused_step, hyper)
  opts = opts or {}
  local merged = {}
  for k, v in pairs(defaults) do merged[k] = v end
  local fused = true
  for k, v in pairs(opts) do
    if k == 'fused' then
      if type(v) ~= 'boolean' then error(kind .. ": option 'fused' must be a boolean, got " .. tostring(v), 3) end
      fused = v
    elseif defaults[k] == nil then
      error(kind .. ': unknown option ' .. tostring(k), 3)
    else
      merged[k] = v
    end
  end
  local groups = make_groups(params, merged)
  for gi, g in ipairs(groups) do
    for _, h in ipairs(hyper) do
      local name, below_one = h[1], h[2]
      if name == 'betas' then
        if type(g.betas) ~= 'table' then error(kind .. ": argument 'betas' must be a table {beta1, beta2}", 3) end
        check_hyper(kind, gi, #groups, 'betas[1]', g.betas[1], true)
        check_hyper(kind, gi, #groups, 'betas[2]', g.betas[2], true)
      else
        check_hyper(kind, gi, #groups, name, g[name], below_one)
      end
    end
  end
  return setmetatable({kind = kind, groups = groups, state = {}, update = update,
                       fused_step = fused and fused_step or nil}, Optimizer)
end

function Optimizer:zero_grad()
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

-- One update of every parameter with a gradient (no autograd recording).
function Optimizer:step()
  if self.fused_step then
    torch.no_grad(function()
      local index = 0
      for _, g in ipairs(self.groups) do
        -- Parameters with a gradient, split by device (one operator call each).
        local batches, order = {}, {}
        for _, p in ipairs(g.params) do
          index = index + 1
          if p.grad then
            local device = tostring(p.device)
            if not batches[device] then
              batches[device] = {indices = {}, params = {}}
              order[#order + 1] = device
            end
            local b = batches[device]
            b.indices[#b.indices + 1] = index
            b.params[#b.params + 1] = p
          end
        end
        for _, device in ipairs(order) do
          self.fused_step(self, g, batches[device].indices, batches[device].params)
        end
      end
    end)
    return
  end
  torch.no_grad(function()
    local index = 0
    for _, g in ipairs(self.groups) do
      for _, p in ipairs(g.params) do
        index = index + 1
        local grad = p.grad
        if grad then
          local st = self.state[index]
          if not st then
            st = {}
            self.state[index] = st
          end
          self.update(p, grad, st, g)
        end
      end
    end
  end)
end

-- The parameter with global index i (counting across groups from 1).
function Optimizer:_param(i)
  for _, g in ipairs(self.groups) do
    if i <= #g.params then return g.params[i] end
    i = i - #g.params
  end
end

local hyper_keys = {'lr', 'weight_decay', 'eps', 'momentum', 'dampening', 'nesterov', 'initial_lr'}

-- Returns tensors, metadata: tensors hold the per-parameter state
-- ("state.<i>.<name>", i counting parameters across groups from 1) and
-- metadata the hyper-parameters as strings, ready for torch.save_safetensors.
function Optimizer:state_dict()
  local tensors, meta = {}, {kind = self.kind, num_groups = tostring(#self.groups)}
  for i, st in pairs(self.state) do
    for name, v in pairs(st) do
      if torch.is_tensor(v) then tensors[string.format('state.%d.%s', i, name)] = v:detach():clone() end
    end
  end
  for gi, g in ipairs(self.groups) do
    for _, k in ipairs(hyper_keys) do
      if g[k] ~= nil then meta[string.format('group.%d.%s', gi, k)] = string.format('%.17g', g[k] == true and 1 or g[k] == false and 0 or g[k]) end
    end
    if g.betas then meta['group.' .. gi .. '.betas'] = string.format('%.17g,%.17g', g.betas[1], g.betas[2]) end
  end
  return tensors, meta
end

function Optimizer:load_state_dict(tensors, meta)
  assert(meta and meta.kind == self.kind,
         string.format('load_state_dict: checkpoint is for %s, this optimizer is %s', tostring(meta and meta.kind), self.kind))
  assert(tonumber(meta.num_groups) == #self.groups, 'load_state_dict: number of parameter groups differs')
  local count = 0
  for _, g in ipairs(self.groups) do count = count + #g.params end
  self.state = {}
  for key, t in pairs(tensors) do
    local i, name = key:match('^state%.(%d+)%.(.+)$')
    if i then
      i = tonumber(i)
      assert(i >= 1 and i <= count, 'load_state_dict: state for parameter ' .. i .. ' but the optimizer has ' .. count)
      self.state[i] = self.state[i] or {}
      -- Moments live with their parameter (a CPU checkpoint resumed on a GPU);
      -- step counters stay on the CPU, as the update reads them there.
      local p = self:_param(i)
      if name ~= 'step' and tostring(t.device) ~= tostring(p.device) then
        self.state[i][name] = t:to(p.device)
      else
        self.state[i][name] = t:clone()
      end
    end
  end
  for gi, g in ipairs(self.groups) do
    for _, k in ipairs(hyper_keys) do
      local v = meta[string.format('group.%d.%s', gi, k)]
      if v ~= nil then
        if k == 'nesterov' then g[k] = tonumber(v) ~= 0 else g[k] = tonumber(v) end
      end
    end
    local b = meta['group.' .. gi .. '.betas']
    if b then
      local b1, b2 = b:match('([^,]+),([^,]+)')
      g.betas = {tonumber(b1), tonumber(b2)}
    end
  end
end

-- AdamW (decoupled weight decay), PyTorch's update:
--   p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
--   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
local function adamw_update(p, grad, st, g)
  if not st.step then
    st.step = torch.zeros({}, {dtype = torch.float64})
    st.exp_avg = torch.zeros_like(p, {memory_format = torch.preserve_format})
    st.exp_avg_sq = torch.zeros_like(p, {memory_format = torch.preserve_format})
  end
  st.step:add_(1)
  local t = st.step:item()
  local b1, b2 = g.betas[1], g.betas[2]
  if g.weight_decay ~= 0 then p:mul_(1 - g.lr * g.weight_decay) end
  st.exp_avg:mul_(b1):add_(grad, {alpha = 1 - b1})
  st.exp_avg_sq:mul_(b2):addcmul_(grad, grad, {value = 1 - b2})
  local bias1 = 1 - b1 ^ t
  local bias2_sqrt = math.sqrt(1 - b2 ^ t)
  local denom = (st.exp_avg_sq:sqrt() / bias2_sqrt):add_(g.eps)
  p:addcdiv_(st.exp_avg, denom, {value = -g.lr / bias1})
end

-- Fused AdamW over `params` of group g (`indices`: their global indices).
local function adamw_fused_step(self, g, indices, params)
  local grads, exp_avgs, exp_avg_sqs, steps = {}, {}, {}, {}
  for k, i in ipairs(indices) do
    local p = params[k]
    local st = self.state[i]
    if not st then
      st = {step = torch.zeros({}, {dtype = torch.float64}),
            exp_avg = torch.zeros_like(p, {memory_format = torch.preserve_format}),
            exp_avg_sq = torch.zeros_like(p, {memory_format = torch.preserve_format})}
      self.state[i] = st
    end
    grads[k], exp_avgs[k], exp_avg_sqs[k], steps[k] = p.grad, st.exp_avg, st.exp_avg_sq, st.step
  end
  fused_ops.adamw_(params, grads, exp_avgs, exp_avg_sqs, steps, g.lr, g.betas[1], g.betas[2],
                   g.weight_decay, g.eps)
end

function optim.AdamW(params, opts)
  local o = new_optimizer('AdamW', params, opts,
                       {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2}, adamw_update,
                       adamw_fused_step, {{'lr'}, {'betas'}, {'eps'}, {'weight_decay'}})
  return o  -- not a tail call: errors raised at level 3 in new_optimizer name the caller's line
end

-- SGD with momentum / dampening / nesterov and (coupled) weight decay, as torch.optim.SGD.
local function sgd_update(p, grad, st, g)
  local d = grad
  if g.weight_decay ~= 0 then d = d:add(p, {alpha = g.weight_decay}) end
  if g.momentum ~= 0 then
    if not st.momentum_buffer then
      st.momentum_buffer = d:clone():detach()
    else
      st.momentum_buffer:mul_(g.momentum):add_(d, {alpha = 1 - g.dampening})
    end
    if g.nesterov then
      d = d:add(st.momentum_buffer, {alpha = g.momentum})
    else
      d = st.momentum_buffer
    end
  end
  p:add_(d, {alpha = -g.lr})
end

-- Fused SGD over `params` of group g (`indices`: their global indices).
-- Parameters without a momentum buffer yet (first step) get one in a separate
-- call that fills it.
local function sgd_fused_step(self, g, indices, params)
  local with_momentum = g.momentum ~= 0
  local calls = {{first = false, params = {}, grads = {}, buffers = {}},
                 {first = true, params = {}, grads = {}, buffers = {}}}
  for k, i in ipairs(indices) do
    local p = params[k]
    local call = calls[1]
    if with_momentum then
      local st = self.state[i]
      if not st then
        st = {}
        self.state[i] = st
      end
      if not st.momentum_buffer then
        st.momentum_buffer = torch.empty_like(p, {memory_format = torch.preserve_format})
        call = calls[2]
      end
      call.buffers[#call.buffers + 1] = st.momentum_buffer
    end
    call.params[#call.params + 1] = p
    call.grads[#call.grads + 1] = p.grad
  end
  for _, call in ipairs(calls) do
    if #call.params > 0 then
      fused_ops.sgd_(call.params, call.grads, call.buffers, g.lr, g.momentum, g.dampening, g.weight_decay,
                     g.nesterov, call.first)
    end
  end
end

function optim.SGD(params, opts)
  local o = new_optimizer('SGD', params, opts,
                          {lr = 1e-2, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false}, sgd_update,
                          sgd_fused_step, {{'lr'}, {'momentum'}, {'dampening'}, {'weight_decay'}})
  for _, g in ipairs(o.groups) do
    assert(not g.nesterov or (g.momentum > 0 and g.dampening == 0), 'SGD: nesterov needs momentum > 0 and dampening = 0')
  end
  return o
end

-- Scales gradients in place so that their global L2 norm is at most max_norm.
-- Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_).
function optim.clip_grad_norm(params, max_norm, norm_type)
  if is_module(params) then params = params:parameters() end
  norm_type = norm_type or 2
  -- a negative max_norm would flip every gradient's sign, NaN would disable clipping silently
  if type(max_norm) ~= 'number' or not (max_norm >= 0) then
    error(string.format('optim.clip_grad_norm: argument max_norm must be a number >= 0, got %s', tostring(max_norm)), 2)
  end
  if type(norm_type) ~= 'number' or not (norm_type > 0) then
    error(string.format('optim.clip_grad_norm: argument norm_type must be a number > 0, got %s', tostring(norm_type)), 2)
  end
  local grads = {}
  for _, p in ipairs(params) do
    if p.grad then grads[#grads + 1] = p.grad end
  end
  if #grads == 0 then return 0 end
  local norms = {}
  for i, gr in ipairs(grads) do norms[i] = gr:detach():norm(norm_type) end
  local total = torch.stack(norms):norm(norm_type)
  local total_value = total:item()
  local coef = max_norm / (total_value + 1e-6)
  if coef < 1 then
    torch.no_grad(function()
      for _, gr in ipairs(grads) do gr:mul_(coef) end
    end)
  end
  return total_value
end

-- ---- LR schedules ----------------------------------------------------------------------
-- A schedule multiplies each group's initial lr by factor(step); step() advances.
local Schedule = {}
Schedule.__index = Schedule

local function new_schedule(optimizer, factor)
  for _, g in ipairs(optimizer.groups) do g.initial_lr = g.initial_lr or g.lr end
  local s = setmetatable({optimizer = optimizer, factor = factor, last_step = 0}, Schedule)
  s:_apply()
  return s
end

function Schedule:_apply()
  local f = self.factor(self.last_step)
  for _, g in ipairs(self.optimizer.groups) do g.lr = g.initial_lr * f end
end

function Schedule:step()
  self.last_step = self.last_step + 1
  self:_apply()
end

function Schedule:get_lr()
  local lrs = {}
  for i, g in ipairs(self.optimizer.groups) do lrs[i] = g.lr end
  return lrs
end

function Schedule:state_dict() return {last_step = self.last_step} end
function Schedule:load_state_dict(sd)
  self.last_step = assert(tonumber(sd.last_step), 'schedule state needs last_step')
  self:_apply()
end

optim.lr_scheduler = {}

-- Linear warmup from 0 over warmup_steps, then cosine decay to min_lr_ratio at total_steps.
function optim.lr_scheduler.WarmupCosine(optimizer, opts)
  local warmup, total = opts.warmup_steps or 0, assert(opts.total_steps, 'WarmupCosine needs total_steps')
  local floor = opts.min_lr_ratio or 0
  return new_schedule(optimizer, function(step)
    if step < warmup then return (step + 1) / warmup end
    local progress = math.min(1, (step - warmup) / math.max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
  end)
end

-- lr * gamma^(number of milestones passed), as torch.optim.lr_scheduler.MultiStepLR.
function optim.lr_scheduler.MultiStep(optimizer, opts)
  local milestones, gamma = assert(opts.milestones, 'MultiStep needs milestones'), opts.gamma or 0.1
  return new_schedule(optimizer, function(step)
    local passed = 0
    for _, m in ipairs(milestones) do
      if step >= m then passed = passed + 1 end
    end
    return gamma ^ passed
  end)
end

help.document('optim.AdamW', 'optim.AdamW(params, {lr=1e-3, betas={0.9,0.999}, eps=1e-8, weight_decay=1e-2, fused=true}); params: module, tensors or groups {params=, lr=, weight_decay=}; fused=false runs the per-term Lua reference update.')
help.document('optim.SGD', 'optim.SGD(params, {lr=1e-2, momentum=0, dampening=0, weight_decay=0, nesterov=false, fused=true}).')
help.document('optim.clip_grad_norm', 'optim.clip_grad_norm(params, max_norm, norm_type=2) -> total norm before clipping.')
help.document('optim.lr_scheduler.WarmupCosine', 'WarmupCosine(opt, {warmup_steps, total_steps, min_lr_ratio=0}); :step() after each optimizer step.')
help.document('optim.lr_scheduler.MultiStep', 'MultiStep(opt, {milestones={...}, gamma=0.1}).')

return optim
