-- MLM: CE at the chosen positions only (labels -100 elsewhere), against a
-- loop reference; the hidden + head path; empty selections; gradients.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function reference(logits, labels)
  local lg, lb = logits:double():totable(), labels:totable()
  local total, n = 0, 0
  for b = 1, #lb do
    for i = 1, #lb[b] do
      local y = lb[b][i]
      if y ~= -100 then
        local row, m = lg[b][i], -math.huge
        for _, x in ipairs(row) do m = math.max(m, x) end
        local s = 0
        for _, x in ipairs(row) do s = s + math.exp(x - m) end
        total = total - (row[y + 1] - m - math.log(s))
        n = n + 1
      end
    end
  end
  return total / n, n
end

local function make_labels(B, L, V, p)
  local labels = torch.randint(0, V, {B, L})
  return torch.where(torch.rand(B, L):lt(p), labels, torch.full_like(labels, -100))
end

T.test('mlm matches the loop reference', function()
  torch.manual_seed(0)
  local B, L, V = 3, 7, 11
  local logits = torch.randn(B, L, V)
  local labels = make_labels(B, L, V, 0.4)
  labels['0, 0'] = 4  -- at least one chosen position
  local loss, parts = losses.mlm{logits = logits, labels = labels}
  local expected, n = reference(logits, labels)
  T.close(loss:item(), expected, {atol = 1e-5, rtol = 1e-5})
  T.eq(parts.count, n)
end)

T.test('mlm: a logit made certain at the label gives zero loss; accuracy counts it', function()
  local logits = torch.zeros(1, 3, 4)
  logits['0, 1, 2'] = 100
  local labels = torch.tensor({{-100, 2, -100}}, {dtype = torch.int64})
  local loss, parts = losses.mlm{logits = logits, labels = labels}
  T.close(loss:item(), 0, {atol = 1e-6})
  T.close(parts.accuracy:item(), 1)
  -- uniform logits: log V at every chosen position, whatever the rest says
  logits['0, 0'] = torch.randn(4)
  logits['0, 1'] = 0
  T.close(losses.mlm{logits = logits, labels = labels}:item(), math.log(4), {atol = 1e-6})
end)

T.test('mlm: hidden + head evaluates the head on the chosen positions only', function()
  torch.manual_seed(1)
  local B, L, D, V = 2, 5, 4, 9
  local hidden = torch.randn(B, L, D)
  local W = torch.randn(D, V)
  local labels = make_labels(B, L, V, 0.5)
  labels['1, 3'] = 0
  local rows_seen
  local function head(h) rows_seen = h:size(0); return torch.matmul(h, W) end
  local a = losses.mlm{hidden = hidden, head = head, labels = labels}
  local b = losses.mlm{logits = torch.matmul(hidden, W), labels = labels}
  T.close(a:item(), b:item(), {atol = 1e-5})
  T.eq(rows_seen, labels:ne(-100):sum():item())
end)

T.test('mlm: no chosen position gives zero (in the graph); bad labels are errors', function()
  local logits = torch.randn(2, 3, 5, {requires_grad = true})
  local loss = losses.mlm{logits = logits, labels = torch.full({2, 3}, -100, {dtype = torch.int64})}
  T.close(loss:item(), 0)
  loss:backward()
  T.close(logits.grad, torch.zeros(2, 3, 5))
  T.raises(function() losses.mlm{logits = torch.randn(2, 3, 5), labels = torch.full({2, 3}, 7, {dtype = torch.int64})} end,
           'kinema.losses.mlm: labels must lie in [0, 5)')
  T.raises(function() losses.mlm{logits = torch.randn(2, 4, 5), labels = torch.zeros({2, 3}, {dtype = torch.int64})} end,
           "'logits'")
  T.raises(function() losses.mlm{logits = torch.randn(2, 3, 5)} end, "input 'labels'")
end)

T.test('mlm gradcheck (float64)', function()
  torch.manual_seed(2)
  local labels = torch.tensor({{1, -100, 3}, {-100, 0, -100}}, {dtype = torch.int64})
  T.gradcheck(function(logits) return losses.mlm{logits = logits, labels = labels} end,
              {torch.randn(2, 3, 4, {dtype = torch.float64})})
end)
