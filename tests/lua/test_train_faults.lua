-- kinema.train under faults: a full or size-limited disk while logging, a log
-- left by a crash (cut and extra records), resuming without a checkpoint,
-- NaN/Inf gradients with a finite loss, poisoned checkpoints, temporary files
-- of killed writes.
local T = require 'kinema.test'
local kinema = require 'kinema'
local ffi = require 'ffi'
local nn, optim, train, json, sys = kinema.nn, kinema.optim, kinema.train, require 'kinema.json', require 'kinema.sys'

pcall(ffi.cdef, [[
int symlink(const char *target, const char *linkpath);
struct kinema_test_rlimit { unsigned long cur, max; };
int getrlimit(int resource, struct kinema_test_rlimit *rlim);
int setrlimit(int resource, const struct kinema_test_rlimit *rlim);
typedef void (*kinema_test_sighandler)(int);
kinema_test_sighandler signal(int signum, kinema_test_sighandler handler);
]])
local RLIMIT_FSIZE, SIGXFSZ = 1, 25


local read = T.read_file
local function append(path, text) T.write_file(path, text, 'ab') end

-- Every line of the log parses; returns the train records' steps in file order.
local function logged_steps(path)
  local steps = {}
  for _, r in ipairs(json.read_lines(path)) do
    if r.kind == 'train' then steps[#steps + 1] = r.step end
  end
  return steps
end

local function range(a, b)
  local out = {}
  for i = a, b do out[#out + 1] = i end
  return out
end

-- A gradient of NaN for whatever passes through, with the value unchanged.
local PoisonGradient = torch.autograd.Function{
  forward = function(_, x) return x:clone() end,
  backward = function(_, g) return g * (0 / 0) end,
}

local function loader(num_batches, poison_at)
  return T.loader(num_batches, function(epoch, i)
    local k = epoch * 31 + i + 1
    return {x = torch.sin(torch.arange(8):double() * (0.3 * k)):view(2, 4):float(),
            id = {'s' .. k .. 'a', 's' .. k .. 'b'}, poison = i + 1 == poison_at}
  end)
end

local Net = nn.Module:extend('FaultNet')
function Net:init()
  self.a = nn.Linear(4, 8)
  self.b = nn.Linear(8, 1)
end
function Net:forward(x) return self.b(torch.tanh(self.a(x))) end

local function make(opts)
  torch.manual_seed(11)
  local model = Net()
  local opt = optim.AdamW(model, {lr = 1e-2, weight_decay = 0.1})
  local cfg = {model = model, optimizer = opt, loader = opts.loader or loader(3), max_steps = opts.max_steps,
               out_dir = opts.out_dir, checkpoint_every = opts.checkpoint_every, resume = opts.resume,
               nonfinite_grad = opts.nonfinite_grad, clip_grad = opts.clip_grad, progress = false,
               plot = opts.plot or false,
               loss = function(batch)
                 local h = model(batch.x)
                 if batch.poison then h = PoisonGradient(h) end
                 return h:pow(2):mean(), {}
               end}
  return train.Trainer(cfg), model
end

T.test('a full disk while logging stops training with a checkpoint and says why', function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 6, out_dir = dir, checkpoint_every = 100}
  local inner = tr.loss_fn
  tr.loss_fn = function(batch, trainer)
    -- during step 3 the log becomes a file on a full disk
    if trainer.step == 2 and not sys.is_symlink(dir .. '/log.jsonl') then
      sys.rename(dir .. '/log.jsonl', dir .. '/log.before')
      T.eq(ffi.C.symlink('/dev/full', dir .. '/log.jsonl'), 0)
    end
    return inner(batch, trainer)
  end
  local msg = T.raises(function() tr:fit() end, "cannot write the training log '" .. dir .. "/log.jsonl' at step 3: ")
  T.is_true(msg:find('No space left on device', 1, true) ~= nil, msg)
  T.is_true(msg:find("training stopped (checkpoint '" .. dir .. "/step-00000003.safetensors' written)", 1, true) ~= nil,
            msg)
  T.eq(tr.step, 3)
  T.eq(logged_steps(dir .. '/log.before'), {1, 2})
  -- the checkpoint is the state after step 3: a resumed run goes on from there
  sys.remove(dir .. '/log.jsonl')
  sys.rename(dir .. '/log.before', dir .. '/log.jsonl')
  local resumed = make{max_steps = 4, out_dir = dir, checkpoint_every = 100, resume = true}
  resumed:fit()
  T.eq(logged_steps(dir .. '/log.jsonl'), {1, 2, 4})  -- step 3's record was the one that could not be written
  sys.remove_tree(dir)
end)

T.test('a size-limited disk: the cut record is removed, and a checkpoint that does not fit is reported', function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 6, out_dir = dir, checkpoint_every = 100}
  local old = ffi.new('struct kinema_test_rlimit')
  T.eq(ffi.C.getrlimit(RLIMIT_FSIZE, old), 0)
  local old_handler
  local inner = tr.loss_fn
  tr.loss_fn = function(batch, trainer)
    if trainer.step == 2 and not old_handler then
      -- room for part of one more record: the write stops mid-record (EFBIG, not a signal)
      old_handler = ffi.C.signal(SIGXFSZ, ffi.cast('kinema_test_sighandler', 1))
      local limit = ffi.new('struct kinema_test_rlimit', {sys.file_size(dir .. '/log.jsonl') + 40, old.max})
      T.eq(ffi.C.setrlimit(RLIMIT_FSIZE, limit), 0)
    end
    return inner(batch, trainer)
  end
  local ok, msg = pcall(tr.fit, tr)
  ffi.C.setrlimit(RLIMIT_FSIZE, old)
  ffi.C.signal(SIGXFSZ, old_handler)
  T.is_true(not ok, 'training went on after a failed log write')
  msg = tostring(msg)
  T.is_true(msg:find("cannot write the training log '" .. dir .. "/log.jsonl' at step 3: File too large", 1, true) ~= nil,
            msg)
  -- the checkpoint did not fit either: said so, and no file or temporary left behind
  T.is_true(msg:find('training stopped (no checkpoint written: ', 1, true) ~= nil, msg)
  T.eq(sys.list_dir(dir), {'events.out.tfevents.kinema', 'log.jsonl'})
  T.eq(logged_steps(dir .. '/log.jsonl'), {1, 2})  -- whole records only
  T.eq(read(dir .. '/log.jsonl'):sub(-1), '\n')
  sys.remove_tree(dir)
end)

