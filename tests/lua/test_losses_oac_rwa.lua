-- OA-Trans OAC (eq 3-5) and DemoVLP RWA (eq 6-12) against loop references;
-- the RWA retrieval scores; the distributed split; gradcheck.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function dot(a, b) local s = 0; for k = 1, #a do s = s + a[k] * b[k] end; return s end
local function cos(a, b)
  return dot(a, b) / (math.max(math.sqrt(dot(a, a)), 1e-8) * math.max(math.sqrt(dot(b, b)), 1e-8))
end
local function rows(x) return x:detach():double():totable() end

-- Mean over rows i of CE(L[i][.] , target i + offset), L given as a Lua matrix.
local function ce(L, offset)
  offset = offset or 0
  local total = 0
  for i = 1, #L do
    local m = -math.huge
    for _, x in ipairs(L[i]) do m = math.max(m, x) end
    local z = 0
    for _, x in ipairs(L[i]) do z = z + math.exp(x - m) end
    total = total - (L[i][i + offset] - m - math.log(z))
  end
  return total / #L
end
local function cos_logits(a, b, tau)
  local L = {}
  for i = 1, #a do
    L[i] = {}
    for j = 1, #b do L[i][j] = cos(a[i], b[j]) / tau end
  end
  return L
end

T.test('oac matches the loop reference; lambda is a parameter', function()
  torch.manual_seed(0)
  local B, d, tau = 4, 6, 0.1
  local v, t, tags, masked = torch.randn(B, d), torch.randn(B, d), torch.randn(B, d), torch.randn(B, d)
  local V, Tx, Tg, Mk = rows(v), rows(t), rows(tags), rows(masked)
  local vtc = (ce(cos_logits(V, Tx, tau)) + ce(cos_logits(Tx, V, tau))) / 2
  local tag = ce(cos_logits(Tg, V, tau))      -- tags i -> videos j
  local mask = ce(cos_logits(Mk, Tx, tau))    -- masked frame i -> captions j
  local inputs = {video_emb = v, text_emb = t, tag_emb = tags, masked_video_emb = masked, tau = tau}
  local loss, parts = losses.oac(inputs)
  T.close(parts.vtc:item(), vtc, {atol = 1e-5, rtol = 1e-5})
  T.close(parts.tag:item(), tag, {atol = 1e-5, rtol = 1e-5})
  T.close(parts.mask:item(), mask, {atol = 1e-5, rtol = 1e-5})
  T.close(loss:item(), vtc + 0.5 * (tag + mask), {atol = 1e-5, rtol = 1e-5})
  T.close(losses.oac(inputs, {lambda = 2}):item(), vtc + 2 * (tag + mask), {atol = 1e-4, rtol = 1e-5})
end)

T.test('oac: distributed rows and gradcheck', function()
  torch.manual_seed(1)
  local G, B = 4, 2
  local v, t, tags, masked = torch.randn(G, 3), torch.randn(G, 3), torch.randn(G, 3), torch.randn(G, 3)
  local full = losses.oac{video_emb = v, text_emb = t, tag_emb = tags, masked_video_emb = masked, tau = 0.2}
  local sum = 0
  for r = 0, 1 do
    sum = sum + losses.oac{video_emb = v:narrow(0, r * B, B), text_emb = t:narrow(0, r * B, B),
                           tag_emb = tags:narrow(0, r * B, B), masked_video_emb = masked:narrow(0, r * B, B),
                           gather = T.gatherer({video_emb = v, text_emb = t}, r, B), tau = 0.2}:item()
  end
  T.close(sum / 2, full:item(), {atol = 1e-5})
  T.gradcheck(function(a, b, c, e) return losses.oac{video_emb = a, text_emb = b, tag_emb = c, masked_video_emb = e, tau = 0.3} end,
              {torch.randn(3, 4, {dtype = torch.float64}), torch.randn(3, 4, {dtype = torch.float64}),
               torch.randn(3, 4, {dtype = torch.float64}), torch.randn(3, 4, {dtype = torch.float64})})
  T.raises(function() losses.oac{video_emb = v, text_emb = t, tag_emb = tags} end, "kinema.losses.oac: input 'masked_video_emb'")
end)

-- DemoVLP's thresholded attention from query tokens q over key tokens k (valid
-- ones only): mean over queries of cos(q, sum of the kept weights * k).
local function attend_score(q, k, lambda)
  if #q == 0 or #k == 0 then return 0 end
  local s = 0
  for _, qn in ipairs(q) do
    local w, z = {}, 0
    for l, kl in ipairs(k) do w[l] = math.exp(lambda * cos(qn, kl)); z = z + w[l] end
    local mean = 0
    for l = 1, #k do w[l] = w[l] / z; mean = mean + w[l] / #k end
    local attended = {}
    for c = 1, #qn do attended[c] = 0 end
    for l, kl in ipairs(k) do
      if w[l] > mean then
        for c = 1, #qn do attended[c] = attended[c] + w[l] * kl[c] end
      end
    end
    s = s + cos(qn, attended)
  end
  return s / #q
end

