-- kinema.data: datasets, the threaded loader and the synthetic benchmark.
-- Decoding, augmentation and batching run on C++ worker threads (core/data);
-- Lua receives ready batches:
--   local ds = data.read{format = 'webvid', path = 'train.csv', video_root = 'videos'}
--   local loader = data.Loader(ds, {batch_size = 8, num_frames = 8, size = 224, normalize = 'clip'})
--   for batch in loader:iter(epoch) do ... batch.video [B,T,3,H,W], batch.caption {strings} ... end
local native = require 'kinema._data'
local help = require 'kinema.help'

local data = {}

-- Reads an annotation file (webvid, caption_tsv, msrvtt, msrvtt_coco,
-- alpro_retrieval, alpro_qa, alpro_mc) into a dataset; returns it and the
-- number of skipped records (on_error = 'skip').
function data.read(opts) return native.read_annotations(opts) end

-- A dataset from Lua tables {id=, video_path=, captions={...}, tags={...}}.
data.dataset = native.dataset

data.synth = native.synth

-- The header of a video file: {width, height, fps, num_frames, duration_s, codec};
-- raises naming the file when it is missing or unreadable.
data.video_info = native.video_info

-- The detection class vocabulary size of a dataset read with detections_root
-- (batch-independent: classes [B,T,K] < data.num_classes(ds)).
data.num_classes = native.num_classes

-- Text tools (core/wrap_data_text.cpp): tokenizers shared with the loader's
-- workers, the word-level vocabulary builder, the caption tagger, S-ViLM prompts.
local text = require 'kinema._text'
data.tokenizer = text.tokenizer
data.build_vocab = text.build_vocab
data.parts = text.parts
data.prompts = text.prompts

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

help.document('data.read', 'data.read{format=, path=, video_root=, region_root=, detections_root=, meta=, split=, json_split=, ans2label=, on_error="raise"|"skip", allow_outside_root=false} -> dataset, skipped; ds:size(), ds:get(i), ds:column("id"|"video_path"|"boxes_path"|"region_path"|"captions")')
help.document('data.video_info', 'data.video_info(path) -> {width=, height=, fps=, num_frames=, duration_s=, codec=}')
help.document('data.Loader', [[data.Loader(dataset, {batch_size=8, num_workers=2, prefetch=4, prefetch_next_epoch=false, shuffle=true, seed=0,
  rank=0, world_size=1, drop_last=false, on_error='replace'|'raise'|'drop', num_frames=8, sampling='uniform'|'rand'|'headtail'|'fps'|'times',
  fps=1, size=224, short_side=0, random_crop=false, normalize='none'|'clip'|'imagenet', random_caption=true})
loader:iter(epoch, start_batch) -> iterator of batches {video, caption, id, indices, epoch, index}
prefetch_next_epoch: the workers go on into the next epoch's first batches, which loader:iter(epoch + 1)
finds ready (a training loop); off, they stop at the epoch's end (a loader read once, as in evaluation)
on_error: an unreadable sample is replaced by the next one ('replace'), stops the loader naming it
('raise'), or is left out of its batch and listed in batch.dropped_ids / batch.dropped_errors ('drop')]])
help.document('data.Loader.recipe', [[Recipe options of data.Loader (fields per batch, B = batch, T = num_frames, L = max_len):
  text = {tokenizer = tok, max_len = 32, mlm = true|{probability=0.15, mask_fraction=0.8, random_fraction=0.1},
          plm = true, parts = true, max_nouns = 8, max_verbs = 4, phrases = true|{max = 4, max_len = 16}}
    -> ids [B,L] int64, mask [B,L] bool; mlm_ids, mlm_labels [B,L]; plm_split [B], plm_targets [B,L];
       noun_positions [B,max_nouns], verb_positions [B,max_verbs], verb_ids [B,max_verbs] (-1 = none);
       phrase_ids [B,P,Lp], phrase_mask [B,P,Lp] bool, phrase_valid [B,P] bool
  detections = {k = 10, unique_labels = false}  (dataset read with detections_root)
    -> boxes [B,T,K,4] float32 in [0,1] of the output crop, classes [B,T,K] int64 (-1 none, < data.num_classes(ds)),
       scores [B,T,K] float32
  regions = {k = 10, frames = 8, dim = 0}  (dataset read with region_root)
    -> features [B,N,D], locations [B,N,7], frame_index [B,N] int64, region_mask [B,N] bool (N = frames*k)
  anchor = {patch_size = 16, max_objects = 15, drop_ratio = 0.2, shift_prob = 0.5}
    -> anchor [B,3,H,W], patch_mask [B,1,(H/p)*(W/p)] bool, tags {strings}, tag_ids/tag_mask [B,L] with text
  cut_paste = {clip_len = 2} -> video mixed, clip_mask [B,T/clip_len] bool, Wv [B,B], Wc [B,B] float32
  video = false -> no decoding (regions / detections only)]])
help.document('data.tokenizer', "data.tokenizer{kind='wordpiece'|'clip_bpe'|'sentencepiece', path=} -> tok: tok:encode(text, {max_len=}), tok:encode_batch(texts, max_len) -> ids, mask; tok:decode(ids), tok:tokenize(text), tok:vocab_size(), tok:special_ids(), tok:kind()")
help.document('data.build_vocab', "data.build_vocab{texts={...} | csv=path, column=, path='vocab.txt', min_count=1} -> number of tokens written (or the token list without path)")
help.document('data.parts', 'data.parts(caption) -> {nouns=, verbs=, noun_phrases=}')
help.document('data.prompts', 'data.prompts(noun_phrase) -> the 12 filled S-ViLM prompts')
help.document('data.synth', 'data.synth{out_dir=, num_train=200, num_test=250, negatives_per_kind=4, width=112, height=112, fps=10, min_duration_s=8, max_duration_s=16, gop_s=1, seed=0, ...} -> summary')
-- The options data.synth and `kinema synth` use when none is given.
data.synth_defaults = native.synth_defaults

return data
