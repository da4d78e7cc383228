-- The data layer from Lua: the synthetic benchmark, the WebVid reader, the
-- threaded loader (shapes, determinism, sharding, normalisation, corrupt files).
local T = require 'kinema.test'
local data = require('kinema').data

local dir = T.tmpdir() .. '/synth'
local summary = data.synth{out_dir = dir, num_train = 6, num_test = 2, width = 64, height = 64, fps = 8,
                           min_duration_s = 2, max_duration_s = 3, region_frames = 2, region_dim = 16,
                           seed = 3, threads = 2}

local function read_train()
  return data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos'}
end

T.test('synth writes a WebVid split that the reader loads', function()
  T.eq(summary.videos, 8)
  local ds, skipped = read_train()
  T.eq(#ds, 6)
  T.eq(skipped, 0)
  local s = ds:get(0)
  T.is_true(s.video_path:find('%.mp4$') ~= nil, s.video_path)
  T.is_true(#s.captions[1] > 0)
  T.raises(function() ds:get(6) end, 'out of range')
end)

T.test('loader batches: shapes, strings, progress', function()
  local loader = data.Loader(read_train(), {batch_size = 4, num_workers = 2, num_frames = 4, size = 32, seed = 1})
  T.eq(loader:num_batches(), 2)
  local sizes = {}
  for batch in loader:iter(0) do
    sizes[#sizes + 1] = batch.video:size(0)
    T.eq(batch.video.dtype, torch.uint8)
    T.eq(batch.video:size(), {batch.video:size(0), 4, 3, 32, 32})
    T.eq(#batch.caption, batch.video:size(0))
  end
  T.eq(sizes, {4, 2})
  T.eq(loader:progress().samples_done, 6)
  loader:close()
end)

T.test('same seed and epoch give the same batches; another epoch reorders', function()
  local function ids(seed, epoch)
    local loader = data.Loader(read_train(), {batch_size = 3, num_frames = 2, size = 32, seed = seed})
    local out = {}
    for batch in loader:iter(epoch) do
      for _, i in ipairs(batch.indices) do out[#out + 1] = i end
    end
    return out
  end
  T.eq(ids(7, 0), ids(7, 0))
  local a, b = table.concat(ids(7, 0), ','), table.concat(ids(7, 1), ',')
  T.is_true(a ~= b, 'epoch 1 has the order of epoch 0: ' .. a)
end)

T.test('ranks get disjoint shards', function()
  local seen = {}
  for rank = 0, 1 do
    local loader = data.Loader(read_train(), {batch_size = 3, num_frames = 2, size = 32, rank = rank,
                                              world_size = 2, seed = 5})
    for batch in loader:iter(0) do
      for _, i in ipairs(batch.indices) do
        T.is_true(not seen[i], 'index ' .. i .. ' on two ranks')
        seen[i] = true
      end
    end
  end
end)

T.test('clip normalisation happens in the batch', function()
  local loader = data.Loader(read_train(), {batch_size = 2, num_frames = 2, size = 32, normalize = 'clip'})
  local batch = loader:iter(0)()
  T.eq(batch.video.dtype, torch.float32)
  T.is_true(batch.video:min():item() < 0, 'normalised values should go below 0')
end)

T.test('a corrupt video is skipped, counted and replaced', function()
  local bad = dir .. '/corrupt.mp4'
  local f = assert(io.open(bad, 'wb'))
  f:write('this is not a video')
  f:close()
  local src = read_train():get(0)
  local ds = data.dataset{{id = 'bad', video_path = bad, captions = {'broken'}},
                          {id = 'good', video_path = src.video_path, captions = src.captions}}
  local loader = data.Loader(ds, {batch_size = 2, num_frames = 2, size = 32, shuffle = false})
  local batch = loader:iter(0)()
  T.eq(batch.id, {'good', 'good'})
  T.eq(loader:progress().skipped, 1)
  T.is_true(loader:skipped_errors()[1]:find('corrupt.mp4', 1, true) ~= nil, loader:skipped_errors()[1])
end)

T.test('bad options are errors naming them', function()
  T.raises(function() data.Loader(read_train(), {sampling = 'sideways'}) end, 'sideways')
  T.raises(function() data.read{format = 'nosuch', path = 'x'} end, 'nosuch')
  T.raises(function() data.read{format = 'webvid', path = dir .. '/missing.csv'} end, 'missing.csv')
end)
