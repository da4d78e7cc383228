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

-- Runs `exe .. args`, which must succeed and print every fragment (plain text).
local function shows(args, fragments)
  local out, status = run(exe .. args)
  T.eq(status, 0, out)
  for _, f in ipairs(fragments) do T.is_true(out:find(f, 1, true), 'missing "' .. f .. '" in:\n' .. out) end
end

T.test('examples/custom_loss.lua: hand-written gradient agrees, combined with VTC', function()
  shows(' run examples/custom_loss.lua', {'hand-written gradient matches autograd and finite differences',
                                         '+ 0.5 x hardest_negative'})
end)

T.test('examples/rewire_encoder.lua: the Lua pooling trains, frozen layers stay', function()
  shows(' run examples/rewire_encoder.lua', {'(pool): FramePool', '14 frozen tensors unchanged, 4 pooling tensors trained'})
end)

T.test('examples/repl_session.txt plays back: errors do not end it, :help loads what it names', function()
  shows(' repl < examples/repl_session.txt', {
    'mat1 and mat2 shapes cannot be multiplied',
    '[[ 5., 14.],',                          -- the line after the error still ran
    'kinema.losses: objectives by name',     -- kinema.losses was not loaded before its :help line
    'weight\ttorch.Size([2, 3])',
  })
end)

T.test(':help NAME loads the submodule NAME lives in', function()
  local repl = require 'kinema.repl'
  T.is_true(repl.help('kinema.eval'):find('kinema.eval', 1, true) ~= nil)
  T.eq(repl.help('kinema.no_such_module'), 'no help for kinema.no_such_module')
end)
