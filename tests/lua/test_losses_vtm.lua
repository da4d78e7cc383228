-- VTM: hard-negative sampling distribution (softmax of the similarity row,
-- positive excluded), seeding, the pairs handed to the fusion callback, and
-- the loss against a loop reference.
local T = require 'kinema.test'
local losses = require('kinema').losses
local vtm = require 'kinema.losses.vtm'

local function logit_pair(v, t)  -- a toy 2-way head: [-<v,t>, <v,t>]
  local s = (v * t):sum(-1)
  return torch.stack({-s, s}, -1)
end

T.test('negatives follow softmax(S[i,:]) with the positive excluded', function()
  torch.manual_seed(0)
  local S = torch.tensor({{2.0, 1.0, 0.0}, {0.5, 1.0, -1.0}, {0.0, 3.0, 1.0}}, {dtype = torch.float64})
  local n = 3000
  local count_t, count_v = {}, {}
  for i = 1, 3 do count_t[i] = {0, 0, 0}; count_v[i] = {0, 0, 0} end
  for _ = 1, n do
    local nt, nv = vtm.sample_negatives(S)
    nt, nv = nt:totable(), nv:totable()
    for i = 1, 3 do
      count_t[i][nt[i] + 1] = count_t[i][nt[i] + 1] + 1
      count_v[i][nv[i] + 1] = count_v[i][nv[i] + 1] + 1
    end
  end
  local s = S:totable()
  for i = 1, 3 do
    T.eq(count_t[i][i], 0, 'the positive caption is never drawn')
    T.eq(count_v[i][i], 0, 'the positive video is never drawn')
    -- expected: exp(S[i,j]) over j ~= i (softmax renormalised without the positive)
    local zt, zv = 0, 0
    for j = 1, 3 do if j ~= i then zt = zt + math.exp(s[i][j]); zv = zv + math.exp(s[j][i]) end end
    for j = 1, 3 do
      if j ~= i then
        local pt, pv = math.exp(s[i][j]) / zt, math.exp(s[j][i]) / zv
        -- 5 standard deviations of a binomial proportion
        T.close(count_t[i][j] / n, pt, {atol = 5 * math.sqrt(pt * (1 - pt) / n), rtol = 0})
        T.close(count_v[i][j] / n, pv, {atol = 5 * math.sqrt(pv * (1 - pv) / n), rtol = 0})
      end
    end
  end
end)

T.test('uniform = p draws from (1 - p) softmax(S) + p uniform over the other rows', function()
  torch.manual_seed(3)
  local S = torch.tensor({{2.0, 5.0, 0.0}, {0.5, 1.0, -1.0}, {0.0, 3.0, 1.0}}, {dtype = torch.float64})
  local n, p = 3000, 0.4
  local count = {0, 0, 0}
  for _ = 1, n do
    local nt = vtm.sample_negatives(S, p)
    local j = nt[0]:item() + 1
    count[j] = count[j] + 1
  end
  -- row 0: softmax over {5, 0} renormalised without the positive, mixed with 1/2 each
  local z = math.exp(5) + math.exp(0)
  local expected = {0, (1 - p) * math.exp(5) / z + p / 2, (1 - p) * math.exp(0) / z + p / 2}
  T.eq(count[1], 0, 'the positive caption is never drawn')
  for j = 2, 3 do
    local e = expected[j]
    T.close(count[j] / n, e, {atol = 5 * math.sqrt(e * (1 - e) / n), rtol = 0})
  end
  T.raises(function()
    vtm.vtm({sim = torch.zeros(2, 2), video = torch.zeros(2, 1), text = torch.zeros(2, 1),
             fuse = function() return torch.zeros(6, 2) end}, {uniform = 1.5})
  end, "option 'uniform' must be a number in [0, 1], got 1.5")
end)

T.test('a dominant diagonal (tiny tau) still yields valid negatives', function()
  torch.manual_seed(1)
  local S = torch.eye(4) * 1e4 - 1e4
  local nt, nv = vtm.sample_negatives(S)
  for i, j in ipairs(nt:totable()) do T.is_true(j ~= i - 1 and j >= 0 and j < 4) end
  for i, j in ipairs(nv:totable()) do T.is_true(j ~= i - 1 and j >= 0 and j < 4) end
end)

