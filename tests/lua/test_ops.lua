-- kinema's operators from Lua (kinema.ops.*, through the dispatcher): values
-- against naive references written here from the definitions (docs/objectives.md,
-- torchvision's roi_align), keyword arguments by schema name, autograd, and
-- error messages naming the operator and argument.
local T = require 'kinema.test'
local kinema = require 'kinema'
local ops = kinema.ops

local function unit(x) return x / x:norm(2, {-1}, true):clamp_min(1e-8) end

-- torchvision's bilinear rule on a [C,H,W] frame at (y, x).
local function bilinear(frame, y, x)
  local h, w = frame:size(1), frame:size(2)
  if y < -1 or y > h or x < -1 or x > w then return torch.zeros(frame:size(0), {dtype = frame.dtype}) end
  y, x = math.max(y, 0), math.max(x, 0)
  local y0, x0 = math.floor(y), math.floor(x)
  local y1, x1 = y0 + 1, x0 + 1
  if y0 >= h - 1 then y0, y1, y = h - 1, h - 1, h - 1 end
  if x0 >= w - 1 then x0, x1, x = w - 1, w - 1, w - 1 end
  local ly, lx = y - y0, x - x0
  local function px(a, b) return frame:select(1, a):select(1, b) end
  return px(y0, x0) * ((1 - ly) * (1 - lx)) + px(y0, x1) * ((1 - ly) * lx)
       + px(y1, x0) * (ly * (1 - lx)) + px(y1, x1) * (ly * lx)
end

local function roi_align_reference(input, boxes, ph, pw, scale, ratio, aligned)
  local out = {}
  for k = 0, boxes:size(0) - 1 do
    local b = boxes:select(0, k):totable()
    local off = aligned and 0.5 or 0
    local x1, y1 = b[2] * scale - off, b[3] * scale - off
    local rw, rh = b[4] * scale - off - x1, b[5] * scale - off - y1
    if not aligned then rw, rh = math.max(rw, 1), math.max(rh, 1) end
    local gh = ratio > 0 and ratio or math.ceil(rh / ph)
    local gw = ratio > 0 and ratio or math.ceil(rw / pw)
    local frame = input:select(0, b[1])
    local bins = {}
    for i = 0, ph - 1 do
      for j = 0, pw - 1 do
        local acc = torch.zeros(input:size(1), {dtype = input.dtype})
        for sy = 0, gh - 1 do
          for sx = 0, gw - 1 do
            acc = acc + bilinear(frame, y1 + i * rh / ph + (sy + 0.5) * rh / ph / gh,
                                 x1 + j * rw / pw + (sx + 0.5) * rw / pw / gw)
          end
        end
        bins[#bins + 1] = acc / math.max(gh * gw, 1)
      end
    end
    out[#out + 1] = torch.stack(bins, 1):view(input:size(1), ph, pw)
  end
  return torch.stack(out)
end

T.test('roi_align matches the reference; keyword arguments by schema name', function()
  torch.manual_seed(1)
  local x = torch.randn(2, 3, 6, 7, {dtype = torch.float64})
  local boxes = torch.tensor({{0, 0.5, 0.5, 5.0, 4.0}, {1, -1.0, 2.0, 3.5, 7.0}, {1, 2.0, 1.0, 2.2, 1.1}},
                             {dtype = torch.float64})
  for _, aligned in ipairs({false, true}) do
    for _, ratio in ipairs({-1, 2}) do
      local got = ops.roi_align(x, boxes, 2, 3, {spatial_scale = 0.9, sampling_ratio = ratio, aligned = aligned})
      T.close(got, roi_align_reference(x, boxes, 2, 3, 0.9, ratio, aligned), {atol = 1e-12})
    end
  end
  -- defaults: spatial_scale = 1, sampling_ratio = -1, aligned = false
  T.close(ops.roi_align(x, boxes, 2, 2), roi_align_reference(x, boxes, 2, 2, 1.0, -1, false), {atol = 1e-12})
  T.gradcheck(function(inp) return ops.roi_align(inp, boxes, 2, 2, {aligned = true}) end, {x})
end)

-- Best total of a small assignment by exhaustive search (rows <= cols).
local function best_total(m, maximize)
  local rows, cols = #m, #m[1]
  local used, best = {}, nil
  local function search(i, total)
    if i > rows then
      if best == nil or (maximize and total > best) or (not maximize and total < best) then best = total end
      return
    end
    for j = 1, cols do
      if not used[j] then
        used[j] = true
        search(i + 1, total + m[i][j])
        used[j] = false
      end
    end
  end
  search(1, 0)
  return best
end

T.test('linear_assignment is optimal, padded with -1, and counts are optional', function()
  torch.manual_seed(2)
  local cost = torch.rand(5, 4, 6, {dtype = torch.float64})
  for _, maximize in ipairs({false, true}) do
    local rows, cols = ops.linear_assignment(cost, {maximize = maximize})
    T.eq(rows:size(), {5, 4})
    for b = 0, 4 do
      local m = cost:select(0, b):totable()
      local total = 0
      for p = 0, 3 do total = total + m[rows[b][p]:item() + 1][cols[b][p]:item() + 1] end
      T.close(total, best_total(m, maximize), {atol = 1e-12})
    end
  end
  local long = {dtype = torch.int64}
  local rows, cols = ops.linear_assignment(cost, torch.tensor({4, 2, 0, 4, 1}, long),
                                           torch.tensor({6, 6, 6, 1, 3}, long))
  T.eq(rows:select(0, 1):totable(), {0, 1, -1, -1})
  T.eq(rows:select(0, 2):totable(), {-1, -1, -1, -1})
  T.eq(cols:select(0, 3):slice(0, 1):totable(), {-1, -1, -1})
  local bad = cost:clone()
  bad[3][1][2] = 0 / 0
  T.raises(function() ops.linear_assignment(bad) end, "kinema::linear_assignment: argument 'cost' has a non-finite entry in sample 3")
  T.raises(function() ops.linear_assignment(cost, torch.ones(5)) end, "argument 'row_counts' must be int64")
end)

-- DemoVLP RWA for one (video, caption) pair, straight from docs/objectives.md.
local function rwa_pair(r, t, lambda)
  local c = unit(r):matmul(unit(t):t())                          -- [N, L]
  local function side(att, values, queries)
    att = att * (att:gt(att:mean(1, true))):to(att.dtype)       -- keep weights above the mean
    local pooled = att:matmul(values)
    local cos = (queries * pooled):sum(1) / (queries:norm(2, {1}) * pooled:norm(2, {1})):clamp_min(1e-8)
    return cos:mean()
  end
  local s = side((c * lambda):softmax(1), t, r)
  local s_t = side((c:t() * lambda):softmax(1), r, t)
  return s, s_t
end

T.test('rwa_similarity matches the per-pair definition, with a padded caption', function()
  torch.manual_seed(3)
  local r = torch.randn(3, 5, 8, {dtype = torch.float64})
  local t = torch.randn(2, 4, 8, {dtype = torch.float64})
  local word_mask = torch.tensor({{true, true, true, true}, {true, true, true, false}})
  local s, s_t = ops.rwa_similarity(r, nil, t, word_mask, {lambda = 5.0})
  T.eq(s:size(), {3, 2})
  T.eq(s_t:size(), {2, 3})
  for i = 0, 2 do
    for j = 0, 1 do
      local words = j == 1 and t:select(0, j):slice(0, 0, 3) or t:select(0, j)
      local a, b = rwa_pair(r:select(0, i), words, 5.0)
      T.close(s[i][j]:item(), a:item(), {atol = 1e-12})
      T.close(s_t[j][i]:item(), b:item(), {atol = 1e-12})
    end
  end
  T.gradcheck(function(rr, tt)
    local a, b = ops.rwa_similarity(rr, nil, tt, word_mask, 5.0)
    return a + b:t()
  end, {r, t})
  T.raises(function() ops.rwa_similarity(r, nil, t:select(0, 0), nil) end,
           "kinema::rwa_similarity: argument 'words' must have 3 dimensions")
end)

T.test('grounding_similarity matches the definition and ignores absent nouns', function()
  torch.manual_seed(4)
  local g = torch.randn(2, 6, 8, {dtype = torch.float64})
  local n = torch.randn(3, 2, 8, {dtype = torch.float64})
  local mask = torch.tensor({{true, true}, {true, false}, {false, false}})
  local G = ops.grounding_similarity(g, n, mask, {tau = 0.5})
  for i = 0, 1 do
    for j = 0, 1 do
      local nouns = j == 1 and n:select(0, j):slice(0, 0, 1) or n:select(0, j)
      local att = (unit(g:select(0, i)):matmul(unit(nouns):t()) / 0.5):softmax(0)  -- [M, K]
      local pooled = att:t():matmul(g:select(0, i))                                  -- [K, d]
      local cos = (nouns * pooled):sum(1) / (nouns:norm(2, {1}) * pooled:norm(2, {1}))
      T.close(G[i][j]:item(), cos:mean():item(), {atol = 1e-12})
    end
    T.eq(G[i][2]:item(), 0)
  end
  T.gradcheck(function(gg, nn) return ops.grounding_similarity(gg, nn, mask, 0.5) end, {g, n})
  T.raises(function() ops.grounding_similarity(g, n, mask:to('float32')) end, "argument 'noun_mask' must be a bool tensor")
end)

T.test('gumbel_hard_assign is one-hot and reproducible under a seed', function()
  local logits = torch.randn(4, 5, {requires_grad = true})
  torch.manual_seed(7)
  local a = ops.gumbel_hard_assign(logits, {tau = 0.5})
  torch.manual_seed(7)
  local b = ops.gumbel_hard_assign(logits, 0.5, -1)
  T.eq(a:detach(), b:detach())
  T.eq(a:sum(-1):detach(), torch.ones(4))
  a:sum():backward()  -- straight-through: softmax's gradient of a constant sum is 0
  T.close(logits.grad, torch.zeros(4, 5), {atol = 1e-6})
  T.raises(function() ops.gumbel_hard_assign(logits, 0) end, "kinema::gumbel_hard_assign: argument 'tau'")
end)
