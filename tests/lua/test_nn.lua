-- Modules: Lua and C++ blocks composed, parameters and names, train/eval,
-- state dicts with their error report, freezing, graphs, optimizers.
local T = require 'kinema.test'
local nn = require('kinema').nn
local optim = require('kinema').optim

local MLP = nn.Module:extend('MLP')
function MLP:init(d_in, d_hidden, d_out)
  self.fc1 = nn.Linear(d_in, d_hidden)
  self.act = nn.ReLU()
  self.fc2 = nn.Linear(d_hidden, d_out)
  self.scale = nn.Parameter(torch.ones(1))
end
function MLP:forward(x) return self.fc2(self.act(self.fc1(x))) * self.scale end

T.test('C++ Linear matches x W^T + b', function()
  local lin = nn.Linear(3, 2)
  local names = {}
  for i, pair in ipairs(lin:named_parameters()) do names[i] = pair[1] end
  T.eq(names, {'weight', 'bias'})
  local p = lin:parameters()
  local x = torch.randn(4, 3)
  T.close(lin(x), torch.matmul(x, p[1]:t()) + p[2])
  T.raises(function() lin(torch.randn(4, 5)) end, 'mat1 and mat2 shapes cannot be multiplied')
  T.raises(function() lin('x') end, 'Linear')
  T.raises(function() nn.Linear{in_features = 3} end, "'out_features' is required")
  T.raises(function() nn.Linear{in_features = 3, out_features = 2, bais = false} end,
           "Linear: unknown config key 'bais' (did you mean 'bias'?)")
end)

