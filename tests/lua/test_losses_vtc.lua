-- VTC and weighted VTC against loop references written from docs/objectives.md /
-- S-ViLM eq 7, closed forms, the distributed row/column split, gradients.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function rows(x) return x:detach():double():totable() end
local function dot(a, b) local s = 0; for k = 1, #a do s = s + a[k] * b[k] end; return s end
local function cos(a, b)
  return dot(a, b) / (math.max(math.sqrt(dot(a, a)), 1e-8) * math.max(math.sqrt(dot(b, b)), 1e-8))
end
local function logsumexp(xs)
  local m = -math.huge
  for _, x in ipairs(xs) do m = math.max(m, x) end
  local s = 0
  for _, x in ipairs(xs) do s = s + math.exp(x - m) end
  return m + math.log(s)
end

-- Mean over rows i of -sum_j W[i][j] log softmax_j(cos(a_i, b_j) / tau); W nil = diagonal (+offset).
local function ce_reference(a, b, tau, W, offset)
  a, b = rows(a), rows(b)
  offset = offset or 0
  local total = 0
  for i = 1, #a do
    local logits = {}
    for j = 1, #b do logits[j] = cos(a[i], b[j]) / tau end
    local lse = logsumexp(logits)
    if W then
      for j = 1, #b do total = total - W[i][j] * (logits[j] - lse) end
    else
      total = total - (logits[i + offset] - lse)
    end
  end
  return total / #a
end

T.test('vtc matches the loop reference (hard targets)', function()
  torch.manual_seed(0)
  local v, t = torch.randn(5, 7), torch.randn(5, 7)
  for _, tau in ipairs({0.07, 0.5}) do
    local loss, parts = losses.vtc{video_emb = v, text_emb = t, tau = tau}
    local v2t, t2v = ce_reference(v, t, tau), ce_reference(t, v, tau)
    T.close(loss:item(), (v2t + t2v) / 2, {atol = 1e-5, rtol = 1e-5})
    T.close(parts.v2t:item(), v2t, {atol = 1e-5, rtol = 1e-5})
    T.close(parts.t2v:item(), t2v, {atol = 1e-5, rtol = 1e-5})
  end
  local sum = losses.vtc({video_emb = v, text_emb = t, tau = 0.2}, {directions = 'sum'})
  T.close(sum:item(), ce_reference(v, t, 0.2) + ce_reference(t, v, 0.2), {atol = 1e-5, rtol = 1e-5})
end)

T.test('vtc: perfectly aligned orthogonal pairs give the closed form', function()
  local B, tau = 4, 0.1
  local e = torch.eye(B) * 3  -- norms do not matter
  local loss = losses.vtc{video_emb = e, text_emb = torch.eye(B), tau = tau}
  -- S = I / tau: CE = log(1 + (B - 1) exp(-1/tau)) in both directions
  T.close(loss:item(), math.log(1 + (B - 1) * math.exp(-1 / tau)), {atol = 1e-7, rtol = 1e-5})
  -- a swapped pairing is the worst case: log(exp(1/tau) + B - 1) - 0
  local swapped = losses.vtc{video_emb = e, text_emb = torch.eye(B):flip({0}), tau = tau}
  T.close(swapped:item(), math.log(math.exp(1 / tau) + B - 1), {atol = 1e-5, rtol = 1e-5})
end)

T.test('vtc: temperature from a tensor, from logit_scale, learnable and clamped', function()
  torch.manual_seed(1)
  local v, t = torch.randn(4, 6), torch.randn(4, 6)
  local tau = torch.tensor(0.2, {requires_grad = true})
  local loss, parts = losses.vtc{video_emb = v, text_emb = t, tau = tau}
  loss:backward()
  T.is_true(tau.grad ~= nil and tau.grad:abs():item() > 0, 'tau receives a gradient')
  T.close(parts.tau, 0.2, {atol = 1e-7})
  local ls = torch.tensor(math.log(1 / 0.2), {requires_grad = true})
  local l2 = losses.vtc{video_emb = v, text_emb = t, logit_scale = ls}
  T.close(l2:item(), loss:item(), {atol = 1e-5})
  l2:backward()
  T.is_true(ls.grad:abs():item() > 0)
  -- logit_scale = log(1000) would mean tau = 0.001: clamped to 0.01
  local l3, p3 = losses.vtc{video_emb = v, text_emb = t, logit_scale = torch.tensor(math.log(1000))}
  T.close(p3.tau, 0.01, {atol = 1e-7})
  T.close(l3:item(), (ce_reference(v, t, 0.01) + ce_reference(t, v, 0.01)) / 2, {atol = 1e-4, rtol = 1e-5})
  T.raises(function() losses.vtc{video_emb = v, text_emb = t, tau = -1} end, 'positive')
end)

