-- A corpus of Lua API misuses that used to be accepted silently (each did
-- something, wrongly, where PyTorch raises). Every case must end in an error
-- whose message names the argument; nothing may crash or pass.
local T = require 'kinema.test'
local kinema = require 'kinema'
local sys = require 'kinema.sys'

local fixtures = 'tests/fixtures'

local function params_with_grad()
  local w = torch.tensor({1.0, -2.0}, {requires_grad = true})
  w.grad = torch.tensor({3.0, 4.0})
  return {w}
end

local function custom(backward)
  return torch.autograd.Function{forward = function(_, x, y) return x * y end, backward = backward}
end

local function backward_of(fn)
  local x = torch.ones(2):requires_grad_()
  local y = torch.ones(2):requires_grad_()
  fn(x, y):sum():backward()
end

local write = T.write_file

local tmp = T.tmpdir()
write(tmp .. '/empty_merges.txt', '')
write(tmp .. '/header_only_merges.txt', '#version: 0.2\n')
write(tmp .. '/blank_merges.txt', '#version: 0.2\n\n\r\n')

local function bpe(path) return kinema.data.tokenizer{kind = 'clip_bpe', path = path} end
local tok = bpe(fixtures .. '/text_clip_merges.txt')

-- {what, function that must raise, fragment of the message}
local corpus = {
  {'clip_grad_norm max_norm = -1', function() kinema.optim.clip_grad_norm(params_with_grad(), -1) end,
   'optim.clip_grad_norm: argument max_norm must be a number >= 0, got -1'},
  {'clip_grad_norm max_norm = NaN', function() kinema.optim.clip_grad_norm(params_with_grad(), 0 / 0) end,
   'argument max_norm must be a number >= 0'},
  {'clip_grad_norm max_norm = nil', function() kinema.optim.clip_grad_norm(params_with_grad()) end,
   'argument max_norm must be a number >= 0, got nil'},
  {'clip_grad_norm norm_type = 0', function() kinema.optim.clip_grad_norm(params_with_grad(), 1, 0) end,
   'argument norm_type must be a number > 0, got 0'},

  {'t.grad of another shape', function() local t = torch.zeros(2, 3); t.grad = torch.zeros(3, 2) end,
   "t.grad = g: argument 'g' has shape [3, 2], the tensor has shape [2, 3]"},
  {'t.grad of another dtype', function() local t = torch.zeros(2); t.grad = torch.zeros(2):double() end,
   "t.grad = g: argument 'g' has dtype Double, the tensor has dtype Float"},
  {'t.grad broadcastable but not equal', function() local t = torch.zeros(2, 3); t.grad = torch.zeros(3) end,
   "argument 'g' has shape [3]"},

  {'t[1.7]', function() return torch.arange(5)[1.7] end, 'bad index: the number 1.7 is not an integer'},
  {'t[1.7] = v', function() local t = torch.arange(5); t[1.7] = 0 end, 'the number 1.7 is not an integer'},
  {'t[{0, 2.5}]', function() return torch.zeros(3, 3)[{0, 2.5}] end,
   'element 2 of the index table, 2.5 is not an integer'},
  {'t[{{0, 1.5}}]', function() return torch.zeros(3)[{{0, 1.5}}] end, 'a slice bound, 1.5 is not an integer'},
  {'t[NaN]', function() return torch.zeros(3)[0 / 0] end, 'is not an integer'},
  {'t[inf]', function() return torch.zeros(3)[math.huge] end, 'is not an integer'},
  {"t['1.7']", function() return torch.zeros(3)['1.7'] end, "'1.7' is not an integer"},

  {'custom backward returning 3 gradients for 2 inputs',
   function() backward_of(custom(function(_, g) return g, g, g end)) end,
   'custom function backward returned 3 gradients for 2 Tensor argument(s) of forward'},
  {'custom backward returning a freed tensor',
   function() backward_of(custom(function(_, g) local h = g:clone(); h:free(); return h, g end)) end,
   'custom function backward: result 1 is a freed Tensor'},

  {'tok:encode max_len = 0', function() tok:encode('a dog', {max_len = 0}) end,
   "tok:encode: option 'max_len' must be an integer >= 2, got 0"},
  {'tok:encode max_len = -5', function() tok:encode('a dog', {max_len = -5}) end,
   "option 'max_len' must be an integer >= 2, got -5"},
  {'tok:encode max_len = 7.5', function() tok:encode('a dog', {max_len = 7.5}) end,
   "option 'max_len' must be an integer >= 2, got 7.5"},
  {"tok:encode max_len = '8'", function() tok:encode('a dog', {max_len = '8'}) end,
   "option 'max_len' must be a number"},
  {'tok:encode_batch max_len = 0', function() tok:encode_batch({'a dog'}, 0) end,
   "tok:encode_batch: argument 'max_len' must be an integer >= 2, got 0"},
  {'tok:encode_batch max_len = 9.25', function() tok:encode_batch({'a dog'}, 9.25) end,
   "argument 'max_len' must be an integer >= 2, got 9.25"},
  {'tok:decode fractional id in a list', function() tok:decode({49406, 320.5, 49407}) end,
   "tok:decode: argument 'ids', element 2, must be an integer, got 320.5"},
  {'tok:decode fractional id in a tensor', function() tok:decode(torch.tensor({320.5, 1})) end,
   "tok:decode: argument 'ids' holds non-integral values"},

  {'an empty BPE merges file', function() bpe(tmp .. '/empty_merges.txt') end,
   "merges file '" .. tmp .. "/empty_merges.txt' holds no merges"},
  {'a BPE merges file with only its header', function() bpe(tmp .. '/header_only_merges.txt') end,
   'header_only_merges.txt\' holds no merges'},
  {'a BPE merges file with only blank lines', function() bpe(tmp .. '/blank_merges.txt') end,
   'blank_merges.txt\' holds no merges'},
}

for _, case in ipairs(corpus) do
  T.test(case[1], function() T.raises(case[2], case[3], case[1]) end)
end

T.test('the legal neighbours of the corpus still work', function()
  local ps = params_with_grad()
  T.close(kinema.optim.clip_grad_norm(ps, 1), 5)
  T.close(ps[1].grad, torch.tensor({0.6, 0.8}), {atol = 1e-6})
  T.close(kinema.optim.clip_grad_norm(params_with_grad(), math.huge), 5)
  local t = torch.zeros(2, 3)
  t.grad = torch.ones(2, 3)
  T.eq(t.grad, torch.ones(2, 3))
  t.grad = nil
  T.eq(t.grad, nil)
  T.eq(torch.arange(5)[2.0]:item(), 2)
  T.eq(torch.arange(5)[-1]:item(), 4)
  T.eq(torch.arange(6):view(2, 3)[{1, {0, 2}}], torch.tensor({3, 4}):long())
  -- trailing nil gradients are allowed, as in PyTorch
  local x = torch.ones(2):requires_grad_()
  local y = (torch.ones(2) * 3):requires_grad_()
  custom(function(ctx, g) return g * 3, g, nil, nil end)(x, y):sum():backward()
  T.eq(x.grad, torch.full({2}, 3):float())
  local ids = tok:encode('a dog', {max_len = 3})
  T.eq(#ids, 3)
  T.eq(tok:decode(torch.tensor(ids):double()), tok:decode(ids))
  sys.remove_tree(tmp)
end)
