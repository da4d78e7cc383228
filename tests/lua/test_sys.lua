-- kinema.sys: file operations and programs without a shell. Paths that a
-- shell would run or split ($(...), quotes, spaces) are plain names here,
-- checked with a canary file that must never appear.
local T = require 'kinema.test'
local sys = require 'kinema.sys'
local kinema = require 'kinema'

local base = T.tmpdir() .. '/base'
local canary = base .. '-canary'
-- every hostile name below would create the canary if a shell saw it
local hostile = {
  '$(touch ' .. canary .. ')',
  '`touch ' .. canary .. '`',
  "it's \"quoted\"; touch " .. canary,
  'two  spaces\tand a tab',
  '-starts-with-dash',
}

local read, write = T.read_file, T.write_file

T.test('mkdir, list_dir, exists, is_dir, is_file, rename, remove, remove_tree on hostile names', function()
  for _, hostile_name in ipairs(hostile) do
    local name = hostile_name:gsub('/', '_')
    local dir = base .. '/' .. name .. '/a b/c'
    T.eq(sys.mkdir(dir), true)
    T.eq(sys.mkdir(dir), true)  -- mkdir -p: an existing directory is fine
    T.is_true(sys.is_dir(dir) and sys.exists(dir) and not sys.is_file(dir), name)
    write(dir .. '/f 1', 'x')
    write(dir .. '/' .. name, 'yz')
    local expected = {'f 1', name}
    table.sort(expected)
    T.eq(sys.list_dir(dir), expected)
    T.eq(sys.file_size(dir .. '/' .. name), 2)
    sys.rename(dir .. '/f 1', dir .. '/g 2')
    T.is_true(not sys.exists(dir .. '/f 1') and sys.is_file(dir .. '/g 2'))
    T.eq(sys.remove(dir .. '/g 2'), true)
    T.eq(sys.remove(dir .. '/g 2'), false)  -- already gone
    T.eq(sys.remove_tree(base .. '/' .. name), 4)  -- 3 directories and the file named like the first one
    T.is_true(not sys.exists(base .. '/' .. name))
  end
  T.is_true(not sys.exists(canary), 'a shell ran a path')
end)

T.test('find_files walks directories, sorted, without following symlinked directories', function()
  local root = base .. '/walk me'
  sys.mkdir(root .. '/b/c')
  sys.mkdir(root .. '/a')
  write(root .. '/a/test_2.lua', '')
  write(root .. '/b/c/test_1.lua', '')
  write(root .. '/b/other.lua', '')
  local ffi = require 'ffi'
  pcall(ffi.cdef, 'int symlink(const char *target, const char *linkpath);')
  T.eq(ffi.C.symlink(root .. '/b', root .. '/loop'), 0)
  T.eq(sys.find_files(root, '^test_.*%.lua$'), {root .. '/a/test_2.lua', root .. '/b/c/test_1.lua'})
  T.is_true(sys.is_symlink(root .. '/loop') and not sys.is_symlink(root .. '/b'))
  -- remove_tree removes the link, not what it points to
  sys.remove_tree(root .. '/loop')
  T.is_true(sys.is_file(root .. '/b/c/test_1.lua'))
  sys.remove_tree(root)
end)

T.test('truncate and fsync', function()
  sys.mkdir(base)
  local path = base .. '/cut me'
  write(path, 'hello world')
  sys.truncate(path, 5)
  T.eq(read(path), 'hello')
  T.eq(sys.fsync(path), true)
  T.raises(function() sys.truncate(path, -1) end, "argument #2 'size'")
  T.raises(function() sys.truncate(path, 1.5) end, "argument #2 'size'")
  sys.remove(path)
end)