T.test('resume cuts the log back to the checkpoint (extra and cut records) and the plot still works', function()
  local dir = T.tmpdir()
  make{max_steps = 4, out_dir = dir, checkpoint_every = 2}:fit()
  -- a crash after step 5 was logged (no checkpoint yet), in the middle of step 6's record
  append(dir .. '/log.jsonl', '{"kind":"train","loss":0.5,"step":5}\n{"kind":"train","loss":0.4,"st')
  local tr = make{max_steps = 7, out_dir = dir, checkpoint_every = 2, resume = true, plot = 'svg'}
  tr:fit()
  T.eq(logged_steps(dir .. '/log.jsonl'), range(1, 7))
  T.is_true(read(dir .. '/loss.svg'):find('<svg', 1, true) ~= nil)
  -- the plot reads a log a crash left behind: repeated steps, a cut last line
  append(dir .. '/log.jsonl', '{"kind":"train","loss":9,"step":3}\n{"kind":"tr')
  T.eq(require('kinema.plot').training_log(dir .. '/log.jsonl', dir .. '/again.svg'), dir .. '/again.svg')
  T.is_true(read(dir .. '/again.svg'):find('<svg', 1, true) ~= nil)
  sys.remove_tree(dir)
end)

T.test('resume with no checkpoint starts over without keeping the stale log', function()
  local dir = T.tmpdir()
  local stale = {}
  for step = 1, 65 do stale[step] = json.encode({kind = 'train', step = step, loss = 1}) end
  append(dir .. '/log.jsonl', table.concat(stale, '\n') .. '\n{"kind":"train","step":66,"lo')
  local tr = make{max_steps = 3, out_dir = dir, resume = true}
  tr:fit()
  T.eq(tr.step, 3)
  T.eq(logged_steps(dir .. '/log.jsonl'), {1, 2, 3})
  sys.remove_tree(dir)
end)

