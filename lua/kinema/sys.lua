-- kinema.sys: wall clock, terminal and memory queries for training loops and
-- benchmarks (LuaJIT FFI over libc; os.clock is CPU time, not wall time), and
-- the file-system and process operations of the Lua layer (C++, kinema._sys).
-- Nothing in kinema goes through a shell: io.popen and os.execute would hand
-- a path such as 'runs/x$(cmd)' to /bin/sh. Use these instead:
--   sys.mkdir(path)            mkdir -p
--   sys.list_dir(path)         sorted entry names
--   sys.exists / is_dir / is_file / is_symlink(path), sys.file_size(path)
--   sys.remove(path)           a file or empty directory; false when absent
--   sys.remove_tree(path)      rm -r, never following symlinks
--   sys.rename(from, to), sys.truncate(path, size), sys.fsync(path)
--   sys.spawn(argv[, {stdin=, stdout=, stderr=}]) -> exit status (argv, no shell)
--   sys.find_files(dir, lua_pattern) -> sorted paths of matching files below dir
--   sys.read_file(path)        the file's bytes, or nil when it cannot be opened
local ffi = require 'ffi'
local native = require 'kinema._sys'

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } kinema_sys_timespec;
int clock_gettime(int clock_id, kinema_sys_timespec *tp);
int isatty(int fd);
]]

local sys = {}
for name, fn in pairs(native) do sys[name] = fn end

function sys.read_file(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

-- Paths of the regular files below dir (recursively, symlinked directories not
-- followed) whose name matches the Lua pattern, sorted.
function sys.find_files(dir, pattern)
  local out = {}
  local function walk(d)
    for _, name in ipairs(native.list_dir(d)) do
      local path = d .. '/' .. name
      if native.is_dir(path) then
        if not native.is_symlink(path) then walk(path) end
      elseif name:match(pattern) and native.is_file(path) then
        out[#out + 1] = path
      end
    end
  end
  walk(dir)
  table.sort(out)
  return out
end
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
