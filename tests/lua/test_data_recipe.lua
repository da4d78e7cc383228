-- data.Loader's recipe options on a tiny synthetic benchmark: every field's
-- shape, dtype and range for text / detections / regions / anchor / cut_paste,
-- determinism, option errors, and the Lua tokenizer / vocab / parts / prompts.
local T = require 'kinema.test'
local data = require('kinema').data

local dir = T.tmpdir() .. '/synth'
local summary = data.synth{out_dir = dir, num_train = 6, num_test = 2, width = 64, height = 64, fps = 8,
                           min_duration_s = 2, max_duration_s = 4, region_frames = 4, region_dim = 32,
                           seed = 11, threads = 2}

local function read_train()
  return data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos',
                   region_root = dir .. '/regions', detections_root = dir .. '/detections',
                   meta = dir .. '/train_meta.jsonl'}
end
local ds = read_train()
local tok = data.tokenizer{kind = 'wordpiece', path = dir .. '/vocab.txt'}
local B, TF, L = 3, 4, 24

local function all_batches(opts)
  local loader = data.Loader(ds, opts)
  local out = {}
  for batch in loader:iter(0) do out[#out + 1] = batch end
  loader:close()
  return out
end

local function base(extra)
  local o = {batch_size = B, num_workers = 2, num_frames = TF, size = 32, seed = 4}
  for k, v in pairs(extra) do o[k] = v end
  return o
end

local function in_range(t, lo, hi) return t:ge(lo):all():item() and t:le(hi):all():item() end

T.test('synth writes vocab.txt; the sidecars attach parts, tags and boxes', function()
  local has_vocab = false
  for _, f in ipairs(summary.files) do has_vocab = has_vocab or f:find('vocab%.txt$') ~= nil end
  T.is_true(has_vocab, 'vocab.txt not among the files')
  T.eq(#ds, 6)
  local s = ds:get(0)
  T.is_true(#s.parts[1].nouns >= 1 and #s.parts[1].verbs >= 1 and #s.parts[1].noun_phrases >= 1)
  T.is_true(#s.tags >= 1)
  T.is_true(s.num_box_frames > 0, 'no detection frames attached')
  T.is_true(s.region_path:find('regions/train/') ~= nil, s.region_path)
  local nc = data.num_classes(ds)
  T.is_true(nc >= 1 and nc < 100, 'num_classes ' .. nc)
  -- Without detections_root there are none.
  local plain = data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos'}
  T.eq(data.num_classes(plain), 0)
end)

T.test('tokenizer from Lua: encode, encode_batch, decode, specials; vocab covers every caption', function()
  T.eq(tok:kind(), 'wordpiece')
  local sp = tok:special_ids()
  T.eq({sp.pad, sp.unk, sp.cls, sp.sep, sp.mask}, {0, 1, 2, 3, 4})
  for i = 0, #ds - 1 do
    local caption = ds:get(i).captions[1]
    local ids = tok:encode(caption)
    T.eq(ids[1], sp.cls)
    T.eq(ids[#ids], sp.sep)
    for _, id in ipairs(ids) do T.is_true(id ~= sp.unk, 'unknown word in ' .. caption) end
    -- Word-level vocabulary: decoding gives the caption back, up to case and spacing.
    T.eq((tok:decode(ids):gsub('%s', '')), (caption:lower():gsub('%s', '')))
    T.eq(#tok:encode(caption, {max_len = 4}), 4)
  end
  local ids, mask = tok:encode_batch({'a red circle', 'a'}, 6)
  T.eq(ids.dtype, torch.int64)
  T.eq(mask.dtype, torch.bool)
  T.eq(ids:size(), {2, 6})
  T.eq(mask:sum():item(), 5 + 3)
  T.eq(tok:decode(ids[0]), 'a red circle')
  T.raises(function() data.tokenizer{kind = 'nosuch', path = dir .. '/vocab.txt'} end, 'nosuch')
  T.raises(function() data.tokenizer{kind = 'wordpiece'} end, "'path'")
end)

T.test('build_vocab, parts and prompts from Lua', function()
  local vocab = data.build_vocab{texts = {'A red circle jumps.', 'a blue circle'}}
  T.eq(vocab, {'[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'circle', '.', 'blue', 'jumps', 'red'})
  local path = dir .. '/vocab_csv.txt'
  local n = data.build_vocab{csv = dir .. '/train.csv', path = path}
  local lines = 0
  for _ in io.lines(path) do lines = lines + 1 end
  T.eq(lines, n)
  local p = data.parts('a red circle jumps over the blue square')
  T.eq(p.nouns, {'circle', 'square'})
  T.eq(p.verbs, {'jumps'})
  T.eq(p.noun_phrases, {'a red circle', 'the blue square'})
  local prompts = data.prompts('a red circle')
  T.eq(#prompts, 12)
  T.eq(prompts[1], 'A footage of a red circle.')
  T.raises(function() data.build_vocab{} end, "'texts' or 'csv'")
end)

T.test('text fields: ids, MLM, PLM, noun/verb positions, phrase prompts', function()
  local batches = all_batches(base{text = {tokenizer = tok, max_len = L, mlm = true, plm = true, parts = true,
                                           max_nouns = 4, max_verbs = 3, phrases = {max = 3, max_len = 12}}})
  T.eq(#batches, 2)
  local V = tok:vocab_size()
  for _, b in ipairs(batches) do
    local n = b.ids:size(0)
    T.eq(b.ids:size(), {n, L})
    T.eq(b.ids.dtype, torch.int64)
    T.eq(b.mask.dtype, torch.bool)
    T.is_true(in_range(b.ids, 0, V - 1))
    T.eq(#b.caption, n)
    -- MLM: labels are the original ids where chosen, -100 elsewhere; elsewhere ids unchanged.
    T.eq(b.mlm_ids:size(), {n, L})
    local chosen = b.mlm_labels:ne(-100)
    T.eq(b.mlm_labels[chosen], b.ids[chosen])
    T.eq(b.mlm_ids[chosen:logical_not()], b.ids[chosen:logical_not()])
    T.is_true(b.mask[chosen]:all():item())
    -- PLM: split in [1, len-1]; targets the next token on the suffix.
    local len = b.mask:sum{dim = {1}}
    T.eq(b.plm_split.dtype, torch.int64)
    T.eq(b.plm_split:size(), {n})
    T.is_true(b.plm_split:ge(1):all():item() and b.plm_split:le(len - 1):all():item())
    T.eq(b.plm_targets:size(), {n, L})
    for i = 0, n - 1 do
      local p, l = b.plm_split[i]:item(), len[i]:item()
      for j = 0, L - 1 do
        local expected = (j + 1 >= p and j + 1 < l) and b.ids[i][j + 1]:item() or -100
        T.eq(b.plm_targets[i][j]:item(), expected)
      end
      -- Parts: the first noun's position holds that noun's token.
      local parts = ds:get(b.indices[i + 1]).parts[1]
      local pos = b.noun_positions[i][0]:item()
      T.eq(b.ids[i][pos]:item(), tok:encode(parts.nouns[1])[2])
      local vpos = b.verb_positions[i][0]:item()
      T.eq(b.ids[i][vpos]:item(), tok:encode(parts.verbs[1])[2])
    end
    T.eq(b.noun_positions:size(), {n, 4})
    T.eq(b.verb_positions:size(), {n, 3})
    T.eq(b.verb_ids:size(), {n, 3})
    T.is_true(in_range(b.noun_positions, -1, L - 1))
    T.eq(b.verb_ids:eq(-1), b.verb_positions:eq(-1))
    T.eq(b.phrase_ids:size(), {n, 3, 12})
    T.eq(b.phrase_mask.dtype, torch.bool)
    T.eq(b.phrase_valid:size(), {n, 3})
    T.is_true(b.phrase_valid[':, 0']:all():item(), 'every synth caption has a noun phrase')
    -- Invalid phrase rows have no real token.
    T.eq(b.phrase_mask:any(2), b.phrase_valid)
  end
end)

T.test('detections: boxes at the sampled frames, normalised, classes below num_classes', function()
  local nc = data.num_classes(ds)
  local valid = 0
  for _, b in ipairs(all_batches(base{detections = {k = 5}})) do
    local n = b.video:size(0)
    T.eq(b.boxes:size(), {n, TF, 5, 4})
    T.eq(b.boxes.dtype, torch.float32)
    T.eq(b.classes.dtype, torch.int64)
    T.eq(b.scores:size(), {n, TF, 5})
    T.is_true(in_range(b.boxes, 0, 1))
    T.is_true(in_range(b.classes, -1, nc - 1))
    local v = b.classes:ge(0)
    valid = valid + v:sum():item()
    local x1, y1, x2, y2 = b.boxes[v][':, 0'], b.boxes[v][':, 1'], b.boxes[v][':, 2'], b.boxes[v][':, 3']
    T.is_true(x2:gt(x1):all():item() and y2:gt(y1):all():item())
    T.is_true(b.scores[v]:gt(0):all():item())
    T.eq(b.boxes[v:logical_not()]:abs():sum():item(), 0)
  end
  T.is_true(valid > 0, 'no valid box at all')
  -- A dataset read without detections gives all-invalid rows, not an error.
  local plain = data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos'}
  local loader = data.Loader(plain, base{detections = true})
  local b = loader:iter(0)()
  T.is_true(b.classes:eq(-1):all():item())
  loader:close()
end)

T.test('detections are read by the workers: a malformed file is reported and its sample replaced', function()
  local det = T.tmpname('-detections')
  assert(os.execute('cp -r "' .. dir .. '/detections" "' .. det .. '"') == 0)
  local first = ds:get(0)
  T.is_true(first.boxes_path ~= nil and first.num_box_frames > 0, 'boxes are not read at load time')
  local f = assert(io.open(det .. '/' .. first.id .. '.json', 'w'))
  f:write('{"frames": [{"boxes": [[1, 2, 3]]}]}')  -- a box with three numbers
  f:close()
  local broken = data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos',
                           detections_root = det}
  T.eq(#broken, #ds)  -- reading the annotations does not open the boxes
  local loader = data.Loader(broken, base{detections = {k = 5}, shuffle = false})
  local ids = {}
  for b in loader:iter(0) do
    for _, id in ipairs(b.id) do ids[#ids + 1] = id end
  end
  T.eq(loader:progress().skipped, 1)
  local errors = loader:skipped_errors()
  T.eq(#errors, 1)
  T.is_true(errors[1]:find(first.id .. '.json', 1, true) ~= nil, errors[1])
  T.eq(ids[1], ds:get(1).id)  -- replaced by the next sample, deterministically
  loader:close()
  os.execute('rm -rf "' .. det .. '"')
end)

T.test('regions without decoding: features, locations, frame order, mask', function()
  for _, b in ipairs(all_batches(base{video = false, regions = {k = 3, frames = 2},
                                      text = {tokenizer = tok, max_len = L}})) do
    T.eq(b.video, nil)
    T.eq(b.ids:size(), {b.features:size(0), L})
    local n = b.features:size(0)
    T.eq(b.features:size(), {n, 6, 32})
    T.eq(b.features.dtype, torch.float32)
    T.eq(b.locations:size(), {n, 6, 7})
    T.eq(b.frame_index:size(), {n, 6})
    T.eq(b.frame_index[0], torch.tensor({0, 0, 0, 1, 1, 1}, {dtype = torch.int64}))
    T.eq(b.region_mask.dtype, torch.bool)
    -- The simulated detector misses some objects, but never every one of a video.
    T.is_true(b.region_mask:any(1):all():item(), 'a sample without any region')
    T.is_true(in_range(b.locations, 0, 1))
    T.eq(b.features[b.region_mask:logical_not()]:abs():sum():item(), 0)
  end
end)

T.test('anchor: masked frame, patch mask, tags tokenized; normalised like the video', function()
  for _, b in ipairs(all_batches(base{anchor = {patch_size = 16, max_objects = 3, shift_prob = 0.5},
                                      text = {tokenizer = tok, max_len = L}, normalize = 'clip'})) do
    local n = b.anchor:size(0)
    T.eq(b.anchor:size(), {n, 3, 32, 32})
    T.eq(b.anchor.dtype, torch.float32)
    T.eq(b.patch_mask:size(), {n, 1, 4})
    T.eq(b.patch_mask.dtype, torch.bool)
    T.eq(#b.tags, n)
    T.eq(b.tag_ids:size(), {n, L})
    T.eq(b.tag_mask.dtype, torch.bool)
    -- Masked patches are 0 after normalisation too.
    local keep = b.patch_mask:reshape({n, 1, 2, 2}):repeat_interleave(16, 2):repeat_interleave(16, 3)
    T.eq(b.anchor[keep:logical_not():expand({n, 3, 32, 32})]:abs():sum():item(), 0)
    for i = 1, n do
      if #b.tags[i] > 0 then
        T.eq(tok:decode(b.tag_ids[i - 1]), b.tags[i])
        T.is_true(b.patch_mask[i - 1]:any():item())
      end
    end
  end
end)

T.test('cut_paste: mixed videos with clip_mask and the W matrices', function()
  local batches = all_batches(base{cut_paste = {clip_len = 2}, drop_last = true})
  T.eq(#batches, 2)
  for _, b in ipairs(batches) do
    T.eq(b.clip_mask:size(), {B, 2})
    T.eq(b.Wv:size(), {B, B})
    T.close(b.Wv:sum{dim = {1}}, torch.ones(B))
    T.eq(b.Wc, b.Wv:t():contiguous())
    T.eq(b.Wv:diagonal(), b.clip_mask:float():mean{dim = {1}})
  end
end)

T.test('same seed, same batches, every field', function()
  local opts = base{text = {tokenizer = tok, max_len = L, mlm = true, plm = true, parts = true, phrases = true},
                    detections = {k = 4}, regions = {k = 2, frames = 2}, anchor = {patch_size = 16},
                    cut_paste = {clip_len = 2}}
  local a, b = all_batches(opts), all_batches(opts)
  local fields = {'video', 'ids', 'mlm_ids', 'mlm_labels', 'plm_split', 'noun_positions', 'verb_ids', 'phrase_ids',
                  'boxes', 'classes', 'features', 'locations', 'anchor', 'patch_mask', 'clip_mask', 'Wv'}
  for i = 1, #a do
    for _, f in ipairs(fields) do T.eq(a[i][f], b[i][f], f) end
    T.eq(a[i].tags, b[i].tags)
  end
  opts.seed = 5
  local c = all_batches(opts)
  T.is_true(not (c[1].mlm_ids == a[1].mlm_ids and c[1].video == a[1].video), 'another seed changed nothing')
end)

T.test('bad options name themselves', function()
  T.raises(function() data.Loader(ds, {text = {tokenizer = tok, max_len = 0}}) end, "option 'text.max_len'")
  T.raises(function() data.Loader(ds, {text = {max_len = 8}}) end, "option 'text.tokenizer' is required")
  T.raises(function() data.Loader(ds, {text = {tokenizer = 'vocab.txt'}}) end, "'text.tokenizer' must be a tokenizer")
  T.raises(function() data.Loader(ds, {detections = {k = 'x'}}) end, "option 'detections.k' must be a number")
  T.raises(function() data.Loader(ds, {detections = {k = 0}}) end, "option 'detections.k' must be > 0")
  T.raises(function() data.Loader(ds, {video = false, anchor = true}) end, "option 'anchor'")
  T.raises(function() data.Loader(ds, {cut_paste = {clip_len = 0}}) end, "option 'cut_paste.clip_len'")
  T.raises(function() data.Loader(ds, {text = {tokenizer = tok, mlm = {probability = 2}}}) end,
           "option 'text.mlm.probability'")
  T.raises(function() data.Loader(ds, {regions = 3}) end, "option 'regions' must be a table or a boolean")
end)

-- Tests run after this file has been read, in order: clean up last.
T.test('clean up the synthetic set', function()
  T.eq(os.execute('rm -rf "' .. dir .. '"'), 0)
end)
