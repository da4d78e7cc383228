-- kinema.train: exact resume, accumulation, NaN stop, checkpoints, log, plot, autocast.
local T = require 'kinema.test'
local kinema = require 'kinema'
local nn, optim, train, json = kinema.nn, kinema.optim, kinema.train, require 'kinema.json'


-- A loader whose batch (epoch, i) is a fixed function of its position, as
-- kinema.data.Loader's batches are.
local function fake_loader(num_batches, batch, nan_at)
  return T.loader(num_batches, function(epoch, i)
    local k = epoch * 97 + i + 1
    local x = torch.sin(torch.arange(batch * 6):double() * (0.37 * k)):view(batch, 6):float()
    local y = torch.cos(torch.arange(batch * 3):double() * (0.11 * k)):view(batch, 3):float()
    local ids = {}
    for j = 1, batch do ids[j] = string.format('e%d-b%d-%d', epoch, i, j) end
    return {x = x, y = y, id = ids, nan = nan_at ~= nil and (i + 1 == nan_at)}
  end)
end

local Net = nn.Module:extend('Net')
function Net:init()
  self.a = nn.Linear(6, 16)
  self.b = nn.Linear(16, 3)
  self.drop = nn.Dropout(0.3)  -- draws from the default generator: resume must restore it
end
function Net:forward(x) return self.b(self.drop(torch.tanh(self.a(x)))) end

