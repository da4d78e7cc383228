-- kinema.optim's fused AdamW / SGD (kinema::adamw_, kinema::sgd_) and the Lua
-- reference path ({fused = false}) against PyTorch: 100 steps on 300 tensors
-- of mixed shapes and dtypes, final values from torch.optim in
-- tests/fixtures/optim_reference.pt (tests/fixtures/make_optim_fixture.py,
-- whose docstring gives the formulas of the initial values and gradients
-- evaluated here). Also: hyper-parameter and argument errors, checkpoint
-- resume across the two paths, layouts, reduced-precision parameters.
local T = require 'kinema.test'
local kinema = require 'kinema'
local optim, ops = kinema.optim, kinema.ops

local FIX = 'tests/fixtures/'
local STEPS = 100

local reference = torch.load(FIX .. 'optim_reference.pt')

local CONFIGS = {
  adamw = {'AdamW', {lr = 1e-2, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.05}},
  adamw_nodecay = {'AdamW', {lr = 3e-3, betas = {0.8, 0.99}, eps = 1e-6, weight_decay = 0}},
  sgd_momentum = {'SGD', {lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 1e-3}},
  sgd_nesterov = {'SGD', {lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-2}},
  sgd_plain = {'SGD', {lr = 0.1, weight_decay = 1e-3}},
}
local CONFIG_ORDER = {'adamw', 'adamw_nodecay', 'sgd_momentum', 'sgd_nesterov', 'sgd_plain'}

