-- kinema.sys: wall clock, terminal and memory queries for training loops and
-- benchmarks (LuaJIT FFI over libc; os.clock is CPU time, not wall time).
local ffi = require 'ffi'

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } kinema_sys_timespec;
int clock_gettime(int clock_id, kinema_sys_timespec *tp);
int isatty(int fd);
]]

local sys = {}
local CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID = 1, 2
local ts = ffi.new('kinema_sys_timespec')

local function read_clock(id)
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Seconds on a monotonic clock (differences only).
function sys.clock() return read_clock(CLOCK_MONOTONIC) end
-- CPU seconds of this process (all threads).
function sys.cpu_clock() return read_clock(CLOCK_PROCESS_CPUTIME_ID) end
-- Whether standard output (fd 1) or error (fd 2) is a terminal.
function sys.isatty(fd) return ffi.C.isatty(fd or 1) == 1 end

local function status_kb(field)
  local f = io.open('/proc/self/status')
  if not f then return nil end
  for line in f:lines() do
    local kb = line:match('^' .. field .. ':%s+(%d+)')
    if kb then f:close(); return tonumber(kb) end
  end
  f:close()
end

-- Peak and current resident memory of this process in MiB (nil where /proc is absent).
function sys.peak_rss_mb() local kb = status_kb('VmHWM'); return kb and kb / 1024 end
function sys.rss_mb() local kb = status_kb('VmRSS'); return kb and kb / 1024 end

-- "1h02m", "3m05s", "12s".
function sys.format_duration(seconds)
  if seconds ~= seconds or seconds == math.huge then return '?' end
  seconds = math.max(0, math.floor(seconds + 0.5))
  local h, m, s = math.floor(seconds / 3600), math.floor(seconds / 60) % 60, seconds % 60
  if h > 0 then return string.format('%dh%02dm', h, m) end
  if m > 0 then return string.format('%dm%02ds', m, s) end
  return string.format('%ds', s)
end

return sys