T.test('named_parameters, children, state_dict round trip', function()
  local m = MLP(4, 8, 2)
  local names = {}
  for i, pair in ipairs(m:named_parameters()) do names[i] = pair[1] end
  T.eq(names, {'scale', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'})
  T.eq(#m:children(), 3)
  T.eq(m:num_parameters(), 1 + 32 + 8 + 16 + 2)
  local m2 = MLP(4, 8, 2)
  local x = torch.randn(5, 4)
  T.is_true(not torch.allclose(m(x), m2(x)))
  m2:load_state_dict(m:state_dict())
  T.close(m2(x), m(x))
end)

T.test('load_state_dict reports missing, unexpected and mis-shaped keys', function()
  local m = MLP(4, 8, 2)
  local sd = m:state_dict()
  sd['fc1.bias'] = nil
  sd['extra.weight'] = torch.zeros(1)
  sd['fc2.weight'] = torch.zeros(3, 3)
  local err = T.raises(function() m:load_state_dict(sd) end, 'missing keys: fc1.bias')
  T.is_true(err:find('unexpected keys: extra.weight', 1, true), err)
  T.is_true(err:find('fc2.weight: checkpoint torch.Size([3, 3]), model torch.Size([2, 8])', 1, true), err)
  local report = m:load_state_dict(sd, {strict = false})
  T.eq(report.missing, {'fc1.bias'})
  T.eq(report.unexpected, {'extra.weight'})
  T.eq(report.loaded, {'fc1.weight', 'fc2.bias', 'scale'})
end)

T.test('train/eval reaches C++ blocks (dropout)', function()
  local seq = nn.Sequential(nn.Dropout(0.5))
  local x = torch.ones(1000)
  seq:eval()
  T.eq(seq(x), x)
  seq:train()
  local y = seq(x)
  T.is_true(y:eq(0):sum():item() > 300 and y:eq(2):sum():item() > 300)
end)

T.test('freeze by name pattern', function()
  local m = MLP(4, 8, 2)
  local frozen = m:freeze('^fc1%.')
  T.eq(frozen, {'fc1.weight', 'fc1.bias'})
  m(torch.randn(3, 4)):sum():backward()
  local p = m:named_parameters()
  T.eq(p[2][2].grad, nil)
  T.is_true(p[4][2].grad ~= nil)
  m:unfreeze('fc1')
  T.is_true(p[2][2].requires_grad)
end)

T.test('graph built with the callable syntax', function()
  local x = nn.Input('x')
  local l1, l2 = nn.Linear(3, 5), nn.Linear(5, 2)
  local h = nn.ReLU()(l1(x))
  local net = nn.Graph({x}, {l2(h)})
  local input = torch.randn(4, 3)
  T.close(net(input), l2(l1(input):relu()))
  T.eq(#net:parameters(), 4)
end)

T.test('to(dtype) keeps parameter identity', function()
  local m = MLP(2, 3, 1)
  local before = m:parameters()
  m:to(torch.float64)
  local after = m:parameters()
  T.eq(after[2].dtype, torch.float64)
  T.is_true(rawequal(before[1], after[1]))
  T.eq(m(torch.randn(1, 2, {dtype = torch.float64})).dtype, torch.float64)
end)

T.test('other C++ layers: shapes and PyTorch parameter names', function()
  local emb = nn.Embedding(10, 4)
  T.eq(emb(torch.tensor({{1, 2, 3}}, {dtype = torch.int64})):size(), {1, 3, 4})
  T.raises(function() emb(torch.randn(2)) end, 'integer ids')
  local ln = nn.LayerNorm{normalized_shape = {4}}
  local y = ln(torch.randn(3, 4))
  T.close(y:mean(-1), torch.zeros(3), {atol = 1e-6})
  local conv = nn.Conv2d(3, 8, 3, {padding = 1})
  T.eq(conv(torch.randn(2, 3, 5, 5)):size(), {2, 8, 5, 5})
  local conv3 = nn.Conv3d{in_channels = 3, out_channels = 4, kernel_size = {2, 3, 3}, stride = {2, 1, 1}}
  T.eq(conv3(torch.randn(1, 3, 4, 6, 6)):size(), {1, 4, 2, 4, 4})
  local mha = nn.MultiheadAttention(8, 2)
  local out = mha(torch.randn(2, 5, 8))
  T.eq(out.output:size(), {2, 5, 8})
  T.eq(out.weights:size(), {2, 5, 5})
  local names = {}
  for i, pair in ipairs(mha:named_parameters()) do names[i] = pair[1] end
  T.eq(names, {'in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'})
  local layer = nn.TransformerEncoderLayer{d_model = 8, nhead = 2, dim_feedforward = 16, dropout = 0}
  local pad = torch.tensor({{false, false, true}})
  T.eq(layer(torch.randn(1, 3, 8), nil, pad):size(), {1, 3, 8})
  T.close(nn.GELU()(torch.tensor({0.})), torch.tensor({0.}))
end)

T.test('gradients flow through C++ and Lua modules', function()
  local m = MLP(4, 8, 2)
  m(torch.randn(3, 4)):pow(2):sum():backward()
  for _, pair in ipairs(m:named_parameters()) do
    T.is_true(pair[2].grad ~= nil, pair[1] .. ' has no gradient')
  end
  m:zero_grad()
  T.eq(m:parameters()[1].grad, nil)
end)

T.test('SGD with momentum follows the PyTorch update', function()
  local p = nn.Parameter(torch.tensor({1., 2.}))
  local opt = optim.SGD({p}, {lr = 0.1, momentum = 0.9, weight_decay = 0.1})
  -- loss = sum(p^2): grad = 2p; d = 2p + 0.1p = 2.1p
  for _ = 1, 2 do
    opt:zero_grad()
    ;(p * p):sum():backward()
    opt:step()
  end
  -- step 1: buf = 2.1*[1,2] = [2.1,4.2]; p = [0.79,1.58]
  -- step 2: d = 2.1*p = [1.659,3.318]; buf = 0.9*buf + d = [3.549,7.098]; p -= 0.1*buf
  T.close(p, torch.tensor({0.79 - 0.3549, 1.58 - 0.7098}), {atol = 1e-6})
end)

T.test('AdamW follows the PyTorch update', function()
  local p = nn.Parameter(torch.tensor({1., -2.}, {dtype = torch.float64}))
  local opt = optim.AdamW({p}, {lr = 0.1, weight_decay = 0.5})
  local g = torch.tensor({0.5, 0.25}, {dtype = torch.float64})
  local expected = torch.tensor({1., -2.}, {dtype = torch.float64})
  local m, v = torch.zeros(2, {dtype = torch.float64}), torch.zeros(2, {dtype = torch.float64})
  for t = 1, 3 do
    p.grad = g:clone()
    opt:step()
    expected = expected * (1 - 0.1 * 0.5)
    m = m * 0.9 + g * 0.1
    v = v * 0.999 + g * g * 0.001
    local mhat, vhat = m / (1 - 0.9 ^ t), v / (1 - 0.999 ^ t)
    expected = expected - mhat / (vhat:sqrt() + 1e-8) * 0.1
  end
  T.close(p, expected, {atol = 1e-12})
end)

T.test('parameter groups, clipping, schedules', function()
  local a, b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
  local opt = optim.SGD({{params = {a}, lr = 1.0}, {params = {b}}}, {lr = 0.1})
  a.grad, b.grad = torch.tensor({3.}), torch.tensor({4.})
  local norm = optim.clip_grad_norm({a, b}, 1.0)
  T.close(norm, 5)
  T.close(a.grad:item(), 0.6, {atol = 1e-5})
  opt:step()
  T.close(a:item(), 1 - 0.6, {atol = 1e-5})
  T.close(b:item(), 1 - 0.1 * 0.8, {atol = 1e-5})
  local sched = optim.lr_scheduler.WarmupCosine(opt, {warmup_steps = 2, total_steps = 6})
  T.close(opt.groups[1].lr, 0.5)
  sched:step()
  T.close(opt.groups[1].lr, 1.0)
  sched:step()  -- step 2: cosine starts at its peak
  T.close(opt.groups[2].lr, 0.1)
  for _ = 1, 4 do sched:step() end
  T.close(opt.groups[1].lr, 0, {atol = 1e-12})
  local ms = optim.lr_scheduler.MultiStep(optim.SGD({a}, {lr = 1}), {milestones = {1, 3}, gamma = 0.5})
  local lrs = {}
  for i = 1, 4 do lrs[i] = ms:get_lr()[1]; ms:step() end
  T.eq(lrs, {1, 0.5, 0.5, 0.25})
end)

T.test('optimizer state round trip resumes exactly', function()
  local function run(steps, resume_from)
    torch.manual_seed(0)
    local m = MLP(3, 4, 1)
    local opt = optim.AdamW(m, {lr = 0.01})
    if resume_from then
      m:load_state_dict(resume_from.model)
      opt:load_state_dict(resume_from.opt_tensors, resume_from.opt_meta)
    end
    local x = torch.linspace(-1, 1, 12):view(4, 3)
    local losses = {}
    for i = 1, steps do
      opt:zero_grad()
      local loss = m(x):pow(2):mean()
      loss:backward()
      opt:step()
      losses[i] = loss:item()
    end
    local t, meta = opt:state_dict()
    return losses, {model = m:state_dict(), opt_tensors = t, opt_meta = meta}
  end
  local full = run(6)
  local first, state = run(3)
  local second = run(3, state)
  for i = 1, 3 do
    T.eq(first[i], full[i])
    T.eq(second[i], full[i + 3])
  end
end)
