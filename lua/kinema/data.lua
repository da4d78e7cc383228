-- kinema.data: datasets, the threaded loader and the synthetic benchmark.
-- Decoding, augmentation and batching run on C++ worker threads (core/data);
-- Lua receives ready batches:
--   local ds = data.read{format = 'webvid', path = 'train.csv', video_root = 'videos'}
--   local loader = data.Loader(ds, {batch_size = 8, num_frames = 8, size = 224, normalize = 'clip'})
--   for batch in loader:iter(epoch) do ... batch.video [B,T,3,H,W], batch.caption {strings} ... end
local native = require 'kinema._data'
local repl = require 'kinema.repl'

local data = {}

-- Reads an annotation file (webvid, caption_tsv, msrvtt, msrvtt_coco,
-- alpro_retrieval, alpro_qa, alpro_mc) into a dataset; returns it and the
-- number of skipped records (on_error = 'skip').
function data.read(opts) return native.read_annotations(opts) end

-- A dataset from Lua tables {id=, video_path=, captions={...}, tags={...}}.
data.dataset = native.dataset

data.synth = native.synth

local Loader = {}
Loader.__index = Loader

-- data.Loader(dataset, opts): see core/wrap_data.cpp for the options
-- (batch_size, num_workers, shuffle, seed, rank, world_size, drop_last,
-- num_frames, sampling, size, normalize, ...).
function data.Loader(dataset, opts)
  return setmetatable({native = native.Loader(dataset, opts or {}), epoch = -1}, Loader)
end

-- Iterates the batches of `epoch` (default: the next epoch), starting at
-- batch `start` (a checkpoint's data position).
function Loader:iter(epoch, start)
  epoch = epoch or (self.epoch + 1)
  self.epoch = epoch
  self.native:reset(epoch, start or 0)
  return function() return self.native:next() end
end

function Loader:num_batches() return self.native:num_batches() end
function Loader:progress() return self.native:progress() end
function Loader:skipped_errors() return self.native:skipped_errors() end
function Loader:close() self.native:close() end
function Loader:__len() return self.native:num_batches() end

repl.document('data.read', 'data.read{format=, path=, video_root=, region_root=, split=, json_split=, ans2label=, on_error="raise"|"skip"} -> dataset, skipped')
repl.document('data.Loader', [[data.Loader(dataset, {batch_size=8, num_workers=2, prefetch=4, shuffle=true, seed=0,
  rank=0, world_size=1, drop_last=false, num_frames=8, sampling='uniform'|'rand'|'headtail'|'fps'|'times',
  fps=1, size=224, short_side=0, random_crop=false, normalize='none'|'clip'|'imagenet', random_caption=true})
loader:iter(epoch, start_batch) -> iterator of batches {video, caption, id, indices, epoch, index}]])
repl.document('data.synth', 'data.synth{out_dir=, num_train=200, num_test=50, width=112, height=112, fps=10, min_duration_s=8, max_duration_s=16, gop_s=1, seed=0, ...} -> summary')

return data
