-- kinema.losses registry: register / get / combine, auto-required objective
-- files, per-objective inputs and options, and the unknown-name error.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function constant(value)
  return function(inputs, opts)
    local x = inputs.x or torch.tensor(0.0)
    return x * 0 + value * (opts.scale or 1), {seen = inputs.tag or 'shared'}
  end
end

T.test('register, get and field access', function()
  local fn = constant(2)
  losses.register('test_reg_const', fn, 'a constant')
  T.is_true(losses.get('test_reg_const') == fn)
  T.is_true(losses.test_reg_const == fn)
  T.eq(losses.doc('test_reg_const'), 'a constant')
  T.is_true(losses.vtc ~= nil and losses.get('vtc') == losses.vtc, 'built-in objectives load on demand')
  T.raises(function() losses.register('bad name', fn) end, 'identifier')
  -- :help texts: a built-in file's header (its input keys), a registered doc string
  local docs = require('kinema.repl').docs
  T.is_true(docs['losses.vtc']:find('video_emb', 1, true) ~= nil and docs['losses.rwa']:find('word_mask', 1, true) ~= nil)
  T.eq(docs['losses.test_reg_const'], 'a constant')
  T.raises(function() losses.register('ok_name', 3) end, 'must be a function')
end)

T.test('combine: weighted total and prefixed parts', function()
  losses.register('test_reg_a', constant(2))
  losses.register('test_reg_b', constant(5))
  local total, parts, terms = losses.combine({test_reg_a = 1.5, test_reg_b = 0.5}, {x = torch.tensor(1.0)})
  T.close(total:item(), 1.5 * 2 + 0.5 * 5)
  -- the weighted terms, third
  T.close(terms.test_reg_a:item(), 1.5 * 2)
  T.close(terms.test_reg_b:item(), 0.5 * 5)
  T.close(parts.test_reg_a:item(), 2)
  T.close(parts.test_reg_b:item(), 5)
  T.eq(parts['test_reg_a.seen'], 'shared')
  -- tensor weights, per-objective inputs (falling back to shared keys) and options
  total, parts = losses.combine({test_reg_a = torch.tensor(2.0), test_reg_b = 1},
                                {x = torch.tensor(1.0), test_reg_b = {tag = 'own'}},
                                {test_reg_b = {scale = 10}})
  T.close(total:item(), 2 * 2 + 50)
  T.eq(parts['test_reg_b.seen'], 'own')
  T.eq(parts['test_reg_a.seen'], 'shared')
end)

T.test('combine: zero weight skips the objective, gradients flow', function()
  losses.register('test_reg_fail', function() error('must not run') end)
  local x = torch.tensor(3.0, {requires_grad = true})
  losses.register('test_reg_sq', function(inputs) return inputs.x * inputs.x, {} end)
  local total = losses.combine({test_reg_sq = 2, test_reg_fail = 0}, {x = x})
  total:backward()
  T.close(x.grad:item(), 12)
  T.raises(function() losses.combine({test_reg_fail = 0}, {}) end, 'no objective with a non-zero weight')
  T.raises(function() losses.combine({test_reg_sq = 'a'}, {x = x}) end, "weight of 'test_reg_sq'")
end)

T.test('combine with real objectives equals the sum of the calls', function()
  torch.manual_seed(3)
  local inputs = {video_emb = torch.randn(4, 6), text_emb = torch.randn(4, 6), tau = 0.1,
                  tag_emb = torch.randn(4, 6), masked_video_emb = torch.randn(4, 6)}
  local total, parts = losses.combine({vtc = 1.0, oac = 0.25}, inputs)
  local a = losses.vtc(inputs)
  local b = losses.oac(inputs)
  T.close(total:item(), a:item() + 0.25 * b:item(), {atol = 1e-5})
  T.is_true(parts['vtc.v2t'] ~= nil and parts['oac.tag'] ~= nil)
end)

T.test('unknown name: error lists the known objectives', function()
  local err = T.raises(function() losses.get('no_such_objective') end, "unknown objective 'no_such_objective'")
  for _, name in ipairs({'vtc', 'vtm', 'mlm', 'plm', 'ota', 'asp', 'grouping', 'grounding', 'weighted_vtc', 'oac', 'rwa'}) do
    T.is_true(err:find(name, 1, true) ~= nil, 'known list misses ' .. name .. ': ' .. err)
  end
  T.raises(function() losses.combine({no_such_objective = 1}, {}) end, 'known: ')
  T.is_true(losses.no_such_objective == nil)
end)

T.test('an objective file is required on first get', function()
  local root = T.tmpdir()
  os.execute('mkdir -p "' .. root .. '/kinema/losses"')
  local f = io.open(root .. '/kinema/losses/test_file_obj.lua', 'w')
  f:write([[
local losses = require 'kinema.losses'
losses.register('test_file_obj', function(inputs) return (inputs.x * 3):sum(), {three = 3} end)
]])
  f:close()
  f = io.open(root .. '/kinema/losses/test_file_silent.lua', 'w')
  f:write('return {}\n')
  f:close()
  local saved = package.path
  package.path = root .. '/?.lua;' .. package.path
  local ok, err = pcall(function()
    local total, parts = losses.combine({test_file_obj = 2}, {x = torch.ones(2)})
    T.close(total:item(), 12)
    T.eq(parts['test_file_obj.three'], 3)
    T.raises(function() losses.get('test_file_silent') end, "did not register an objective named 'test_file_silent'")
  end)
  package.path = saved
  os.execute('rm -rf "' .. root .. '"')
  if not ok then error(err, 0) end
end)