-- The fixture's formulas: initial values and gradients in float64, then cast.
local function initial64(i, shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return (torch.arange(n, {dtype = torch.float64}) * 0.37 + i):sin():mul(0.5):reshape(shape)
end

local function scale_of(i) return i == 7 and 1e-12 or 10 ^ -(i % 4) end

local function gradient(i, base, t, dtype)
  return (base * 3 + (0.1 * t + i)):cos():mul(scale_of(i)):to(dtype)
end

-- The fixture's tensors of one configuration, in index order.
local function expected_of(name)
  local out = {}
  local i = 0
  while reference[name .. '.' .. i] do
    out[i + 1] = reference[name .. '.' .. i]
    i = i + 1
  end
  return out
end

-- Runs STEPS steps of config `name`; returns the parameters.
local function run(name, fused)
  local kind, opts = CONFIGS[name][1], CONFIGS[name][2]
  local expected = expected_of(name)
  local bases, params = {}, {}
  for k, e in ipairs(expected) do
    bases[k] = initial64(k - 1, e.shape)
    params[k] = kinema.nn.Parameter(bases[k]:to(e.dtype))
  end
  local o = {fused = fused}
  for key, v in pairs(opts) do o[key] = v end
  local opt = optim[kind](params, o)
  for t = 1, STEPS do
    for k, p in ipairs(params) do p.grad = gradient(k - 1, bases[k], t, p.dtype) end
    opt:step()
  end
  return params, expected
end

-- Largest relative difference over a list: for each tensor, max |a - b|
-- divided by max |b| (elements near zero are measured against the tensor's
-- scale, not their own). Returns it and the index of the worst tensor.
local function max_relative_difference(actual, expected)
  local worst, at = 0, nil
  T.eq(#actual, #expected, 'number of tensors')
  for k, e in ipairs(expected) do
    local a = actual[k]:detach()
    T.eq(a.dtype, e.dtype, 'dtype of tensor ' .. (k - 1))
    T.eq(tostring(a.shape), tostring(e.shape), 'shape of tensor ' .. (k - 1))
    if e:numel() > 0 then
      local scale = math.max(e:double():abs():max():item(), 1e-30)
      local d = (a:double() - e:double()):abs():max():item() / scale
      if d ~= d then d = math.huge end
      if d > worst then worst, at = d, k - 1 end
    end
  end
  return worst, at
end

T.test('the fixture covers a few hundred tensors of mixed shapes and dtypes', function()
  local e = expected_of('adamw')
  T.eq(#e, 300)
  local doubles, zero_dim, empty, elements = 0, 0, 0, 0
  for _, t in ipairs(e) do
    if t.dtype == torch.float64 then doubles = doubles + 1 end
    if t:dim() == 0 then zero_dim = zero_dim + 1 end
    if t:numel() == 0 then empty = empty + 1 end
    elements = elements + t:numel()
  end
  T.eq({doubles, zero_dim, empty}, {30, 1, 1})
  T.is_true(elements > 15000, 'elements: ' .. elements)
end)

for _, name in ipairs(CONFIG_ORDER) do
  T.test(name .. ': fused and Lua paths match torch.optim after 100 steps (rel <= 1e-6)', function()
    local fused, expected = run(name, true)
    local lua_path = run(name, false)
    local d_fused, at_fused = max_relative_difference(fused, expected)
    local d_lua, at_lua = max_relative_difference(lua_path, expected)
    local d_paths = max_relative_difference(fused, lua_path)
    T.is_true(d_fused <= 1e-6, string.format('fused vs PyTorch: %.3g at tensor %s', d_fused, tostring(at_fused)))
    T.is_true(d_lua <= 1e-6, string.format('Lua vs PyTorch: %.3g at tensor %s', d_lua, tostring(at_lua)))
    T.is_true(d_paths <= 1e-6, string.format('fused vs Lua: %.3g', d_paths))
    -- The parameters moved: a no-op optimizer would fail above, but say so plainly.
    local start = initial64(2, {64, 96}):float()
    T.is_true((fused[3] - start):abs():max():item() > 1e-3, 'tensor 2 did not move')
  end)
end

T.test('fused is the default; {fused = false} selects the Lua update', function()
  local p = kinema.nn.Parameter(torch.ones(3))
  T.is_true(optim.AdamW({p}).fused_step ~= nil)
  T.is_true(optim.SGD({p}, {momentum = 0.5}).fused_step ~= nil)
  T.eq(optim.AdamW({p}, {fused = false}).fused_step, nil)
  T.raises(function() optim.AdamW({p}, {fused = 'yes'}) end, "option 'fused' must be a boolean")
end)

T.test('parameters without a gradient are left alone and get no state', function()
  for _, fused in ipairs({true, false}) do
    local a, b = kinema.nn.Parameter(torch.ones(4)), kinema.nn.Parameter(torch.ones(2))
    local opt = optim.AdamW({a, b}, {fused = fused, weight_decay = 0.5})
    b.grad = torch.ones(2)
    opt:step()
    T.eq(a, torch.ones(4))
    T.eq(opt.state[1], nil)
    T.is_true(b:max():item() < 1)
    T.eq(opt.state[2].step:item(), 1)
  end
end)

-- ---- errors (torch.optim raises on all of these) ------------------------------------------

T.test('AdamW refuses negative or NaN lr, betas outside [0, 1), negative eps and weight decay', function()
  local p = {kinema.nn.Parameter(torch.ones(2))}
  local nan = 0 / 0
  T.raises(function() optim.AdamW(p, {lr = -1}) end, "AdamW: argument 'lr' must be a number in [0, inf), got -1")
  T.raises(function() optim.AdamW(p, {lr = nan}) end, "argument 'lr'")
  T.raises(function() optim.AdamW(p, {lr = math.huge}) end, "argument 'lr'")
  T.raises(function() optim.AdamW(p, {lr = '0.1'}) end, "argument 'lr'")
  T.raises(function() optim.AdamW(p, {betas = {1, 0.999}}) end, "argument 'betas[1]' must be a number in [0, 1), got 1")
  T.raises(function() optim.AdamW(p, {betas = {0.9, 1.5}}) end, "argument 'betas[2]'")
  T.raises(function() optim.AdamW(p, {betas = {-0.1, 0.9}}) end, "argument 'betas[1]'")
  T.raises(function() optim.AdamW(p, {betas = {0.9, nan}}) end, "argument 'betas[2]'")
  T.raises(function() optim.AdamW(p, {betas = 0.9}) end, "argument 'betas' must be a table")
  T.raises(function() optim.AdamW(p, {eps = -1e-8}) end, "argument 'eps' must be a number in [0, inf)")
  T.raises(function() optim.AdamW(p, {weight_decay = -0.01}) end, "argument 'weight_decay'")
  -- A group's own value is checked too, and the group is named.
  T.raises(function() optim.AdamW({{params = p}, {params = {kinema.nn.Parameter(torch.ones(1))}, lr = -2}}) end,
           "AdamW: group 2 argument 'lr'")
  -- The error points at the caller's line, not at optim.lua.
  local err = T.raises(function() optim.AdamW(p, {lr = -1}) end, 'lr')
  T.is_true(err:find('test_optim.lua', 1, true) ~= nil, err)
end)

T.test('SGD refuses negative or NaN lr, negative momentum, dampening and weight decay', function()
  local p = {kinema.nn.Parameter(torch.ones(2))}
  T.raises(function() optim.SGD(p, {lr = -0.1}) end, "SGD: argument 'lr' must be a number in [0, inf), got -0.1")
  T.raises(function() optim.SGD(p, {lr = 0 / 0}) end, "argument 'lr'")
  T.raises(function() optim.SGD(p, {momentum = -0.9}) end, "argument 'momentum'")
  T.raises(function() optim.SGD(p, {dampening = -1}) end, "argument 'dampening'")
  T.raises(function() optim.SGD(p, {weight_decay = -1}) end, "argument 'weight_decay'")
  T.raises(function() optim.SGD(p, {nesterov = true}) end, 'nesterov needs momentum > 0')
end)

T.test('the operators check their arguments and name them', function()
  local p, g = torch.ones(3), torch.ones(3)
  local m, v, s = torch.zeros(3), torch.zeros(3), torch.zeros({}, {dtype = torch.float64})
  local function adamw(args)
    local a = {params = {p}, grads = {g}, exp_avgs = {m}, exp_avg_sqs = {v}, steps = {s},
               lr = 0.1, beta1 = 0.9, beta2 = 0.999, weight_decay = 0, eps = 1e-8}
    for k, x in pairs(args) do a[k] = x end
    ops.adamw_(a.params, a.grads, a.exp_avgs, a.exp_avg_sqs, a.steps, a.lr, a.beta1, a.beta2,
               a.weight_decay, a.eps)
  end
  T.raises(function() adamw{lr = -1} end, "kinema::adamw_: argument 'lr' must be in [0, inf), got -1")
  T.raises(function() adamw{beta2 = 1} end, "kinema::adamw_: argument 'beta2' must be in [0, 1)")
  T.raises(function() adamw{eps = 0 / 0} end, "argument 'eps'")
  T.raises(function() adamw{grads = {}} end, "argument 'grads' has 0 tensors but 'params' has 1")
  T.raises(function() adamw{grads = {torch.ones(4)}} end, "argument 'grads' element 0 has shape [4] but its parameter has [3]")
  T.raises(function() adamw{grads = {torch.ones(3, {dtype = torch.float64})}} end, "argument 'grads' element 0 has dtype Double")
  T.raises(function() adamw{exp_avgs = {torch.zeros(3, {dtype = torch.float64})}} end,
           "argument 'exp_avgs' element 0 has dtype Double for a Float parameter")
  T.raises(function() adamw{params = {torch.ones(3, {dtype = torch.int64})}, grads = {torch.ones(3, {dtype = torch.int64})}} end,
           "argument 'params' element 0 must be a dense floating-point tensor")
  T.raises(function() adamw{steps = {torch.zeros(2, {dtype = torch.float64})}} end,
           "argument 'steps' element 0 must be a one-element floating-point CPU tensor")
  local function sgd(args)
    local a = {buffers = {m}, lr = 0.1, momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = false}
    for k, x in pairs(args) do a[k] = x end
    ops.sgd_({p}, {g}, a.buffers, a.lr, a.momentum, a.dampening, a.weight_decay, a.nesterov, false)
  end
  T.raises(function() sgd{lr = 0 / 0} end, "kinema::sgd_: argument 'lr'")
  T.raises(function() sgd{momentum = -1} end, "kinema::sgd_: argument 'momentum'")
  T.raises(function() sgd{weight_decay = -1} end, "kinema::sgd_: argument 'weight_decay'")
  T.raises(function() sgd{nesterov = true, dampening = 0.5} end, "argument 'nesterov' needs momentum > 0 and dampening = 0")
  T.raises(function() sgd{momentum = 0} end, "argument 'momentum_buffers' must be empty when momentum is 0")
  T.raises(function() sgd{buffers = {}} end, "argument 'momentum_buffers' has 0 tensors")
  -- Nothing was updated by the refused calls.
  T.eq(p, torch.ones(3))
  T.eq(s:item(), 0)
end)

T.test('a schedule or user setting lr negative later is refused at step time', function()
  local p = kinema.nn.Parameter(torch.ones(2))
  local opt = optim.AdamW({p})
  opt.groups[1].lr = -1
  p.grad = torch.ones(2)
  T.raises(function() opt:step() end, "kinema::adamw_: argument 'lr'")
end)

-- ---- state: checkpoints, resume -----------------------------------------------------------


-- Steps `steps` times from `start` (a state written by a previous run, or nil).
local function train(kind, opts, steps, first_step, start)
  local params = {}
  for k = 1, 4 do params[k] = kinema.nn.Parameter(initial64(k, {k + 1, 3}):float()) end
  local opt = optim[kind](params, opts)
  if start then
    for k, p in ipairs(params) do torch.no_grad(function() p:copy_(start.params['p' .. k]) end) end
    local tensors, meta = torch.load_safetensors(start.optimizer)
    opt:load_state_dict(tensors, meta)
  end
  for t = first_step, first_step + steps - 1 do
    for k, p in ipairs(params) do p.grad = gradient(k, initial64(k, {k + 1, 3}), t, torch.float32) end
    opt:step()
  end
  local path = T.tmpname('.safetensors')
  local tensors, meta = opt:state_dict()
  torch.save_safetensors(path, tensors, meta)
  local saved = {}
  for k, p in ipairs(params) do saved['p' .. k] = p:detach():clone() end
  return {params = saved, optimizer = path}
end

for _, case in ipairs({{'AdamW', {lr = 1e-2, weight_decay = 0.1}}, {'SGD', {lr = 0.05, momentum = 0.9, dampening = 0.2}},
                       {'SGD', {lr = 0.05, momentum = 0.9, nesterov = true}}}) do
  local kind, opts = case[1], case[2]
  local function with(fused)
    local o = {fused = fused}
    for k, v in pairs(opts) do o[k] = v end
    return o
  end
  T.test(kind .. (opts.nesterov and ' (nesterov)' or '') .. ': a resumed run continues exactly', function()
    -- Fused throughout: 10 steps == 5 steps, checkpoint, 5 more, bit for bit.
    local unbroken = train(kind, with(true), 10, 1)
    local half = train(kind, with(true), 5, 1)
    local resumed = train(kind, with(true), 5, 6, half)
    for k = 1, 4 do T.eq(resumed.params['p' .. k], unbroken.params['p' .. k], 'fused resume, tensor ' .. k) end
    -- A checkpoint written by the Lua update (the state layout before the
    -- fused operators) resumed by the fused one: same state names, and the
    -- run continues as the Lua-only run does (within rounding).
    local old = train(kind, with(false), 5, 1)
    local old_tensors = torch.load_safetensors(old.optimizer)
    local new_tensors = torch.load_safetensors(half.optimizer)
    local old_names, new_names = {}, {}
    for name in pairs(old_tensors) do old_names[#old_names + 1] = name end
    for name in pairs(new_tensors) do new_names[#new_names + 1] = name end
    table.sort(old_names)
    table.sort(new_names)
    T.eq(new_names, old_names)
    local lua_only = train(kind, with(false), 5, 6, old)
    local mixed = train(kind, with(true), 5, 6, old)
    for k = 1, 4 do
      T.close(mixed.params['p' .. k], lua_only.params['p' .. k], {rtol = 1e-6, atol = 1e-7}, 'tensor ' .. k)
    end
    for _, run_state in ipairs({unbroken, half, resumed, old, lua_only, mixed}) do os.remove(run_state.optimizer) end
  end)
end

-- ---- layouts and dtypes -------------------------------------------------------------------

T.test('non-contiguous and channels-last parameters update like contiguous ones', function()
  for _, kind in ipairs({'AdamW', 'SGD'}) do
    local base = initial64(3, {4, 6, 2, 3}):float()
    local transposed = kinema.nn.Parameter(base:clone():transpose(0, 1))      -- dense, permuted strides
    local strided = kinema.nn.Parameter(torch.zeros(4, 12, 2, 3):narrow(1, 0, 6))  -- not dense
    torch.no_grad(function() strided:copy_(base) end)
    local channels_last = kinema.nn.Parameter(base:permute(0, 2, 3, 1):contiguous():permute(0, 3, 1, 2))
    local plain = kinema.nn.Parameter(base:clone())
    local opts = kind == 'AdamW' and {lr = 0.1, weight_decay = 0.1} or {lr = 0.1, momentum = 0.9}
    local opt = optim[kind]({transposed, strided, channels_last}, opts)
    local ref = optim[kind]({plain}, opts)
    for t = 1, 3 do
      local g = gradient(3, initial64(3, {4, 6, 2, 3}), t, torch.float32)
      transposed.grad = g:transpose(0, 1):contiguous()  -- strides differ from the parameter's
      strided.grad = g:clone()
      channels_last.grad = g:clone()                    -- contiguous, parameter is channels-last
      plain.grad = g:clone()
      opt:step()
      ref:step()
    end
    T.eq(transposed:transpose(0, 1):contiguous(), plain:detach(), kind .. ' transposed')
    T.eq(strided:contiguous(), plain:detach(), kind .. ' strided view')
    T.eq(channels_last:contiguous(), plain:detach(), kind .. ' channels-last')
    T.eq(channels_last:stride(1), 1, 'channels-last layout kept')
    T.eq(strided:stride(1), 6, 'strided view kept')
  end
end)

T.test('bf16 and fp16 parameters with float32 or own-dtype state', function()
  for _, dtype in ipairs({torch.bfloat16, torch.float16}) do
    for _, state_dtype in ipairs({torch.float32, dtype}) do
      local p64 = initial64(5, {37}) + 1
      local p = p64:to(dtype)
      local m, v = torch.zeros(37, {dtype = state_dtype}), torch.zeros(37, {dtype = state_dtype})
      local s = torch.zeros({}, {dtype = torch.float64})
      -- Reference: the same steps in float64 from the same rounded start,
      -- rounding the parameter (and state) to its dtype after each step.
      local rp, rm, rv = p:double(), torch.zeros(37, {dtype = torch.float64}), torch.zeros(37, {dtype = torch.float64})
      for t = 1, 3 do
        local g = gradient(5, p64, t, dtype)
        ops.adamw_({p}, {g}, {m}, {v}, {s}, 0.01, 0.9, 0.999, 0.1, 1e-8)
        local gd = g:double()
        rp = rp * (1 - 0.01 * 0.1)
        -- The step uses this step's moments at full precision and stores
        -- them rounded to the state dtype.
        local m_full = rm * 0.9 + gd * 0.1
        local v_full = rv * 0.999 + gd * gd * 0.001
        local denom = v_full:sqrt() / math.sqrt(1 - 0.999 ^ t) + 1e-8
        rp = (rp - m_full / denom * (0.01 / (1 - 0.9 ^ t))):to(dtype):double()
        rm, rv = m_full:to(state_dtype):double(), v_full:to(state_dtype):double()
      end
      T.eq(p.dtype, dtype)
      T.eq(m.dtype, state_dtype)
      -- At most two rounding steps of the parameter's dtype apart.
      local tol = dtype == torch.bfloat16 and 2 ^ -6 or 2 ^ -9
      T.close(p:double(), rp, {rtol = tol, atol = 0}, tostring(dtype) .. ' params, ' .. tostring(state_dtype) .. ' state')
      T.close(m:double(), rm, {rtol = 1e-2, atol = 1e-6})
    end
  end
end)
