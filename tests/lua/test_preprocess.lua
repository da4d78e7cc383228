-- `kinema preprocess` from the command line on a WebVid-layout tree (the
-- synthetic benchmark) with one training video corrupted: the corrupt file is
-- listed and the rest converted, a rerun skips what is done, and kinema's
-- loader reads the output as it reads the source (same samples, pixels within
-- the re-encoding error). Sizes, rates, keyframes and refusals in detail:
-- tests/cpp/data/test_preprocess.cpp.
local T = require 'kinema.test'
local kinema = require 'kinema'
local data, sys = kinema.data, kinema.sys
local torch = require 'torch'

local root = T.tmpdir()
local src, out = root .. '/webvid', root .. '/webvid_224'
data.synth{out_dir = src, num_train = 5, num_test = 2, width = 64, height = 48, fps = 8, min_duration_s = 2,
           max_duration_s = 3, region_frames = 1, region_dim = 4, seed = 5, threads = 2}
local train = data.read{format = 'webvid', path = src .. '/train.csv', video_root = src .. '/videos'}
local corrupt = train:get(1)  -- the second training video, listed in train.csv
T.write_file(corrupt.video_path, 'not a video: the bytes of an interrupted download')
local corrupt_rel = corrupt.video_path:sub(#src + 2)

-- Runs kinema preprocess ARGS; returns the exit status, stdout and stderr.
local function preprocess(args)
  local argv = {kinema.executable(), 'preprocess'}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local o, e = root .. '/stdout.txt', root .. '/stderr.txt'
  local status = sys.spawn(argv, {stdout = o, stderr = e})
  return status, sys.read_file(o), sys.read_file(e)
end

local flags = {'--in', src, '--out', out, '--short-side', '32', '--frames', '4', '--jobs', '2', '--no-progress'}

T.test('the corrupt video is listed, the others converted, the annotations copied', function()
  local status, stdout, stderr = preprocess(flags)
  T.eq(status, 0, stderr)
  T.is_true(stdout:find('7 videos: 6 converted, 0 already done, 1 failed', 1, true) ~= nil, stdout)
  T.is_true(stdout:find('failed: ' .. corrupt_rel .. ': ', 1, true) ~= nil, stdout)
  local list = sys.read_file(out .. '/preprocess_failures.tsv')
  T.is_true(list:find('^' .. corrupt_rel:gsub('%p', '%%%0') .. '\t') ~= nil, list)
  T.is_true(not sys.exists(out .. '/' .. corrupt_rel), 'no output for the corrupt video')
  for _, name in ipairs({'train.csv', 'test.csv', 'train_meta.jsonl', 'vocab.txt'}) do
    T.eq(sys.read_file(out .. '/' .. name), sys.read_file(src .. '/' .. name), name)
  end
  T.eq(#sys.find_files(out, '%.part$'), 0)
end)

T.test('a rerun skips the converted videos and tries the corrupt one again', function()
  local status, stdout, stderr = preprocess(flags)
  T.eq(status, 0, stderr)
  T.is_true(stdout:find('7 videos: 0 converted, 6 already done, 1 failed; 0 other files copied', 1, true) ~= nil,
            stdout)
end)

T.test("kinema's loader reads the output like the source", function()
  local function videos(dir)
    local ds = data.read{format = 'webvid', path = dir .. '/train.csv', video_root = dir .. '/videos'}
    local loader = data.Loader(ds, {batch_size = 1, num_workers = 2, num_frames = 4, size = 32, shuffle = false,
                                    sampling = 'uniform', on_error = 'replace'})
    local by_id = {}
    for b in loader:iter(0) do by_id[b.id[1]] = b.video[0]:float() end
    local errors = loader:skipped_errors()
    loader:close()
    return by_id, errors
  end
  local a, a_errors = videos(src)
  local b, b_errors = videos(out)
  -- the corrupt sample is unreadable in both trees (absent from the output), the rest load
  T.eq(#a_errors, 1)
  T.eq(#b_errors, 1)
  T.is_true(b_errors[1]:find(corrupt.id, 1, true) ~= nil, b_errors[1])
  local n = 0
  for id, v in pairs(b) do
    n = n + 1
    T.eq(v:size(), {4, 3, 32, 32}, id)
    -- source 64x48 resized to 43x32 then cropped by the loader, against frames
    -- stored at 42x32 (even sizes) and cropped: the same centre, H.264 at crf 18
    local diff = (v - a[id]):abs():mean():item()
    T.is_true(diff < 6, string.format('%s: mean abs difference %.2f of 255', id, diff))
  end
  T.eq(n, 4)
end)

T.test('usage and refusals: exit status and one line naming the problem', function()
  local status, _, stderr = preprocess({'--in', src})
  T.eq(status, 2)
  T.is_true(stderr:find('--out', 1, true) ~= nil, stderr)
  status, _, stderr = preprocess({'--in', src, '--out', src .. '/inside'})
  T.eq(status, 1)
  T.is_true(stderr:find("is (inside) the input directory", 1, true) ~= nil, stderr)
  T.is_true(not sys.exists(src .. '/inside'), 'nothing written inside the input')
  status, _, stderr = preprocess({'--in', src, '--out', out, '--short-side', '48', '--no-progress'})
  T.eq(status, 1)
  T.is_true(stderr:find('was made with other settings', 1, true) ~= nil, stderr)
  status, _, stderr = preprocess({'--in', src, '--out', root .. '/x', '--fps', 'fast'})
  T.eq(status, 2)
  T.is_true(stderr:find("--fps expects a number, got 'fast'", 1, true) ~= nil, stderr)
  T.is_true(not sys.exists(root .. '/x'), 'a usage error writes nothing')
end)

T.test('--help states every default, including those --config can supply', function()
  local status, stdout = preprocess({'--help'})
  T.eq(status, 0)
  local text = stdout:gsub('%s+', ' ')  -- the help wraps its columns
  for _, want in ipairs({"(default: 8, or --config's frames)", "(default: 0, or --config's image_size)",
                         '(default: 18)', '(default: auto)'}) do
    T.is_true(text:find(want, 1, true) ~= nil, '--help lacks ' .. want .. ':\n' .. stdout)
  end
end)