T.test('loss and pairs: B positives then 2B negatives, CE vs a loop reference', function()
  torch.manual_seed(2)
  local B, d = 4, 5
  local video, text = torch.randn(B, d), torch.randn(B, d)
  local vmask, tmask = torch.rand(B, 3):gt(0.5), torch.rand(B, 2):gt(0.5)
  local seen
  local function fuse(v, t, masks, index)
    seen = {v = v, t = t, masks = masks, index = index}
    return logit_pair(v, t)
  end
  local loss, parts, extra = losses.vtm{video = video, text = text, video_mask = vmask, text_mask = tmask, fuse = fuse,
                                        video_emb = torch.randn(B, 6), text_emb = torch.randn(B, 6), tau = 0.1}
  local nt, nv = extra.neg_text:totable(), extra.neg_video:totable()
  -- the fused rows are the right ones
  local vi, ti = seen.index.video:totable(), seen.index.text:totable()
  for i = 1, B do
    T.eq(vi[i], i - 1); T.eq(ti[i], i - 1)
    T.eq(vi[B + i], i - 1); T.eq(ti[B + i], nt[i])
    T.eq(vi[2 * B + i], nv[i]); T.eq(ti[2 * B + i], i - 1)
    T.is_true(nt[i] ~= i - 1 and nv[i] ~= i - 1)
  end
  for k = 1, 3 * B do
    T.close(seen.v[k - 1], video[vi[k]], {atol = 0})
    T.close(seen.t[k - 1], text[ti[k]], {atol = 0})
    T.eq(seen.masks.video[k - 1], vmask[vi[k]])
    T.eq(seen.masks.text[k - 1], tmask[ti[k]])
  end
  -- reference: -log softmax of the right class for every pair, averaged over 3B
  local vt, tt = video:double():totable(), text:double():totable()
  local total = 0
  for k = 1, 3 * B do
    local s = 0
    for c = 1, d do s = s + vt[vi[k] + 1][c] * tt[ti[k] + 1][c] end
    local label = k <= B and 1 or 0
    local logit = label == 1 and s or -s
    total = total - (logit - math.log(math.exp(s) + math.exp(-s)))
  end
  T.close(loss:item(), total / (3 * B), {atol = 1e-5, rtol = 1e-5})
  T.eq(extra.labels:totable(), {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0})
  T.is_true(parts.accuracy:item() >= 0 and parts.accuracy:item() <= 1)
end)

T.test('seeded draws are reproducible; table inputs are selected field by field', function()
  local B = 5
  local video = {frames = torch.randn(B, 2, 3), traj = torch.randn(B, 4, 3)}
  local text = torch.randn(B, 3)
  local sim = torch.randn(B, B)
  local function fuse(v, t)
    T.eq(v.frames:size(0), 3 * B); T.eq(v.traj:size(0), 3 * B)
    return logit_pair(v.frames:sum(1), t)
  end
  torch.manual_seed(7)
  local l1, _, e1 = losses.vtm{video = video, text = text, sim = sim, fuse = fuse}
  torch.manual_seed(7)
  local l2, _, e2 = losses.vtm{video = video, text = text, sim = sim, fuse = fuse}
  T.eq(e1.neg_text, e2.neg_text)
  T.eq(e1.neg_video, e2.neg_video)
  T.close(l1:item(), l2:item(), {atol = 0})
end)

T.test('gradient reaches the fusion side, not the similarity', function()
  torch.manual_seed(3)
  local B, d = 3, 4
  local w = torch.randn(d, 2, {requires_grad = true})
  local sim = torch.randn(B, B, {requires_grad = true})
  local loss = losses.vtm{video = torch.randn(B, d), text = torch.randn(B, d), sim = sim,
                          fuse = function(v, t) return torch.matmul(v * t, w) end}
  loss:backward()
  T.is_true(w.grad ~= nil and w.grad:abs():sum():item() > 0)
  T.is_true(sim.grad == nil, 'no gradient through the sampling')
end)

T.test('errors: batch of one, missing fuse, bad logits', function()
  local x = torch.randn(1, 3)
  T.raises(function() losses.vtm{video = x, text = x, sim = torch.zeros(1, 1), fuse = function() end} end, 'at least 2')
  local y = torch.randn(3, 3)
  T.raises(function() losses.vtm{video = y, text = y, sim = torch.zeros(3, 3)} end, "kinema.losses.vtm: input 'fuse'")
  T.raises(function() losses.vtm{video = y, text = y, sim = torch.zeros(3, 3), fuse = function() return torch.zeros(3, 2) end} end,
           'logits [9, 2]')
  T.raises(function() losses.vtm{video = y, text = y, sim = torch.zeros(2, 2), fuse = function() end} end, "rows like 'sim'")
end)