T.test('errors name the function, the path and the reason', function()
  local missing = base .. '/no such dir'
  T.raises(function() sys.list_dir(missing) end, "kinema.sys.list_dir: cannot list directory '" .. missing .. "'")
  T.raises(function() sys.rename(missing, base .. '/x') end, "kinema.sys.rename: cannot rename '" .. missing .. "'")
  T.raises(function() sys.file_size(missing) end, 'No such file or directory')
  sys.mkdir(base)
  write(base .. '/plain', '')
  T.raises(function() sys.mkdir(base .. '/plain') end, "cannot create directory '" .. base .. "/plain'")
  T.raises(function() sys.mkdir(base .. '/plain/sub') end, "cannot create directory '" .. base .. "/plain/sub'")
  T.raises(function() sys.mkdir('') end, 'empty path')
  T.raises(function() sys.mkdir(nil) end, 'bad argument #1 (path string expected, got nil)')
  T.raises(function() sys.exists('a\0b') end, 'NUL byte')
  sys.remove(base .. '/plain')
end)

T.test('spawn passes arguments verbatim (no shell) and returns the exit status', function()
  sys.mkdir(base)
  local out = base .. '/out put.txt'
  for _, name in ipairs(hostile) do
    T.eq(sys.spawn({'printf', '%s|', name, 'second arg'}, {stdout = out}), 0)
    T.eq(read(out), name .. '|second arg|')
  end
  T.eq(sys.spawn({'sh', '-c', 'exit 3'}), 3)  -- a shell only when one is the program asked for
  T.raises(function() sys.spawn({'kinema-no-such-program-here'}) end,
           "kinema.sys.spawn: cannot run 'kinema-no-such-program-here': No such file or directory")
  T.raises(function() sys.spawn({}) end, 'argv[1] (the program) is required')
  T.raises(function() sys.spawn({'printf', 3}) end, 'argv[2] is a number, not a string')
  T.is_true(not sys.exists(canary), 'a shell ran an argument')
  sys.remove(out)
end)

T.test('no io.popen or os.execute in the Lua library', function()
  local lua_dir = package.searchpath('kinema.sys', package.path):match('^(.*)/kinema/sys%.lua$')
  local offenders = {}
  for _, path in ipairs(sys.find_files(lua_dir, '%.lua$')) do
    local n = 0
    for line in io.lines(path) do
      n = n + 1
      local code = line:gsub('%-%-.*$', '')
      if code:find('io%.popen') or code:find('os%.execute') then offenders[#offenders + 1] = path .. ':' .. n end
    end
  end
  T.eq(offenders, {})
end)

T.test('a training run in an out_dir named like a shell command runs nothing and plots', function()
  local nn, optim = kinema.nn, kinema.optim
  for _, name in ipairs({hostile[1], hostile[3]}) do
    local dir = base .. '/' .. name
    torch.manual_seed(1)
    local model = nn.Linear(3, 1)
    local loader = {}
    function loader:num_batches() return 2 end
    function loader:iter(_, start)
      local i = start
      return function()
        if i >= 2 then return nil end
        i = i + 1
        return {x = torch.ones(2, 3) * i}
      end
    end
    local tr = kinema.train.Trainer{model = model, optimizer = optim.SGD(model, {lr = 0.1}), loader = loader,
                                    max_steps = 3, out_dir = dir, checkpoint_every = 2, progress = false,
                                    plot = 'svg', loss = function(b) return model(b.x):pow(2):mean(), {} end}
    tr:fit()
    T.is_true(sys.is_file(dir .. '/log.jsonl'))
    T.eq(kinema.checkpoint.latest(dir), dir .. '/step-00000003.safetensors')
    local svg = read(dir .. '/loss.svg')
    T.is_true(svg:find('<svg', 1, true) ~= nil, 'loss.svg is not an SVG')
    -- the plot's helper files are gone
    T.eq(sys.list_dir(dir), {'events.out.tfevents.kinema', 'log.jsonl', 'loss.svg', 'step-00000002.safetensors', 'step-00000003.safetensors'})
  end
  T.is_true(not sys.exists(canary), 'a shell ran the out_dir')
  sys.remove_tree(base)
end)