local function valid(x, mask)
  x, mask = rows(x), mask:totable()
  local out = {}
  for b = 1, #x do
    out[b] = {}
    for n = 1, #x[b] do if mask[b][n] then out[b][#out[b] + 1] = x[b][n] end end
  end
  return out
end

T.test('rwa matches the loop reference; retrieval scores', function()
  torch.manual_seed(2)
  local B, N, L, d = 3, 4, 5, 6
  local v, t = torch.randn(B, d), torch.randn(B, d)
  local r, w = torch.randn(B, N, d), torch.randn(B, L, d)
  local rm = torch.tensor({{true, true, true, false}, {true, false, true, true}, {true, true, true, true}})
  local wm = torch.tensor({{false, true, true, true, false}, {false, true, true, false, false}, {false, true, true, true, true}})
  local lambda, tau = 4.0, 0.1
  local R, W = valid(r, rm), valid(w, wm)
  local S, Sp = {}, {}  -- S[i][j] video i -> caption j; Sp[j][i] caption j -> video i
  for i = 1, B do S[i] = {}; Sp[i] = {} end
  for i = 1, B do
    for j = 1, B do
      S[i][j] = attend_score(R[i], W[j], lambda)
      Sp[j][i] = attend_score(W[j], R[i], lambda)
    end
  end
  local function scaled(M, s)
    local out = {}
    for i = 1, #M do out[i] = {}; for j = 1, #M[i] do out[i][j] = M[i][j] / s end end
    return out
  end
  local V, Tx = rows(v), rows(t)
  local vtc = (ce(cos_logits(V, Tx, tau)) + ce(cos_logits(Tx, V, tau))) / 2
  local v2t, t2v = ce(scaled(S, tau)), ce(scaled(Sp, tau))
  local inputs = {video_emb = v, text_emb = t, regions = r, region_mask = rm, words = w, word_mask = wm, tau = tau}
  local loss, parts = losses.rwa(inputs, {lambda = lambda})
  T.close(parts.vtc:item(), vtc, {atol = 1e-5, rtol = 1e-5})
  T.close(parts.local_v2t:item(), v2t, {atol = 1e-4, rtol = 1e-5})
  T.close(parts.local_t2v:item(), t2v, {atol = 1e-4, rtol = 1e-5})
  T.close(loss:item(), vtc + v2t + t2v, {atol = 1e-4, rtol = 1e-5})
  -- sigma separate from tau, and the weights
  local l2 = losses.rwa(inputs, {lambda = lambda, sigma = 0.5, global_weight = 2, local_weight = 0.5})
  T.close(l2:item(), 2 * vtc + 0.5 * (ce(scaled(S, 0.5)) + ce(scaled(Sp, 0.5))), {atol = 1e-4, rtol = 1e-5})
  -- ranking scores: global cosine + mean of the two local directions
  local scores = losses.rwa_retrieval_scores(inputs, {lambda = lambda})
  local expected = {}
  for i = 1, B do
    expected[i] = {}
    for j = 1, B do expected[i][j] = cos(V[i], Tx[j]) + (S[i][j] + Sp[j][i]) / 2 end
  end
  T.close(scores, torch.tensor(expected), {atol = 1e-5})
end)

T.test('rwa: distributed rows equal the full batch; gradcheck', function()
  torch.manual_seed(3)
  local G, B, N, L, d = 4, 2, 3, 3, 4
  local v, t = torch.randn(G, d), torch.randn(G, d)
  local r, w = torch.randn(G, N, d), torch.randn(G, L, d)
  local rm = torch.rand(G, N):gt(0.3); rm[{{}, 0}] = true
  local wm = torch.rand(G, L):gt(0.3); wm[{{}, 1}] = true
  local full = losses.rwa{video_emb = v, text_emb = t, regions = r, region_mask = rm, words = w, word_mask = wm, tau = 0.2}
  local sum = 0
  for k = 0, 1 do
    local function part(x) return x:narrow(0, k * B, B) end
    sum = sum + losses.rwa{video_emb = part(v), text_emb = part(t), regions = part(r), region_mask = part(rm),
                           words = part(w), word_mask = part(wm), tau = 0.2,
                           gather = T.gatherer({video_emb = v, text_emb = t, regions = r, region_mask = rm, words = w,
                                                word_mask = wm}, k, B)}:item()
  end
  T.close(sum / 2, full:item(), {atol = 1e-5})
  local rm2 = torch.tensor({{true, true}, {true, false}})
  local wm2 = torch.tensor({{true, true, false}, {true, true, true}})
  T.gradcheck(function(a, b, rr, ww)
    return losses.rwa({video_emb = a, text_emb = b, regions = rr, region_mask = rm2, words = ww, word_mask = wm2, tau = 0.3},
                      {lambda = 2})
  end, {torch.randn(2, 3, {dtype = torch.float64}), torch.randn(2, 3, {dtype = torch.float64}),
        torch.randn(2, 2, 3, {dtype = torch.float64}), torch.randn(2, 3, 3, {dtype = torch.float64})})
  T.raises(function() losses.rwa{video_emb = v, text_emb = t, regions = r, words = torch.randn(G, L, d + 1)} end, "'words'")
  T.raises(function() losses.rwa{video_emb = v, text_emb = t, regions = r} end, "kinema.losses.rwa: input 'words'")
end)