T.test('vtc with soft targets W matches the reference; identity W equals hard targets', function()
  torch.manual_seed(2)
  local B = 4
  local v, t = torch.randn(B, 5), torch.randn(B, 5)
  local beta = {0.7, 0.5, 0.9, 0.6}
  local p = {2, 3, 4, 1}  -- 1-based derangement
  local W = {}
  for i = 1, B do
    W[i] = {0, 0, 0, 0}
    W[i][i] = beta[i]
    W[i][p[i]] = 1 - beta[i]
  end
  local Wc = {}
  for i = 1, B do Wc[i] = {}; for j = 1, B do Wc[i][j] = W[j][i] end end
  local Wt = torch.tensor(W, {dtype = torch.float32})
  local loss, parts = losses.vtc{video_emb = v, text_emb = t, tau = 0.1, Wv = Wt}
  T.close(parts.v2t:item(), ce_reference(v, t, 0.1, W), {atol = 1e-5, rtol = 1e-5})
  T.close(parts.t2v:item(), ce_reference(t, v, 0.1, Wc), {atol = 1e-5, rtol = 1e-5})
  T.close(loss:item(), (parts.v2t:item() + parts.t2v:item()) / 2, {atol = 1e-6})
  local hard = losses.vtc{video_emb = v, text_emb = t, tau = 0.1}
  local eye = losses.vtc{video_emb = v, text_emb = t, tau = 0.1, W = torch.eye(B)}
  T.close(eye:item(), hard:item(), {atol = 1e-6})
end)

T.test('weighted_vtc: mean of group tokens, eq 7 sums the directions', function()
  torch.manual_seed(3)
  local B = 3
  local g, t = torch.randn(B, 4, 6), torch.randn(B, 6)
  local W = torch.tensor({{0.6, 0.4, 0}, {0, 0.8, 0.2}, {0.3, 0, 0.7}})
  local loss, parts = losses.weighted_vtc{group_tokens = g, text_emb = t, Wv = W, tau = 0.2}
  -- reference: f_v = mean of the group tokens, computed by loops
  local gt, f = g:double():totable(), {}
  for i = 1, B do
    f[i] = {}
    for k = 1, 6 do
      local s = 0
      for m = 1, 4 do s = s + gt[i][m][k] end
      f[i][k] = s / 4
    end
  end
  local fv = torch.tensor(f, {dtype = torch.float64})
  local Wl = W:double():totable()
  local Wc = W:t():double():totable()
  local expected = ce_reference(fv, t, 0.2, Wl) + ce_reference(t, fv, 0.2, Wc)
  T.close(loss:item(), expected, {atol = 1e-5, rtol = 1e-5})
  T.close(parts.v2t:item() + parts.t2v:item(), expected, {atol = 1e-5, rtol = 1e-5})
  local mean = losses.weighted_vtc({group_tokens = g, text_emb = t, Wv = W, tau = 0.2}, {directions = 'mean'})
  T.close(mean:item(), expected / 2, {atol = 1e-5, rtol = 1e-5})
  T.raises(function() losses.weighted_vtc{group_tokens = g, text_emb = t} end, "'Wv'")
end)

