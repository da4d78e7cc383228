-- Interrupts, with real signals to real processes:
--  - a training run sent SIGTERM finishes the step, checkpoints, prints how to
--    resume and exits 143; the printed command resumes it to the same losses
--    as an unbroken run; SIGINT does the same with exit status 130; two
--    signals in a row end it at once;
--  - in the REPL (under tmux, a real terminal), Ctrl-C interrupts a running
--    loop and returns to the prompt with the session intact.
local T = require 'kinema.test'
local kinema = require 'kinema'
local json = require 'kinema.json'

local root = T.tmpdir()
local data_dir = root .. '/synth'
kinema.data.synth{out_dir = data_dir, num_train = 8, num_test = 4, width = 64, height = 64, min_duration_s = 2,
                  max_duration_s = 3, region_frames = 4, region_dim = 32, threads = 2}
local exe = kinema.executable()

local read = T.read_file

local function sleep(s) os.execute('sleep ' .. s) end

local function args(out_dir)
  return table.concat({'--tiny', '--data.root', data_dir, '--train.max_steps', '6', '--train.batch_size', '4',
                       '--train.warmup', '1', '--train.checkpoint_every', '100', '--train.num_workers', '1',
                       '--train.log_every', '1', '--eval.batch_size', '4', '--image_size', '32', '--threads', '1',
                       '--out_dir', out_dir}, ' ')
end

-- Starts `kinema CMD` in the background; returns a handle {pid =, dir =}. A
-- shell starts background commands with SIGINT ignored; env restores its
-- default first, so kinema sees Ctrl-C's signal as it does in a terminal.
local function start(cmd, dir)
  os.execute('mkdir -p "' .. dir .. '"')
  os.execute(string.format([[sh -c 'env --default-signal=INT "%s" %s >"%s/stdout" 2>"%s/stderr" & echo $! >"%s/pid"; wait $!; echo $? >"%s/status"' &]],
                           exe, cmd, dir, dir, dir, dir))
  local pid
  for _ = 1, 100 do
    pid = tonumber(read(dir .. '/pid') or '')
    if pid then break end
    sleep(0.05)
  end
  return {pid = pid, dir = dir}
end

local function wait(h, timeout)
  for _ = 1, timeout * 10 do
    local s = tonumber(read(h.dir .. '/status') or '')
    if s then return s end
    sleep(0.1)
  end
  error('process did not end in ' .. timeout .. ' s')
end

local function logged_steps(out_dir)
  local text = read(out_dir .. '/log.jsonl') or ''
  local losses = {}
  for line in text:gmatch('[^\n]+') do
    local r = json.decode(line)
    if r.kind == 'train' then losses[r.step] = r.loss end
  end
  return losses
end

-- Waits (at most 150 s) until the run `h` writing to out_dir has logged n steps or ended.
local function wait_for_steps(h, out_dir, n)
  for _ = 1, 3000 do
    if #logged_steps(out_dir) >= n or read(h.dir .. '/status') then return end
    sleep(0.05)
  end
end

