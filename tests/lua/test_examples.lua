-- The teaching scripts in examples/ run as documented and show what they
-- claim (each script also asserts its own results).
local T = require 'kinema.test'
local kinema = require 'kinema'

-- Runs a shell command; returns its output (stdout and stderr) and exit status.
local function run(cmd)
  local p = io.popen(cmd .. ' 2>&1; echo "exit=$?"')
  local out = p:read('*a')
  p:close()
  local status = tonumber(out:match('exit=(%d+)%s*$'))
  return out, status
end

local exe = kinema.executable()

T.test('examples/custom_loss.lua: hand-written gradient agrees, combined with VTC', function()
  local out, status = run(exe .. ' run examples/custom_loss.lua')
  T.eq(status, 0, out)
  T.is_true(out:find('hand-written gradient matches autograd and finite differences', 1, true), out)
  T.is_true(out:find('vtc [%d.]+ %+ 0%.5 x hardest_negative [%d.]+ = [%d.]+'), out)
end)

T.test('examples/rewire_encoder.lua: the Lua pooling trains, frozen layers stay', function()
  local out, status = run(exe .. ' run examples/rewire_encoder.lua')
  T.eq(status, 0, out)
  T.is_true(out:find('(pool): FramePool', 1, true), out)
  T.is_true(out:find('14 frozen tensors unchanged, 4 pooling tensors trained', 1, true), out)
end)

T.test('examples/repl_session.txt plays back: errors do not end it, :help loads what it names', function()
  local out, status = run(exe .. ' repl < examples/repl_session.txt')
  T.eq(status, 0, out)
  T.is_true(out:find('mat1 and mat2 shapes cannot be multiplied', 1, true), out)
  -- the line after the error still ran
  T.is_true(out:find('[[ 5., 14.],', 1, true), out)
  -- kinema.losses is not loaded before its :help line
  T.is_true(out:find('kinema.losses: objectives by name', 1, true), out)
  T.is_true(out:find('weight\ttorch.Size([2, 3])', 1, true), out)
end)

T.test(':help NAME loads the submodule NAME lives in', function()
  local repl = require 'kinema.repl'
  T.is_true(repl.help('kinema.eval'):find('kinema.eval', 1, true) ~= nil)
  T.eq(repl.help('kinema.no_such_module'), 'no help for kinema.no_such_module')
end)