T.test('vtc: local rows against gathered columns equal the full batch', function()
  torch.manual_seed(4)
  local G, R = 6, 2
  local B = G / R
  local v_full = torch.randn(G, 5, {dtype = torch.float64, requires_grad = true})
  local t_full = torch.randn(G, 5, {dtype = torch.float64, requires_grad = true})
  local full = losses.vtc{video_emb = v_full, text_emb = t_full, tau = 0.1}
  local gv_full, gt_full = table.unpack(torch.autograd.grad(full, {v_full, t_full}))
  -- differentiable gather (columns keep their graph): the mean over ranks of the
  -- per-rank losses is the full loss, so the gradients agree too
  local sum = nil
  for r = 0, R - 1 do
    local l = losses.vtc({video_emb = v_full:narrow(0, r * B, B), text_emb = t_full:narrow(0, r * B, B),
                          gather = T.gatherer({video_emb = v_full, text_emb = t_full}, r, B), tau = 0.1},
                         {splice_local = false})
    sum = sum and (sum + l) or l
  end
  T.close((sum / R):item(), full:item(), {atol = 1e-10})
  local gv, gt = table.unpack(torch.autograd.grad(sum / R, {v_full, t_full}))
  T.close(gv, gv_full, {atol = 1e-10})
  T.close(gt, gt_full, {atol = 1e-10})
  -- detached gathered columns: the local block is spliced in, the value is the
  -- same and the local rows get the gradient of their rows and own columns
  local v_all, t_all = v_full:detach(), t_full:detach()
  local vl = v_all:narrow(0, B, B):clone(); vl.requires_grad = true
  local tl = t_all:narrow(0, B, B):clone(); tl.requires_grad = true
  local cols = {video_emb = v_all, text_emb = t_all}
  local l1 = losses.vtc{video_emb = vl, text_emb = tl, gather = T.gatherer(cols, 1, B), tau = 0.1}
  T.close(l1:item(), ce_reference(vl, t_all, 0.1, nil, B) / 2 + ce_reference(tl, v_all, 0.1, nil, B) / 2, {atol = 1e-10})
  -- reference gradient: the same loss written with explicit constant columns
  local function manual(vv, tt)
    local vc = torch.cat({v_all:narrow(0, 0, B), vv}, 0)  -- rank 1 of 2: the last block
    local tc = torch.cat({t_all:narrow(0, 0, B), tt}, 0)
    local function unit(x) return x / x:norm(2, {1}, true) end
    local target = torch.arange(B) + B
    local a = torch.cross_entropy_loss(torch.matmul(unit(vv), unit(tc):t()) / 0.1, target)
    local b = torch.cross_entropy_loss(torch.matmul(unit(tt), unit(vc):t()) / 0.1, target)
    return (a + b) / 2
  end
  local g1 = torch.autograd.grad(l1, {vl, tl})
  local g2 = torch.autograd.grad(manual(vl, tl), {vl, tl})
  T.close(g1[1], g2[1], {atol = 1e-10})
  T.close(g1[2], g2[2], {atol = 1e-10})
  -- a middle rank of three: columns [0, 2) gathered, [2, 4) local, [4, 6) gathered
  local v3, t3 = torch.randn(6, 4), torch.randn(6, 4)
  local full3 = losses.vtc{video_emb = v3, text_emb = t3, tau = 0.3}
  local sum3 = 0
  for r = 0, 2 do
    sum3 = sum3 + losses.vtc{video_emb = v3:narrow(0, 2 * r, 2):clone(), text_emb = t3:narrow(0, 2 * r, 2):clone(),
                             gather = T.gatherer({video_emb = v3, text_emb = t3}, r, 2), tau = 0.3}:item()
  end
  T.close(sum3 / 3, full3:item(), {atol = 1e-5})
  -- a gatherer that places the local rows outside its columns, or disagrees
  -- between keys, or returns no tensor, is refused naming the key
  T.raises(function() losses.vtc{video_emb = vl, text_emb = tl, gather = T.gatherer(cols, 3, B)} end,
           "kinema.losses.vtc: rank offset 9 must place the 3 local rows of 'text_emb' inside its 6 gathered rows")
  T.raises(function()
    losses.vtc{video_emb = vl, text_emb = tl, gather = T.gatherer({text_emb = t_all, video_emb = v_all:narrow(0, 0, 5)}, 0, B)}
  end, "kinema.losses.vtc: gathered 'video_emb' (5 rows, rank offset 0) disagrees with the other columns (6 rows, rank offset 0)")
  T.raises(function() losses.vtc{video_emb = vl, text_emb = tl, gather = function() return 3, 0 end} end,
           "kinema.losses.vtc: the gatherer returned number for 'text_emb', not a 2-d tensor like it")
  T.raises(function() losses.vtc{video_emb = vl, text_emb = tl, gather = 'all'} end,
           "kinema.losses.vtc: input 'gather' (the column gatherer) must be a function, got string")
end)

T.test('vtc and weighted_vtc gradcheck (float64)', function()
  torch.manual_seed(5)
  local W = torch.tensor({{0.7, 0.3, 0}, {0, 1, 0}, {0.4, 0, 0.6}}, {dtype = torch.float64})
  T.gradcheck(function(v, t, tau) return losses.vtc{video_emb = v, text_emb = t, tau = tau} end,
              {torch.randn(3, 4, {dtype = torch.float64}), torch.randn(3, 4, {dtype = torch.float64}),
               torch.tensor(0.3, {dtype = torch.float64})})
  T.gradcheck(function(g, t) return losses.weighted_vtc{group_tokens = g, text_emb = t, Wv = W, tau = 0.5} end,
              {torch.randn(3, 2, 4, {dtype = torch.float64}), torch.randn(3, 4, {dtype = torch.float64})})
end)

T.test('vtc: input errors name the objective and key', function()
  local v = torch.randn(3, 4)
  T.raises(function() losses.vtc{text_emb = v} end, "kinema.losses.vtc: input 'video_emb'")
  T.raises(function() losses.vtc{video_emb = v, text_emb = torch.randn(2, 4)} end, "'text_emb'")
  T.raises(function() losses.vtc{video_emb = v, text_emb = v, Wv = torch.ones(3, 2)} end, "'Wv'")
  T.raises(function() losses.vtc({video_emb = v, text_emb = v}, {directions = 'max'}) end, 'directions')
end)
