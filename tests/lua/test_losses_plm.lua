-- PLM: next-token targets on the suffix (p <= i + 1 < len) built from split
-- points, against a hand-written loop; CE on the suffix against a reference.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function reference(logits, ids, split, lengths)
  local lg, id = logits:double():totable(), ids:totable()
  local total, n = 0, 0
  for b = 1, #id do
    for i = 0, #id[b] - 1 do  -- 0-based position i predicts token i + 1
      if i + 1 >= split[b] and i + 1 < lengths[b] then
        local row, m = lg[b][i + 1], -math.huge
        for _, x in ipairs(row) do m = math.max(m, x) end
        local s = 0
        for _, x in ipairs(row) do s = s + math.exp(x - m) end
        total = total - (row[id[b][i + 2] + 1] - m - math.log(s))
        n = n + 1
      end
    end
  end
  return total / n, n
end

T.test('plm from split points matches the loop reference', function()
  torch.manual_seed(0)
  local B, L, V = 3, 6, 8
  local ids = torch.randint(0, V, {B, L})
  local lengths, split = {6, 4, 3}, {1, 3, 2}
  local mask = torch.zeros(B, L, {dtype = torch.int64})
  for b = 1, B do mask[{b - 1, {0, lengths[b]}}] = 1 end
  local logits = torch.randn(B, L, V)
  local loss, parts = losses.plm{logits = logits, input_ids = ids, attention_mask = mask,
                                 split_points = torch.tensor(split, {dtype = torch.int64})}
  local expected, n = reference(logits, ids, split, lengths)
  T.close(loss:item(), expected, {atol = 1e-5, rtol = 1e-5})
  T.eq(parts.count, n)
  T.eq(n, 5 + 1 + 1)
  -- the same with lengths, and with the targets given directly
  local via_lengths = losses.plm{logits = logits, input_ids = ids, lengths = torch.tensor(lengths, {dtype = torch.int64}),
                                 split_points = torch.tensor(split, {dtype = torch.int64})}
  T.close(via_lengths:item(), expected, {atol = 1e-5, rtol = 1e-5})
end)

T.test('plm targets: exactly the next suffix tokens', function()
  local plm = require 'kinema.losses.plm'
  local ids = torch.tensor({{10, 11, 12, 13, 0}}, {dtype = torch.int64})
  local t = plm.targets(ids, torch.tensor({2}, {dtype = torch.int64}), torch.tensor({4}, {dtype = torch.int64}), -100)
  -- p = 2, len = 4: positions 1 and 2 predict tokens 12 and 13
  T.eq(t, torch.tensor({{-100, 12, 13, -100, -100}}, {dtype = torch.int64}))
  local loss = losses.plm{logits = torch.zeros(1, 5, 20), targets = t}
  T.close(loss:item(), math.log(20), {atol = 1e-6})
end)

T.test('plm: invalid split points and missing inputs are errors; gradcheck', function()
  local ids = torch.zeros({2, 4}, {dtype = torch.int64})
  local mask = torch.ones(2, 4)
  T.raises(function() losses.plm{logits = torch.randn(2, 4, 3), input_ids = ids, attention_mask = mask,
                                 split_points = torch.tensor({0, 2}, {dtype = torch.int64})} end, 'split point')
  T.raises(function() losses.plm{logits = torch.randn(2, 4, 3), input_ids = ids, attention_mask = mask,
                                 split_points = torch.tensor({4, 2}, {dtype = torch.int64})} end, 'split point')
  T.raises(function() losses.plm{logits = torch.randn(2, 4, 3)} end, "kinema.losses.plm: input 'input_ids'")
  local split = torch.tensor({1, 3}, {dtype = torch.int64})
  T.gradcheck(function(logits) return losses.plm{logits = logits, input_ids = ids, attention_mask = mask, split_points = split} end,
              {torch.randn(2, 4, 3, {dtype = torch.float64})})
end)
