-- torch.cuda.memory_allocated / max_memory_allocated / reset_peak_memory_stats
-- against tensors of known size (the GPU benchmarks report peaks with them).
-- Runs only with a CUDA device (ctest label 'cuda'); otherwise one "skipped"
-- line (tests/lua/test_tensor.lua checks the errors without a device).
local T = require 'kinema.test'

if not torch.cuda.is_available() then
  print('skipped: no CUDA device')
  return
end

local MiB = 2 ^ 20

T.test('memory_allocated counts a tensor of known size and its release', function()
  torch.synchronize()
  local before = torch.cuda.memory_allocated()
  local t = torch.zeros({MiB}, {dtype = torch.float32}):to('cuda')  -- 4 MiB, a multiple of the 512-byte rounding
  T.eq(torch.cuda.memory_allocated() - before, 4 * MiB)
  T.eq(torch.cuda.memory_allocated(0) - before, 4 * MiB, 'explicit device index')
  t = nil
  collectgarbage()
  collectgarbage()
  T.eq(torch.cuda.memory_allocated(), before, 'released after the tensor is collected')
end)

T.test('max_memory_allocated holds the peak until reset_peak_memory_stats', function()
  torch.cuda.reset_peak_memory_stats()
  local base = torch.cuda.memory_allocated()
  T.eq(torch.cuda.max_memory_allocated(), base, 'peak = current right after a reset')
  local t = torch.zeros({2 * MiB}, {dtype = torch.float32}):to('cuda')  -- 8 MiB
  t = nil
  collectgarbage()
  collectgarbage()
  T.eq(torch.cuda.memory_allocated(), base)
  T.eq(torch.cuda.max_memory_allocated() - base, 8 * MiB, 'the freed tensor still sets the peak')
  torch.cuda.reset_peak_memory_stats(0)
  T.eq(torch.cuda.max_memory_allocated(), base, 'the reset drops it')
  T.raises(function() torch.cuda.memory_allocated(torch.cuda.device_count()) end, 'out of range')
end)