T.test('a NaN gradient with a finite loss stops, naming the step, the parameters and the samples', function()
  local dir = T.tmpdir()
  for _, clip in ipairs({false, 1.0}) do
    sys.remove_tree(dir)
    local tr, model = make{max_steps = 5, out_dir = dir, checkpoint_every = 1, loader = loader(3, 2),
                           clip_grad = clip or nil}
    local msg = T.raises(function() tr:fit() end, 'kinema.train: non-finite gradient norm (nan) with a finite loss')
    T.is_true(msg:find('at step 2 (epoch 0, batch 2)', 1, true) ~= nil, msg)
    T.is_true(msg:find('parameters: a.weight, a.bias, b.weight, b.bias', 1, true) ~= nil, msg)
    T.is_true(msg:find('sample ids: s2a, s2b', 1, true) ~= nil, msg)
    T.is_true(msg:find("nonfinite_grad = 'skip'", 1, true) ~= nil, msg)
    -- no update happened and nothing poisoned was saved
    for _, p in ipairs(model:parameters()) do T.is_true(p:isfinite():all():item()) end
    T.eq(sys.list_dir(dir), {'events.out.tfevents.kinema', 'log.jsonl', 'step-00000001.safetensors'})
  end
  sys.remove_tree(dir)
end)

T.test("nonfinite_grad = 'skip' leaves the weights of the bad step unchanged and goes on", function()
  local dir = T.tmpdir()
  local tr = make{max_steps = 3, out_dir = dir, checkpoint_every = 1, loader = loader(3, 2), nonfinite_grad = 'skip',
                  clip_grad = 1.0}
  tr.keep_checkpoints = 5
  tr:fit()
  T.eq(tr.step, 3)
  T.eq(tr.skipped_steps, 1)
  local one = torch.load_safetensors(dir .. '/step-00000001.safetensors')
  local two = torch.load_safetensors(dir .. '/step-00000002.safetensors')
  local three = torch.load_safetensors(dir .. '/step-00000003.safetensors')
  for name, t in pairs(one) do
    if name:match('^model%.') then
      T.eq(two[name], t, name)
      T.is_true(three[name]:isfinite():all():item(), name)
      T.is_true(not three[name]:equal(t), name .. ' did not train after the skipped step')
    end
  end
  local recs = json.read_lines(dir .. '/log.jsonl')
  T.eq(recs[1].skipped_steps, nil)
  T.eq(recs[2].skipped_steps, 1)
  T.eq(recs[2].grad_norm, nil)  -- NaN is not a number JSON can hold
  T.is_true(recs[3].grad_norm > 0)
  T.raises(function() make{max_steps = 1, nonfinite_grad = 'ignore'} end,
           "option 'nonfinite_grad' must be 'stop' or 'skip', got ignore")
  sys.remove_tree(dir)
end)

T.test('a checkpoint holding NaN/Inf is never written', function()
  local dir = T.tmpdir()
  local tr, model = make{max_steps = 1, out_dir = dir}
  for _, pair in ipairs(model:named_parameters()) do
    if pair[1] == 'b.bias' then torch.no_grad(function() pair[2]:fill_(math.huge) end) end
  end
  tr.step = 1
  T.raises(function() tr:save_checkpoint() end, "refusing to write checkpoint '" .. dir ..
           "/step-00000001.safetensors': 1 of 4 tensors hold NaN/Inf (model.b.bias)")
  T.eq(sys.list_dir(dir), {})
  sys.remove_tree(dir)
end)

T.test('temporary files of killed writes are removed at start and resume, others kept', function()
  local dir = T.tmpdir()
  make{max_steps = 2, out_dir = dir, checkpoint_every = 2}:fit()
  local left = {'step-00000004.safetensors.tmp.999999999.0.12345', 'log.jsonl.tmp', 'results.json.tmp'}
  local kept = {'other.safetensors.tmp.1.0.7', 'notes.tmp.txt'}  -- pid 1 is alive: maybe a write in progress
  for _, name in ipairs(left) do append(dir .. '/' .. name, 'partial') end
  for _, name in ipairs(kept) do append(dir .. '/' .. name, 'keep') end
  make{max_steps = 3, out_dir = dir, checkpoint_every = 2, resume = true}:fit()
  T.eq(sys.list_dir(dir), {'events.out.tfevents.kinema', 'log.jsonl', 'notes.tmp.txt', 'other.safetensors.tmp.1.0.7', 'step-00000002.safetensors',
                           'step-00000003.safetensors'})
  T.eq(logged_steps(dir .. '/log.jsonl'), {1, 2, 3})
  sys.remove_tree(dir)
end)