local function loss_fn(model)
  return function(batch)
    local out = model(batch.x)
    local mse = (out - batch.y):pow(2):mean()
    -- a second objective with its own random draw (as VTM's negative sampling)
    local pick = torch.multinomial(torch.ones(batch.x:size(0)), 1)
    local aux = out:index_select(0, pick):abs():mean()
    if batch.nan then aux = aux * (0 / 0) end
    return mse + aux * 0.1, {mse = mse:detach(), aux = aux:detach()}
  end
end

local function make(opts)
  torch.manual_seed(7)
  local model = Net()
  local opt = optim.AdamW(model, {lr = 1e-2, weight_decay = 0.01})
  local sched = optim.lr_scheduler.WarmupCosine(opt, {warmup_steps = 2, total_steps = 12})
  local cfg = {model = model, optimizer = opt, scheduler = sched, loss = loss_fn(model),
               loader = opts.loader or fake_loader(5, 4), max_steps = opts.max_steps, accumulate = 2,
               clip_grad = 0.5, out_dir = opts.out_dir, checkpoint_every = opts.checkpoint_every,
               resume = opts.resume, progress = false, plot = opts.plot or false}
  return train.Trainer(cfg), model
end

local function losses_of(log_path)
  local out = {}
  for _, r in ipairs(json.read_lines(log_path)) do
    if r.kind == 'train' then out[r.step] = r.loss end
  end
  return out
end

T.test('a run stopped and resumed gives the same losses and weights as an unbroken run', function()
  local full_dir, part_dir = T.tmpdir(), T.tmpdir()
  local full, full_model = make{max_steps = 12, out_dir = full_dir}
  full:fit()
  -- stop after 5 steps (5 loader batches per epoch, accumulate 2: the epoch turns mid-run)
  local first = make{max_steps = 5, out_dir = part_dir, checkpoint_every = 5}
  first:fit()
  torch.manual_seed(12345)  -- a fresh process would have another RNG state
  local resumed, resumed_model = make{max_steps = 12, out_dir = part_dir, checkpoint_every = 100, resume = true}
  T.eq(resumed.step, 0)
  resumed:fit()
  T.eq(resumed.step, 12)
  local a, b = losses_of(full_dir .. '/log.jsonl'), losses_of(part_dir .. '/log.jsonl')
  for step = 1, 12 do
    T.is_true(a[step] ~= nil and b[step] ~= nil, 'missing step ' .. step)
    T.eq(a[step], b[step])
  end
  local fa, fb = full_model:state_dict(), resumed_model:state_dict()
  for name, t in pairs(fa) do T.eq(t, fb[name]) end
  os.execute('rm -rf "' .. full_dir .. '" "' .. part_dir .. '"')
end)

T.test('checkpoints: newest kept, atomic names only, foreign files rejected by name', function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 6, out_dir = dir, checkpoint_every = 2}
  tr.keep_checkpoints = 2
  tr:fit()
  local p = io.popen('ls "' .. dir .. '"')
  local names = {}
  for n in p:lines() do names[#names + 1] = n end
  p:close()
  table.sort(names)
  T.eq(names, {'events.out.tfevents.kinema', 'log.jsonl', 'step-00000004.safetensors', 'step-00000006.safetensors'})
  -- the last step gets a checkpoint even off the cadence
  local odd = make{max_steps = 5, out_dir = dir .. '/odd', checkpoint_every = 2}
  odd:fit()
  T.eq(require('kinema.checkpoint').latest(dir .. '/odd'), dir .. '/odd/step-00000005.safetensors')
  T.eq(require('kinema.checkpoint').latest(dir), dir .. '/step-00000006.safetensors')
  -- a truncated file is refused with its name, the good checkpoint is untouched
  local bad = dir .. '/bad.safetensors'
  local src = io.open(dir .. '/step-00000006.safetensors', 'rb'):read('*a')
  local f = io.open(bad, 'wb'); f:write(src:sub(1, math.floor(#src / 2))); f:close()
  local fresh = make{max_steps = 6}
  T.raises(function() fresh:load_checkpoint(bad) end, 'bad.safetensors')
  -- a safetensors file that is not a training checkpoint
  torch.save_safetensors(dir .. '/plain.safetensors', {w = torch.ones(2)})
  T.raises(function() fresh:load_checkpoint(dir .. '/plain.safetensors') end, 'not a kinema training checkpoint')
  T.is_true(fresh:load_checkpoint(dir .. '/step-00000006.safetensors') ~= nil)
  T.eq(fresh.step, 6)
  os.execute('rm -rf "' .. dir .. '"')
end)

T.test('a fresh run refuses an out_dir with an earlier run unless overwrite is set', function()
  local dir = T.tmpdir()
  make{max_steps = 2, out_dir = dir, checkpoint_every = 2}:fit()
  local again = make{max_steps = 2, out_dir = dir, checkpoint_every = 1}
  T.raises(function() again:fit() end, 'holds an earlier run (1 checkpoint(s), log.jsonl)')
  T.eq(require('kinema.checkpoint').latest(dir), dir .. '/step-00000002.safetensors')  -- untouched
  again.overwrite = true
  again.keep_checkpoints = 5
  again:fit()
  T.eq(#json.read_lines(dir .. '/log.jsonl'), 2)
  T.eq(require('kinema.checkpoint').latest(dir), dir .. '/step-00000002.safetensors')
  os.execute('rm -rf "' .. dir .. '"')
end)

T.test('a non-finite loss stops naming the step, the objective and the sample ids', function()
  local tr = make{max_steps = 6, loader = fake_loader(5, 4, 3)}
  local msg = T.raises(function() tr:fit() end, 'non-finite loss')
  T.is_true(msg:find('at step 2', 1, true) ~= nil, msg)  -- batch 3 is the first micro-batch of step 2
  T.is_true(msg:find('aux = nan', 1, true) ~= nil or msg:find('aux = -nan', 1, true) ~= nil, msg)
  T.is_true(msg:find('mse', 1, true) == nil, msg)
  T.is_true(msg:find('e0-b2-1, e0-b2-2, e0-b2-3, e0-b2-4', 1, true) ~= nil, msg)
end)

T.test('gradient accumulation over 2 micro-batches equals one batch of twice the size', function()
  local function run(batch, accumulate)
    torch.manual_seed(3)
    local model = nn.Sequential(nn.Linear(6, 3))
    local opt = optim.SGD(model, {lr = 0.1})
    local loader = {}
    function loader:num_batches() return 8 / batch end
    function loader:iter(_, start)
      local i = start
      return function()
        if i >= 8 / batch then return nil end
        local rows = torch.arange(i * batch, (i + 1) * batch):double()
        i = i + 1
        return {x = torch.sin(rows:view(batch, 1) * torch.arange(1, 7):double():view(1, 6)):float(),
                y = torch.cos(rows:view(batch, 1) * torch.arange(1, 4):double():view(1, 3)):float()}
      end
    end
    local tr = train.Trainer{model = model, optimizer = opt, loader = loader, max_steps = 2, accumulate = accumulate,
                             progress = false, plot = false,
                             loss = function(b) return (model(b.x) - b.y):pow(2):mean(), {} end}
    tr:fit()
    return model:state_dict()
  end
  local a, b = run(4, 1), run(2, 2)
  for name, t in pairs(a) do T.close(t, b[name], {atol = 1e-6, rtol = 1e-5}) end
end)

T.test('the JSONL log holds losses, parts, lr and throughput; the plot is written', function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 3, out_dir = dir, plot = 'svg'}
  local summary = tr:fit()
  T.eq(summary.steps, 3)
  T.is_true(summary.clips_per_s > 0)
  local recs = json.read_lines(dir .. '/log.jsonl')
  T.eq(#recs, 3)
  for i, r in ipairs(recs) do
    T.eq(r.step, i)
    T.eq(r.kind, 'train')
    T.is_true(type(r.loss) == 'number' and type(r.mse) == 'number' and type(r.aux) == 'number')
    T.is_true(r.lr > 0 and r.clips_per_s > 0 and r.grad_norm >= 0)
  end
  T.close(recs[1].loss, recs[1].mse + 0.1 * recs[1].aux, {atol = 1e-5})
  if os.execute('command -v gnuplot >/dev/null 2>&1') == 0 then
    local svg = io.open(dir .. '/loss.svg', 'rb')
    T.is_true(svg ~= nil, 'loss.svg missing')
    T.is_true(svg:read('*a'):find('<svg', 1, true) ~= nil)
    svg:close()
  end
  os.execute('rm -rf "' .. dir .. '"')
end)

T.test('evaluate runs every eval_every steps without autograd and is logged', function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 4, out_dir = dir}
  local calls = 0
  tr.eval_every = 2
  tr.evaluate = function(t)
    calls = calls + 1
    T.is_true(not torch.is_grad_enabled())
    return {metric = t.step * 10}
  end
  tr:fit()
  T.eq(calls, 2)
  local evals = {}
  for _, r in ipairs(json.read_lines(dir .. '/log.jsonl')) do
    if r.kind == 'eval' then evals[#evals + 1] = r.metric end
  end
  T.eq(evals, {20, 40})
  os.execute('rm -rf "' .. dir .. '"')
end)

T.test('bad options are named', function()
  T.raises(function() train.Trainer{model = Net()} end, "'optimizer' is required")
  local m = Net()
  T.raises(function()
    train.Trainer{model = m, optimizer = optim.SGD(m, {lr = 1}), loader = fake_loader(1, 2), loss = loss_fn(m),
                  max_steps = 1, accumulate = 2}
  end, 'fewer than accumulate = 2')
  T.raises(function()
    train.Trainer{model = m, optimizer = optim.SGD(m, {lr = 1}), loader = fake_loader(2, 2), loss = loss_fn(m),
                  max_steps = 1, amp = 'int8'}
  end, "'amp' must be")
end)

T.test('autocast runs matmuls in bfloat16 and restores the previous state, also on error', function()
  local a = torch.randn(4, 4)
  local y = torch.autocast{device_type = 'cpu'}(function() return torch.matmul(a, a) end)
  T.eq(y.dtype, torch.bfloat16)
  T.eq(torch.is_autocast_enabled('cpu'), false)
  T.raises(function() torch.autocast{device_type = 'cpu'}(function() error('boom') end) end, 'boom')
  T.eq(torch.is_autocast_enabled('cpu'), false)
  T.eq(torch.matmul(a, a).dtype, torch.float32)
  T.raises(function() torch.autocast{device_type = 'cpu', dtype = torch.int64}(function() end) end,
           'dtype must be torch.bfloat16 or torch.float16')
end)

T.test('json decode round-trips and names the line of a bad record', function()
  local v = json.decode('{"a":[1,2.5,-3e2,true,null],"b":"x\\u00e9\\n"}')
  T.eq(v.a[3], -300)
  T.is_true(v.a[5] == json.null)
  T.eq(v.b, 'x\195\169\n')
  T.eq(json.encode(v), '{"a":[1,2.5,-300,true,null],"b":"x\195\169\\n"}')
  local path = T.tmpname('.jsonl')
  local f = io.open(path, 'wb'); f:write('{"a":1}\n{"a":2,}\n'); f:close()
  T.raises(function() json.read_lines(path) end, path .. ':2')
  os.remove(path)
end)
