-- Lua driver of the VideoEncoder benchmark: the same forward + backward as
-- bench_video_encoder.cpp, driven from Lua through kinema.models. Prints one
-- JSON line like the C++ and Python drivers (run_bench_video_encoder.py --lua).
--   build/kinema run scripts/bench/models/bench_video_encoder.lua --config tiny --iters 5
--       [--device cuda] [--amp bf16] [--batch 2]
-- --amp bf16 runs forward and loss under autocast (backward outside it, as
-- PyTorch's recipe has it); on CUDA every timed iteration ends with a device
-- synchronisation and peak_gpu_mb is torch.cuda.max_memory_allocated over the
-- timed iterations (weights, gradients and activations; reset after warm-up).
local torch = require 'torch'
local kinema = require 'kinema'
local ffi = require 'ffi'

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } kinema_bench_timespec;
int clock_gettime(int clock_id, kinema_bench_timespec *tp);
]]
local CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID = 1, 2
local function clock_ms(id)
  local ts = ffi.new('kinema_bench_timespec')
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
end
local function now_ms() return clock_ms(CLOCK_MONOTONIC) end
local function cpu_ms() return clock_ms(CLOCK_PROCESS_CPUTIME_ID) end

local function peak_rss_mb()
  for line in io.lines('/proc/self/status') do
    local kb = line:match('^VmHWM:%s+(%d+)')
    if kb then return tonumber(kb) / 1024 end
  end
  return -1
end

local opts = {config = 'tiny', attention = 'frame', iters = 5, warmup = 1, threads = 0, device = 'cpu', amp = 'none',
              batch = 2}
local argv = arg or {}
local i = 1
while i <= #argv do
  local key = argv[i]:match('^%-%-(.+)$')
  assert(key and opts[key] ~= nil, 'unknown argument ' .. tostring(argv[i]))
  opts[key] = type(opts[key]) == 'number' and tonumber(argv[i + 1]) or argv[i + 1]
  i = i + 2
end
if opts.threads > 0 and torch.set_num_threads then torch.set_num_threads(opts.threads) end

local cfg = {image_size = 224, num_frames = 8, attention = opts.attention}
if opts.config == 'tiny' then
  cfg.image_size, cfg.num_frames, cfg.depth, cfg.embed_dim, cfg.num_heads = 64, 4, 2, 64, 4
else
  assert(opts.config == 'base', 'unknown --config ' .. opts.config)
end
assert(opts.amp == 'none' or opts.amp == 'bf16', "--amp must be 'none' or 'bf16', got " .. opts.amp)
local device_type = opts.device:match('^(%a+)')
assert(device_type == 'cpu' or device_type == 'cuda', "--device must be 'cpu', 'cuda' or 'cuda:N', got " .. opts.device)
local cuda = device_type == 'cuda'
if cuda then assert(torch.cuda.is_available(), '--device ' .. opts.device .. ' but no CUDA device is available') end
local function sync() if cuda then torch.synchronize() end end
torch.manual_seed(0)
local encoder = kinema.models.VideoEncoder(cfg)
encoder:train()
if opts.device ~= 'cpu' then encoder:to(opts.device) end
local video = torch.randn({opts.batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size}):to(opts.device)
local function loss() return encoder(video).tokens:pow(2):mean() end
local autocast = opts.amp == 'bf16' and torch.autocast{device_type = device_type, dtype = torch.bfloat16}

local times, cpu_times = {}, {}
for it = 1, opts.warmup + opts.iters do
  if cuda and it == opts.warmup + 1 then torch.cuda.reset_peak_memory_stats() end
  sync()
  local start, cpu_start = now_ms(), cpu_ms()
  encoder:zero_grad()
  local l = autocast and autocast(loss) or loss()
  l:backward()
  sync()
  local elapsed = now_ms() - start
  if it > opts.warmup then
    times[#times + 1] = elapsed
    cpu_times[#cpu_times + 1] = cpu_ms() - cpu_start
  end
end
local peak_gpu = cuda and string.format('%.1f', torch.cuda.max_memory_allocated() / 2 ^ 20) or 'null'
local sorted = {}
for k, v in ipairs(times) do sorted[k] = v end
table.sort(sorted)
local function join(list)
  local parts = {}
  for k, v in ipairs(list) do parts[k] = string.format('%.2f', v) end
  return table.concat(parts, ', ')
end
print(string.format('{"impl": "lua", "config": "%s", "device": "%s", "amp": "%s", "batch": %d, "times_ms": [%s], '
                    .. '"cpu_ms": [%s], "median_ms": %.2f, "peak_rss_mb": %.1f, "peak_gpu_mb": %s}', opts.config,
                    opts.device, opts.amp, opts.batch, join(times), join(cpu_times), sorted[math.floor(#sorted / 2) + 1],
                    peak_rss_mb(), peak_gpu))
