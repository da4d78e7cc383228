-- Bad input from Lua never crashes the host: each case is a Lua error carrying
-- the operator's message. (A crash would end this test binary.)
local T = require 'kinema.test'
local nn = require('kinema').nn

local cases = {
  {'wrong shapes', function() return torch.matmul(torch.zeros(2, 3), torch.zeros(4, 5)) end, 'shapes cannot be multiplied'},
  {'broadcast mismatch', function() return torch.zeros(2, 3) + torch.zeros(4) end, 'must match the size'},
  {'wrong type', function() return torch.relu('a string') end, 'aten::relu'},
  {'nil where a tensor is needed', function() return torch.relu(nil) end, 'aten::relu'},
  {'table where a tensor is needed', function() return torch.relu({}) end, 'aten::relu'},
  {'out-of-range dim', function() return torch.zeros(2):sum(3) end, 'Dimension out of range'},
  {'out-of-range index', function() return torch.zeros(2)[7] end, 'out of bounds'},
  {'index_select out of range', function() return torch.zeros(3):index_select(0, torch.tensor({9}, {dtype = torch.int64})) end, 'out of range'},
  {'non-integral int', function() return torch.zeros(4):view(1.5) end, 'aten::view'},
  {'bad dtype string', function() return torch.zeros(2):to('float33') end, 'not a device, dtype, Tensor or options table (got string float33)'},
  {'negative size', function() return torch.zeros(-1) end, 'negative'},
  {'embedding id out of range', function() return nn.Embedding(3, 2)(torch.tensor({5}, {dtype = torch.int64})) end, 'index out of range'},
  {'block with bad argument', function() return nn.Linear(2, 2)(42) end, 'Linear'},
  {'block with missing input', function() return nn.Linear(2, 2)() end, 'Linear: input #1 (input) is required'},
  {'unknown block', function() return require('kinema._models').new('NoSuchBlock', {}) end, "unknown block 'NoSuchBlock'"},
  {'backward of non-scalar', function() return torch.ones(2, {requires_grad = true}):mul(2):backward() end, 'implicitly created'},
  {'backward without grad', function() return torch.ones(2):sum():backward() end, 'does not require grad'},
  {'freed tensor', function() local t = torch.ones(2); t:free(); return t:sum() end, 'freed'},
  {'method on non-tensor', function() return torch.Tensor.size(5) end, 'Tensor expected'},
  {'set unknown property', function() local t = torch.ones(1); t.foo = 1 end, "cannot set 'foo'"},
  {'cat of mismatched', function() return torch.cat({torch.zeros(2, 2), torch.zeros(3, 3)}, 0) end, 'Sizes of tensors must match'},
  {'view incompatible', function() return torch.zeros(2, 3):t():view(6) end, 'view size is not compatible'},
  {'in-place on leaf requiring grad', function() return torch.ones(2, {requires_grad = true}):add_(1) end, 'leaf Variable that requires grad'},
}

for _, case in ipairs(cases) do
  T.test(case[1], function() T.raises(case[2], case[3]) end)
end

T.test('errors carry a Lua traceback when uncaught', function()
  local ok, err = xpcall(function() return torch.zeros(2) + torch.zeros(3) end, debug.traceback)
  T.is_true(not ok)
  T.is_true(err:find('stack traceback', 1, true), err)
end)