T.test('SIGTERM: the step finishes, a checkpoint is written, the printed command resumes to the same losses', function()
  local full_dir, cut_dir = root .. '/full', root .. '/cut'
  local full = start('run scripts/pretrain_baseline.lua ' .. args(full_dir), root .. '/p_full')
  T.eq(wait(full, 600), 0, read(full.dir .. '/stderr'))
  local expected = logged_steps(full_dir)
  T.eq(#expected, 6)

  local cut = start('run scripts/pretrain_baseline.lua ' .. args(cut_dir), root .. '/p_cut')
  wait_for_steps(cut, cut_dir, 2)
  os.execute('kill -TERM ' .. cut.pid)
  local status = wait(cut, 300)
  local err = read(cut.dir .. '/stderr')
  T.eq(status, 143, err)
  local step = tonumber(err:match('SIGTERM at step (%d+)'))
  T.is_true(step ~= nil and step >= 2 and step < 6, 'stopped at a step between 2 and 5:\n' .. err)
  T.is_true(kinema.checkpoint.latest(cut_dir):match(string.format('step%%-%08d', step)) ~= nil, 'checkpoint')
  local command = err:match('resume with: kinema run (.-)\n')
  T.is_true(command ~= nil and command:find('--resume true', 1, true) ~= nil, err)
  T.is_true(read(cut_dir .. '/results.json') == nil, 'no evaluation after an interrupt')

  local resumed = start('run ' .. command, root .. '/p_resumed')
  T.eq(wait(resumed, 600), 0, read(resumed.dir .. '/stderr'))
  local got = logged_steps(cut_dir)
  T.eq(#got, 6)
  for s = 1, 6 do T.close(got[s], expected[s], {atol = 1e-5, rtol = 1e-5}, 'step ' .. s) end
end)

T.test('SIGINT (Ctrl-C at a terminal) stops a run as SIGTERM does, exit status 130', function()
  local dir = root .. '/int'
  local h = start('run scripts/pretrain_baseline.lua ' .. args(dir):gsub('max_steps 6', 'max_steps 100000'),
                  root .. '/p_int')
  wait_for_steps(h, dir, 1)
  os.execute('kill -INT ' .. h.pid)
  local status = wait(h, 300)
  local err = read(h.dir .. '/stderr')
  T.eq(status, 130, err)
  local step = tonumber(err:match('SIGINT at step (%d+)'))
  T.is_true(step ~= nil and step >= 1, 'stopped after a finished step:\n' .. err)
  T.is_true(kinema.checkpoint.latest(dir):match(string.format('step%%-%08d', step)) ~= nil, 'checkpoint')
  T.is_true(err:find('resume with: kinema run ', 1, true) ~= nil, err)
end)

T.test('a second signal ends the run at once', function()
  local dir = root .. '/twice'
  -- bigger steps than above, so the second signal comes while the first step is under way
  local slow = args(dir):gsub('max_steps 6', 'max_steps 100000'):gsub('batch_size 4', 'batch_size 8')
                        :gsub('image_size 32', 'image_size 64')
  local h = start('run scripts/pretrain_baseline.lua ' .. slow, root .. '/p_twice')
  wait_for_steps(h, dir, 1)
  -- two signals in one go would merge into one pending signal: a short gap between them
  os.execute(string.format('kill -TERM %d; sleep 0.05; kill -TERM %d', h.pid, h.pid))
  local status = wait(h, 60)
  T.eq(status, 143)
  T.is_true(not (read(h.dir .. '/stderr') or ''):find('resume with', 1, true), 'the run did not stop at once')
end)

T.test('REPL: Ctrl-C interrupts a running loop, returns to the prompt, the session keeps its values', function()
  if os.execute('command -v tmux >/dev/null 2>&1') ~= 0 then
    error('tmux is missing (scripts/dev.sh installs it)')
  end
  local session = 'kinema_test_' .. tostring(os.time()) .. tostring(math.random(1e6))
  local screen = root .. '/screen.txt'
  local function capture()
    os.execute(string.format('tmux capture-pane -p -t %s > "%s"', session, screen))
    return read(screen) or ''
  end
  local function send(keys) os.execute(string.format('tmux send-keys -t %s %s', session, keys)) end
  local function wait_for(text, seconds)
    for _ = 1, seconds * 10 do
      if capture():find(text, 1, true) then return true end
      sleep(0.1)
    end
    error('the REPL never showed "' .. text .. '":\n' .. capture())
  end
  os.execute(string.format('tmux new-session -d -s %s -x 150 -y 40 "HOME=%s \'%s\' repl"', session, root, exe))
  local ok, err = pcall(function()
    wait_for('kinema>', 30)
    send("'x = 41' Enter")
    send("'while true do x = x + 0 end' Enter")
    sleep(1)
    send('C-c')
    wait_for('interrupted', 10)
    wait_for('kinema> ', 10)
    sleep(0.5)
    send("'print(\"after \" .. (x + 1))' Enter")
    wait_for('after 42', 10)
    -- a loop calling into C++ (tensor ops) too
    send("'for i = 1, 1e9 do torch.ones(2):sum() end' Enter")
    sleep(1)
    send('C-c')
    wait_for('stdin:1: interrupted', 10)
    sleep(0.5)
    -- Ctrl-C at the prompt drops the typed line and keeps the session
    send("'print(\"dropped\")'")
    sleep(0.3)
    send('C-c')
    sleep(0.3)
    send("'print(\"alive \" .. x)' Enter")
    wait_for('alive 41', 10)
    T.is_true(not capture():find('\ndropped', 1, true), 'the dropped line ran')
  end)
  os.execute('tmux kill-session -t ' .. session .. ' 2>/dev/null')
  if not ok then error(err, 0) end
end)
