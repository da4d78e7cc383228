-- The Lua GC sees tensor memory: a loop allocating 4 MB per iteration for
-- 20,000 iterations keeps the resident set small without collectgarbage().
local T = require 'kinema.test'

local function rss_mb()
  for line in io.lines('/proc/self/status') do
    local kb = line:match('^VmRSS:%s+(%d+)')
    if kb then return tonumber(kb) / 1024 end
  end
end

local function hwm_mb()
  for line in io.lines('/proc/self/status') do
    local kb = line:match('^VmHWM:%s+(%d+)')
    if kb then return tonumber(kb) / 1024 end
  end
end

T.test('20,000 x 4 MB tensors stay under 1 GB peak RSS', function()
  local start = rss_mb()
  for _ = 1, 20000 do
    local t = torch.empty({1024, 1024})  -- 4 MB of float32
    t:fill_(1)
  end
  local peak = hwm_mb()
  T.is_true(peak < 1024, string.format('peak RSS %.0f MB (start %.0f MB)', peak, start))
  print(string.format('    peak RSS %.0f MB over 20,000 x 4 MB allocations (start %.0f MB)', peak, start))
end)
