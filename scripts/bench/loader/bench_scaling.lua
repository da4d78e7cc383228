-- Loader scaling: clips/s of kinema's data.Loader against its number of worker
-- threads, on 224p and 480p sources, before and after `kinema preprocess`
-- (shorter side = the clip size, keyframes matched to the sampling). One
-- JSON line per configuration, then a Markdown table.
--
--   build/kinema run scripts/bench/loader/bench_scaling.lua [--work runs/bench_loader_scaling] \
--       [--workers 1,2] [--frames 8] [--size 224] [--videos 8] [--epochs 3] [--sampling rand]
--
-- Sources: the synthetic benchmark's generator (libx264 veryfast, keyframe
-- every 1 s), 10 s at 25 fps, 398x224 and 854x480, made once under --work
-- (delete it after changing --videos). The preprocessed copies are made once
-- by the kinema binary running this script; the time that took is printed.
-- Clips/s: train split, batch 1, `--epochs` passes (the first pass is warm-up
-- and not counted), frames resized and centre-cropped to size x size uint8.
local kinema = require 'kinema'
local data, sys, json = kinema.data, kinema.sys, require 'kinema.json'

local opts = {work = 'runs/bench_loader_scaling', workers = '1,2', frames = 8, size = 224, videos = 8, epochs = 3,
              sampling = 'rand'}
require('kinema.cli').parse_flags('bench_scaling.lua', arg or {}, opts)
if opts.epochs < 2 then error('bench_scaling.lua: --epochs must be >= 2 (the first is warm-up)', 0) end
local worker_counts = {}
for w in opts.workers:gmatch('%d+') do worker_counts[#worker_counts + 1] = tonumber(w) end

sys.mkdir(opts.work)
local sources = {{name = '224p', width = 398, height = 224}, {name = '480p', width = 854, height = 480}}
local trees = {}
for _, s in ipairs(sources) do
  local src = string.format('%s/%s_%dv', opts.work, s.name, opts.videos)
  if not sys.is_file(src .. '/synth.json') then
    io.stderr:write('bench_scaling: making ' .. src .. '\n')
    data.synth{out_dir = src, num_train = opts.videos, num_test = 1, width = s.width, height = s.height, fps = 25,
               min_duration_s = 10, max_duration_s = 10, gop_s = 1, region_frames = 1, region_dim = 4, threads = 2}
  end
  local pre = string.format('%s_pre%d_t%d', src, opts.size, opts.frames)
  local pre_s = nil
  if not sys.is_file(pre .. '/train.csv') then
    io.stderr:write('bench_scaling: kinema preprocess ' .. src .. ' -> ' .. pre .. '\n')
    local t0 = sys.clock()
    local status = sys.spawn({kinema.executable(), 'preprocess', '--in', src, '--out', pre, '--short-side',
                              tostring(opts.size), '--frames', tostring(opts.frames), '--no-progress'})
    if status ~= 0 then error('bench_scaling.lua: kinema preprocess failed with status ' .. status, 0) end
    pre_s = sys.clock() - t0
  end
  trees[#trees + 1] = {source = s.name, preprocessed = false, root = src}
  trees[#trees + 1] = {source = s.name, preprocessed = true, root = pre, preprocess_s = pre_s}
end

local rows = {}
for _, tree in ipairs(trees) do
  local ds = data.read{format = 'webvid', path = tree.root .. '/train.csv', video_root = tree.root .. '/videos'}
  for _, workers in ipairs(worker_counts) do
    local loader = data.Loader(ds, {batch_size = 1, num_workers = workers, num_frames = opts.frames,
                                    size = opts.size, shuffle = true, seed = 1, sampling = opts.sampling})
    local clips, t0, c0 = 0, 0, 0
    for epoch = 0, opts.epochs - 1 do
      if epoch == 1 then t0, c0 = sys.clock(), sys.cpu_clock() end
      for _ in loader:iter(epoch) do
        if epoch >= 1 then clips = clips + 1 end
      end
    end
    local seconds, cpu = sys.clock() - t0, sys.cpu_clock() - c0
    loader:close()
    local row = {source = tree.source, preprocessed = tree.preprocessed, workers = workers, frames = opts.frames,
                 size = opts.size, sampling = opts.sampling, clips = clips,
                 clips_per_s = math.floor(100 * clips / seconds + 0.5) / 100,
                 cpu_ms_per_clip = math.floor(10000 * cpu / clips + 0.5) / 10,
                 preprocess_s = tree.preprocess_s}
    print(json.encode(row))
    rows[#rows + 1] = row
  end
end

print(string.format('\n| source | preprocessed | workers | clips/s | CPU ms / clip |'))
print('|---|---|---:|---:|---:|')
for _, r in ipairs(rows) do
  print(string.format('| %s | %s | %d | %.2f | %.1f |', r.source, r.preprocessed and 'yes' or 'no', r.workers,
                      r.clips_per_s, r.cpu_ms_per_clip))
end
