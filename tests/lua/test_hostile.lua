-- Hostile use of the Lua API: each case must end in a clear Lua error, quickly,
-- never a crash (which would end this test binary), a hang or a silent result.
-- (The file corpus is tests/fixtures/hostile, run by test_hostile_corpus.cpp.)
local T = require 'kinema.test'
local kinema = require 'kinema'
local nn, ops = kinema.nn, kinema.ops

local function quickly(fn, fragment, seconds)
  local start = os.clock()
  T.raises(fn, fragment)
  T.is_true(os.clock() - start < (seconds or 10), 'took ' .. (os.clock() - start) .. ' s')
end

T.test('a table containing itself is refused by torch.tensor', function()
  local t = {}
  t[1] = t
  quickly(function() return torch.tensor(t) end, 'nested deeper than 64 levels')
  -- 64 levels are still a tensor's limit, not an error of their own.
  local deep = 1
  for _ = 1, 5 do deep = {deep} end
  T.eq(torch.tensor(deep):dim(), 5)
end)

T.test('unbounded recursion through C++ entry points fails fast with one traceback', function()
  local function through_no_grad() return torch.no_grad(through_no_grad) end
  local ok, err = pcall(through_no_grad)
  T.is_true(not ok)
  T.is_true(err:find('nested more than 200 levels', 1, true) ~= nil, err:sub(1, 200))
  local _, tracebacks = err:gsub('stack traceback:', '')
  T.is_true(tracebacks <= 1, tracebacks .. ' tracebacks in one message')
  quickly(function() return through_no_grad() end, 'nested more than 200 levels')

  local Recursive
  Recursive = torch.autograd.Function{
    forward = function(ctx, x) return Recursive(x) end,
    backward = function(ctx, g) return g end,
  }
  quickly(function() return Recursive(torch.ones(1, {requires_grad = true})) end, 'nested more than 200 levels')

  local Loop = nn.Module:extend('Loop')
  function Loop:forward(x) return self(x) * 1 end  -- not a tail call (that would loop forever, as in Lua)
  quickly(function() return Loop()(torch.ones(1)) end, 'stack overflow')
end)

T.test('a custom Function ctx kept from a failed forward or backward is dead', function()
  local kept
  local FailsForward = torch.autograd.Function{
    forward = function(ctx, x) kept = ctx; error('forward failed') end,
    backward = function(ctx, g) return g end,
  }
  T.raises(function() return FailsForward(torch.ones(1, {requires_grad = true})) end, 'forward failed')
  collectgarbage()
  T.raises(function() kept:save_for_backward(torch.ones(1)) end, 'only valid inside forward/backward')
  T.raises(function() return kept:saved_tensors() end, 'only valid inside forward/backward')

  local kept_backward
  local FailsBackward = torch.autograd.Function{
    forward = function(ctx, x) return x * 2 end,
    backward = function(ctx, g) kept_backward = ctx; error('backward failed') end,
  }
  local x = torch.ones(1, {requires_grad = true})
  T.raises(function() FailsBackward(x):sum():backward() end, 'backward failed')
  x = nil
  collectgarbage()
  T.raises(function() kept_backward:save_for_backward(torch.ones(1)) end, 'only valid inside forward/backward')
end)

T.test('roi_align validates maps, boxes and sizes before touching memory', function()
  local boxes = torch.tensor({{0, 0, 0, 1, 1}})
  quickly(function() return ops.roi_align(torch.randn(1, 2, 0, 0), boxes, 2, 2) end, 'empty feature map')
  for _, bad in ipairs({0 / 0, 1 / 0, -1 / 0}) do
    local b = torch.tensor({{0, 0, bad, 1, 1}})
    quickly(function() return ops.roi_align(torch.randn(1, 2, 4, 4), b, 2, 2) end, 'non-finite coordinate')
    local x = torch.randn(1, 2, 4, 4, {requires_grad = true})
    quickly(function() return ops.roi_align(x, b, 2, 2):sum():backward() end, 'non-finite coordinate')
  end
  quickly(function() return ops.roi_align(torch.randn(1, 2, 4, 4), torch.tensor({{0, 0, 0, 1e30, 1e30}}), 2, 2) end,
          'reaches coordinate')
  quickly(function() return ops.roi_align(torch.randn(1, 2, 4, 4), boxes, 2, 2, {sampling_ratio = 1000000}) end,
          "'sampling_ratio' must be at most 64")
  quickly(function() return ops.roi_align(torch.randn(1, 2, 4, 4), boxes, 1000000, 1000000) end,
          "'pooled_height' and 'pooled_width' must be in [1, 1024]")
  -- A box at the edge of what is accepted still pools (adaptive grid, bounded points).
  local edge = torch.tensor({{0, -20, -20, 36, 36}})
  T.eq(ops.roi_align(torch.ones(1, 1, 4, 4), edge, 2, 2):size(), {1, 1, 2, 2})
end)

T.test('TorchScript archives load without running their code unless asked', function()
  local FIX = 'tests/fixtures/'
  local safe = torch.load_torchscript(FIX .. 'io_script_nested.pt')
  local ran = torch.load_torchscript(FIX .. 'io_script_nested.pt', {run_code = true})
  for name, t in pairs(ran) do T.eq(safe[name], t, name) end
  for name in pairs(safe) do T.is_true(ran[name] ~= nil, name) end
  T.eq(torch.load(FIX .. 'io_script_nested.pt')['blocks.1.scale'], torch.ones(2) * 4)
  T.raises(function() return torch.load_torchscript(FIX .. 'hostile/ts_setstate.pt') end, '__setstate__')
  T.raises(function() return torch.load(FIX .. 'hostile/pt_os_system.pt') end, "'posix.system'")
end)
