-- A small test framework for Lua test files (run by `kinema test`).
--   local T = require 'kinema.test'
--   T.test('adds', function() T.eq(torch.tensor{1} + 1, torch.tensor{2}) end)
-- Assertions raise errors with a description of the mismatch; every test of a
-- file runs even after a failure; the summary line is "N passed, M failed".
local torch = require 'torch'
local sys = require 'kinema.sys'

local T = {}
local current  -- tests registered by the file being loaded
local scratch  -- T.tmpdir() directories of that file: {dir, reserved name} pairs

function T.test(name, fn)
  assert(type(name) == 'string' and type(fn) == 'function', 'T.test(name, fn)')
  assert(current, 'T.test called outside `kinema test`')
  current[#current + 1] = {name = name, fn = fn}
end

local function describe(v)
  if torch.is_tensor(v) then return torch.format(v, {threshold = 50}) end
  return tostring(v)
end

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

local function deep_equal(a, b, path)
  if torch.is_tensor(a) or torch.is_tensor(b) then
    if not (torch.is_tensor(a) and torch.is_tensor(b)) then
      return false, path .. ': tensor vs ' .. type(torch.is_tensor(a) and b or a)
    end
    if a.dtype ~= b.dtype then return false, path .. ': dtype ' .. tostring(a.dtype) .. ' vs ' .. tostring(b.dtype) end
    if tostring(a.shape) ~= tostring(b.shape) then
      return false, path .. ': shape ' .. tostring(a.shape) .. ' vs ' .. tostring(b.shape)
    end
    if not torch.equal(a:cpu(), b:cpu()) then return false, path .. ': values differ' end
    return true
  end
  if type(a) ~= type(b) then return false, path .. ': ' .. type(a) .. ' vs ' .. type(b) end
  if type(a) ~= 'table' then
    if a ~= b then return false, path .. ': ' .. tostring(a) .. ' vs ' .. tostring(b) end
    return true
  end
  for k, v in pairs(a) do
    local ok, why = deep_equal(v, b[k], path .. '.' .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. '.' .. tostring(k) .. ': missing on the left' end
  end
  return true
end

-- Exact equality: numbers, strings, nested tables, tensors (dtype, shape, values).
function T.eq(actual, expected, msg)
  local ok, why = deep_equal(actual, expected, 'value')
  if not ok then
    fail(string.format('%s%s\n  actual:   %s\n  expected: %s', msg and (msg .. ': ') or '', why,
                       describe(actual), describe(expected)))
  end
end

-- Closeness: |a - b| <= atol + rtol * |b| elementwise (numbers or tensors).
function T.close(actual, expected, opts, msg)
  opts = opts or {}
  local atol, rtol = opts.atol or 1e-6, opts.rtol or 1e-5
  if type(actual) == 'number' and type(expected) == 'number' then
    if math.abs(actual - expected) > atol + rtol * math.abs(expected) or actual ~= actual then
      fail(string.format('%snot close: %.10g vs %.10g (atol %g, rtol %g)', msg and (msg .. ': ') or '',
                         actual, expected, atol, rtol))
    end
    return
  end
  if not (torch.is_tensor(actual) and torch.is_tensor(expected)) then
    fail('T.close expects two numbers or two tensors')
  end
  if tostring(actual.shape) ~= tostring(expected.shape) then
    fail(string.format('%sshape %s vs %s', msg and (msg .. ': ') or '', tostring(actual.shape),
                       tostring(expected.shape)))
  end
  local a, b = actual:detach():cpu():double(), expected:detach():cpu():double()
  if a:numel() == 0 then return end
  local diff = (a - b):abs()
  local bound = (b:abs() * rtol) + atol
  local bad = diff:gt(bound):logical_or(diff:isnan())
  if bad:any():item() then
    fail(string.format('%snot close: max abs diff %.3e (atol %g, rtol %g) at %d element(s)\n  actual:   %s\n  expected: %s',
                       msg and (msg .. ': ') or '', diff:max():item(), atol, rtol, bad:sum():item(),
                       describe(actual), describe(expected)))
  end
end

function T.is_true(v, msg)
  if not v then fail(msg or 'expected a true value') end
end

-- A whole file's bytes, or nil when it cannot be opened (tests compare it).
T.read_file = sys.read_file

-- Writes (mode 'wb', default) or appends ('ab') text; raises when it cannot.
function T.write_file(path, text, mode)
  local f = assert(io.open(path, mode or 'wb'))
  assert(f:write(text))
  assert(f:close())
end

-- A stand-in for kinema.data.Loader (num_batches(), iter(epoch, start)) whose
-- batch i (0-based) of an epoch is make(epoch, i): a fixed function of its
-- position, as the real loader's batches are, so resumed runs see the same data.
function T.loader(num_batches, make)
  return {
    num_batches = function() return num_batches end,
    iter = function(_, epoch, start)
      local i = start or 0
      return function()
        if i >= num_batches then return nil end
        i = i + 1
        return make(epoch, i - 1)
      end
    end,
  }
end

-- Trains `steps` optimizer steps of loss_fn(step) (a scalar tensor) with opt and
-- returns the mean loss of the last `tail` steps: "does this toy task learn?".
function T.train_tail_loss(opt, steps, tail, loss_fn)
  local sum, count = 0, 0
  for step = 1, steps do
    local loss = loss_fn(step)
    loss:backward()
    opt:step()
    opt:zero_grad()
    if step > steps - tail then sum, count = sum + loss:item(), count + 1 end
  end
  return sum / count
end

-- A stand-in for kinema.dist.column_gatherer() for rank `rank` of ranks with
-- `rows` rows each: the objectives' inputs.gather returning the fixed tensor
-- full[key] (every rank's rows) for a key and offset rank * rows. A key not
-- in full is an error (the test forgot a column).
function T.gatherer(full, rank, rows)
  return function(key, _)
    assert(full[key] ~= nil, 'T.gatherer: no gathered tensor for ' .. tostring(key))
    return full[key], rank * rows
  end
end

-- fn must raise an error whose message contains `fragment` (plain text).
function T.raises(fn, fragment, msg)
  local ok, err = pcall(fn)
  if ok then fail((msg and (msg .. ': ') or '') .. 'expected an error containing "' .. tostring(fragment) .. '"') end
  err = tostring(err)
  if fragment and not err:find(fragment, 1, true) then
    fail(string.format('%serror message does not contain "%s":\n  %s', msg and (msg .. ': ') or '', fragment, err))
  end
  return err
end

-- Numerical gradient check in float64: fn(inputs...) -> tensor; compares the
-- autograd gradient of sum(fn * w) (w random, fixed) with central differences.
function T.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  local xs = {}
  for i, x in ipairs(inputs) do
    if torch.is_tensor(x) and x.dtype.is_floating_point then
      xs[i] = x:detach():double():clone()
      xs[i].requires_grad = true
    else
      xs[i] = x
    end
  end
  local out = fn(table.unpack(xs))
  local weight = torch.rand(out.shape, {dtype = torch.float64})
  local function objective(...)
    return (fn(...) * weight):sum()
  end
  local analytic_inputs = {}
  for i, x in ipairs(xs) do
    if torch.is_tensor(x) and x.requires_grad then analytic_inputs[#analytic_inputs + 1] = x end
  end
  local grads = torch.autograd.grad(objective(table.unpack(xs)), analytic_inputs, {allow_unused = true})
  local gi = 0
  for i, x in ipairs(xs) do
    if torch.is_tensor(x) and x.requires_grad then
      gi = gi + 1
      local analytic = grads[gi] or torch.zeros_like(x)
      local numeric = torch.zeros_like(x)
      local flat_x, flat_n = x:detach():view(-1), numeric:view(-1)
      torch.no_grad(function()
        for k = 0, flat_x:numel() - 1 do
          local orig = flat_x[k]:item()
          flat_x[k] = orig + eps
          local plus = objective(table.unpack(xs)):item()
          flat_x[k] = orig - eps
          local minus = objective(table.unpack(xs)):item()
          flat_x[k] = orig
          flat_n[k] = (plus - minus) / (2 * eps)
        end
      end)
      T.close(analytic, numeric, {atol = atol, rtol = rtol}, 'gradient of input ' .. i)
    end
  end
  return true
end

-- A fresh directory for a test file's scratch files. `kinema test` removes it,
-- with everything in it, once that file's tests have run, so a suite run
-- leaves nothing behind; KINEMA_KEEP_TEST_TMP=1 keeps it (and says where).
function T.tmpdir()
  assert(scratch, 'T.tmpdir called outside `kinema test`')
  -- os.tmpname creates a unique file (mkstemp); it stays until the directory
  -- next to it is removed, so no other process can take the name meanwhile.
  local reserved = os.tmpname()
  local dir = reserved .. '.d'
  sys.mkdir(dir)
  scratch[#scratch + 1] = {dir, reserved}
  return dir
end

-- A fresh path (nothing created there) in the file's scratch directory.
function T.tmpname(suffix)
  assert(scratch, 'T.tmpname called outside `kinema test`')
  scratch.dir = scratch.dir or T.tmpdir()
  scratch.count = (scratch.count or 0) + 1
  return string.format('%s/%d%s', scratch.dir, scratch.count, suffix or '')
end

local function remove_scratch(file)
  local keep = os.getenv('KINEMA_KEEP_TEST_TMP')
  for _, s in ipairs(scratch) do
    if keep and keep ~= '' and keep ~= '0' then
      print(string.format('kept %s (scratch of %s; KINEMA_KEEP_TEST_TMP)', s[1], file))
    else
      sys.remove_tree(s[1])
      os.remove(s[2])
    end
  end
  scratch = nil
end

local function list_files(path)
  if path:match('%.lua$') then return {path} end
  if not sys.is_dir(path) then return {} end
  return sys.find_files(path, '^test_.*%.lua$')
end

-- Runs every test of every file; prints one line per test and a summary.
-- Returns the number of failures (a file that fails to load counts as one).
function T.main(paths)
  local passed, failed = 0, 0
  local files = {}
  for _, p in ipairs(paths) do
    local found = list_files(p)
    if #found == 0 then
      io.stderr:write('kinema test: no test files at ' .. p .. '\n')
      failed = failed + 1
    end
    for _, f in ipairs(found) do files[#files + 1] = f end
  end
  for _, file in ipairs(files) do
    current, scratch = {}, {}
    local chunk, load_err = loadfile(file)
    local ok, err = chunk ~= nil, load_err
    if chunk then ok, err = xpcall(chunk, debug.traceback) end
    if not ok then
      print(string.format('FAIL %s (loading)\n%s', file, tostring(err)))
      failed = failed + 1
    end
    for _, t in ipairs(current) do
      local t0 = os.clock()
      local tok, terr = xpcall(t.fn, debug.traceback)
      if tok then
        passed = passed + 1
        print(string.format('ok   %s: %s (%.2fs)', file, t.name, os.clock() - t0))
      else
        failed = failed + 1
        print(string.format('FAIL %s: %s\n%s', file, t.name, tostring(terr)))
      end
      collectgarbage()
    end
    current = nil
    remove_scratch(file)
  end
  print(string.format('%d passed, %d failed', passed, failed))
  io.stdout:flush()
  return failed
end

return T
