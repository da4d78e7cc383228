-- S-ViLM temporal grouping (eq 1-2) and spatial grounding (eq 3-6) against
-- loop references, closed forms, the distributed split, gradcheck.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function dot(a, b) local s = 0; for k = 1, #a do s = s + a[k] * b[k] end; return s end
local function cos(a, b)
  return dot(a, b) / (math.max(math.sqrt(dot(a, a)), 1e-8) * math.max(math.sqrt(dot(b, b)), 1e-8))
end
local function mean_of(vectors)
  local out = {}
  for k = 1, #vectors[1] do
    local s = 0
    for _, v in ipairs(vectors) do s = s + v[k] end
    out[k] = s / #vectors
  end
  return out
end

-- tokens [B][T][P][d] (Lua tables), mask [B][Nt]
local function grouping_reference(tokens, mask, tau, criterion)
  local total = 0
  for b = 1, #tokens do
    local Tn, Nt = #tokens[b], #mask[b]
    local per = Tn / Nt
    local clips = {}
    for c = 1, Nt do
      local frames = {}
      for f = (c - 1) * per + 1, c * per do frames[#frames + 1] = mean_of(tokens[b][f]) end
      clips[c] = mean_of(frames)
    end
    local fg, bg = {}, {}
    for c = 1, Nt do if mask[b][c] == 1 then fg[#fg + 1] = clips[c] else bg[#bg + 1] = clips[c] end end
    local zf, zb = mean_of(fg), mean_of(bg)
    local s = 0
    for c = 1, Nt do
      local eb, ef = math.exp(cos(clips[c], zb) / tau), math.exp(cos(clips[c], zf) / tau)
      local a = {eb / (eb + ef), ef / (eb + ef)}
      local y = {1 - mask[b][c], mask[b][c]}
      for k = 1, 2 do
        if criterion == 'bce' then
          s = s - (y[k] * math.log(a[k]) + (1 - y[k]) * math.log(1 - a[k]))
        else
          s = s + (a[k] - y[k]) ^ 2
        end
      end
    end
    total = total + s / (2 * Nt)
  end
  return total / #tokens
end

T.test('grouping matches the loop reference (MSE and BCE, every input form)', function()
  torch.manual_seed(0)
  local B, Tn, P, d = 3, 8, 4, 5
  local tokens = torch.randn(B, Tn, P, d)
  local mask = torch.tensor({{1, 1, 0, 0}, {0, 1, 1, 1}, {0, 0, 1, 0}}, {dtype = torch.int64})
  for _, criterion in ipairs({'mse', 'bce'}) do
    local expected = grouping_reference(tokens:double():totable(), mask:totable(), 0.2, criterion)
    local opts = {tau = 0.2, criterion = criterion}
    T.close(losses.grouping({mask = mask, video_tokens = tokens}, opts):item(), expected, {atol = 1e-6, rtol = 1e-5})
    T.close(losses.grouping({mask = mask:bool(), frame_features = tokens:mean(2)}, opts):item(), expected, {atol = 1e-6, rtol = 1e-5})
    local clips = tokens:mean(2):reshape({B, 4, 2, d}):mean(2)
    T.close(losses.grouping({mask = mask, clip_features = clips}, opts):item(), expected, {atol = 1e-6, rtol = 1e-5})
    -- [B,T,H,W,d] tokens pool the same way
    T.close(losses.grouping({mask = mask, video_tokens = tokens:reshape({B, Tn, 2, 2, d})}, opts):item(), expected,
            {atol = 1e-6, rtol = 1e-5})
  end
end)

T.test('grouping: perfectly separated clips give the closed form', function()
  -- foreground clips = e1, background clips = e2: cos to own centre 1, to the other 0
  local e1, e2 = {1, 0, 0}, {0, 1, 0}
  local clips = torch.tensor({{e1, e1, e2, e2, e1}})
  local mask = torch.tensor({{1, 1, 0, 0, 1}})
  local tau = 0.25
  local a = 1 / (1 + math.exp(-1 / tau))  -- the right entry of softmax([1, 0] / tau)
  local loss, parts = losses.grouping({mask = mask, clip_features = clips}, {tau = tau})
  T.close(loss:item(), (1 - a) ^ 2, {atol = 1e-7})
  T.close(parts.accuracy:item(), 1)
  local bce = losses.grouping({mask = mask, clip_features = clips}, {tau = tau, criterion = 'bce'})
  T.close(bce:item(), -math.log(a), {atol = 1e-6})
end)

T.test('grouping: gradcheck and errors', function()
  torch.manual_seed(1)
  local mask = torch.tensor({{1, 0, 1}, {0, 0, 1}})
  T.gradcheck(function(z) return losses.grouping({mask = mask, clip_features = z}, {tau = 0.3}) end,
              {torch.randn(2, 3, 4, {dtype = torch.float64})})
  T.gradcheck(function(z) return losses.grouping({mask = mask, clip_features = z}, {tau = 0.3, criterion = 'bce'}) end,
              {torch.randn(2, 3, 4, {dtype = torch.float64})})
  T.raises(function() losses.grouping{mask = torch.tensor({{1, 1, 1}}), clip_features = torch.randn(1, 3, 4)} end,
           'kinema.losses.grouping: every row of \'mask\'')
  T.raises(function() losses.grouping{mask = mask, frame_features = torch.randn(2, 4, 4)} end, 'do not split into 3 clips')
  T.raises(function() losses.grouping({mask = mask, clip_features = torch.randn(2, 3, 4)}, {criterion = 'l1'}) end, 'criterion')
end)

-- G[i][j] by loops from eq 3.
local function grounding_matrix(groups, nouns, nmask, tau_g)
  local G = {}
  for i = 1, #groups do
    G[i] = {}
    for j = 1, #nouns do
      local s, k_count = 0, 0
      for k = 1, #nouns[j] do
        if nmask[j][k] then
          local w, z = {}, 0
          for m = 1, #groups[i] do w[m] = math.exp(cos(groups[i][m], nouns[j][k]) / tau_g); z = z + w[m] end
          local attended = {}
          for c = 1, #nouns[j][k] do
            local a = 0
            for m = 1, #groups[i] do a = a + w[m] / z * groups[i][m][c] end
            attended[c] = a
          end
          s = s + cos(nouns[j][k], attended)
          k_count = k_count + 1
        end
      end
      G[i][j] = k_count > 0 and s / k_count or 0
    end
  end
  return G
end

local function soft_ce_rows(L, W)
  local total = 0
  for i = 1, #L do
    local m = -math.huge
    for _, x in ipairs(L[i]) do m = math.max(m, x) end
    local z = 0
    for _, x in ipairs(L[i]) do z = z + math.exp(x - m) end
    for j = 1, #L[i] do total = total - W[i][j] * (L[i][j] - m - math.log(z)) end
  end
  return total / #L
end

T.test('grounding matches the loop reference (soft targets, missing nouns)', function()
  torch.manual_seed(2)
  local B, M, K, d = 3, 4, 3, 5
  local g, n = torch.randn(B, M, d), torch.randn(B, K, d)
  local nmask = torch.tensor({{true, true, false}, {false, false, true}, {true, true, true}})
  local W = {{0.6, 0.4, 0}, {0, 0.75, 0.25}, {0.5, 0, 0.5}}
  local tau, tau_g = 0.1, 0.3
  local G = grounding_matrix(g:double():totable(), n:double():totable(), nmask:totable(), tau_g)
  local Lv, Lc, Wc = {}, {}, {}
  for i = 1, B do
    Lv[i], Lc[i], Wc[i] = {}, {}, {}
    for j = 1, B do Lv[i][j] = G[i][j] / tau; Lc[i][j] = G[j][i] / tau; Wc[i][j] = W[j][i] end
  end
  local v2c, c2v = soft_ce_rows(Lv, W), soft_ce_rows(Lc, Wc)
  local loss, parts, extra = losses.grounding({group_tokens = g, nouns = n, noun_mask = nmask, Wv = torch.tensor(W), tau = tau},
                                              {tau_g = tau_g})
  T.close(extra.similarity, torch.tensor(G, {dtype = torch.float64}):float(), {atol = 1e-5})
  T.close(parts.v2c:item(), v2c, {atol = 1e-5, rtol = 1e-5})
  T.close(parts.c2v:item(), c2v, {atol = 1e-5, rtol = 1e-5})
  T.close(loss:item(), v2c + c2v, {atol = 1e-5, rtol = 1e-5})
  -- eq 4: without W the diagonal
  local I = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
  local hard = losses.grounding({group_tokens = g, nouns = n, noun_mask = nmask, tau = tau}, {tau_g = tau_g})
  T.close(hard:item(), soft_ce_rows(Lv, I) + soft_ce_rows(Lc, I), {atol = 1e-5, rtol = 1e-5})
end)

T.test('grounding: local rows against gathered columns equal the full batch', function()
  torch.manual_seed(3)
  local G, R, M, K, d = 4, 2, 3, 2, 4
  local B = G / R
  local g = torch.randn(G, M, d, {dtype = torch.float64, requires_grad = true})
  local n = torch.randn(G, K, d, {dtype = torch.float64, requires_grad = true})
  local nmask = torch.tensor({{true, false}, {true, true}, {false, true}, {true, true}})
  local W = torch.tensor({{0.5, 0.5, 0, 0}, {0, 0.7, 0.3, 0}, {0, 0, 0.9, 0.1}, {0.2, 0, 0, 0.8}}, {dtype = torch.float64})
  local full = losses.grounding({group_tokens = g, nouns = n, noun_mask = nmask, Wv = W, tau = 0.2}, {tau_g = 0.5})
  local total
  for r = 0, R - 1 do
    local l = losses.grounding({group_tokens = g:narrow(0, r * B, B), nouns = n:narrow(0, r * B, B),
                                noun_mask = nmask:narrow(0, r * B, B),
                                gather = T.gatherer({group_tokens = g:detach(), nouns = n:detach(), noun_mask = nmask}, r, B),
                                Wv = W:narrow(0, r * B, B),
                                Wc = W:t():narrow(0, r * B, B), tau = 0.2}, {tau_g = 0.5})
    total = total and (total + l) or l
  end
  T.close((total / R):item(), full:item(), {atol = 1e-10})
  -- the local block of the gathered mask is always the local mask: rank 0's
  -- gathered mask marks the other rank's nouns all valid
  local m2 = nmask:clone(); m2[{{2, 4}}] = true
  local full2 = losses.grounding({group_tokens = g, nouns = n, noun_mask = m2, Wv = W, tau = 0.2}, {tau_g = 0.5})
  local l0 = losses.grounding({group_tokens = g:narrow(0, 0, B), nouns = n:narrow(0, 0, B), noun_mask = nmask:narrow(0, 0, B),
                               gather = T.gatherer({group_tokens = g:detach(), nouns = n:detach(),
                                                    noun_mask = torch.ones({G, K}, {dtype = torch.bool})}, 0, B),
                               Wv = W:narrow(0, 0, B), Wc = W:t():narrow(0, 0, B), tau = 0.2}, {tau_g = 0.5})
  local l1 = losses.grounding({group_tokens = g:narrow(0, B, B), nouns = n:narrow(0, B, B), noun_mask = m2:narrow(0, B, B),
                               gather = T.gatherer({group_tokens = g:detach(), nouns = n:detach(), noun_mask = m2}, 1, B),
                               Wv = W:narrow(0, B, B), Wc = W:t():narrow(0, B, B), tau = 0.2}, {tau_g = 0.5})
  T.close(((l0 + l1) / 2):item(), full2:item(), {atol = 1e-10})
end)

T.test('grounding gradcheck (float64) through the op, including tau', function()
  torch.manual_seed(4)
  local nmask = torch.tensor({{true, false}, {true, true}})
  local W = torch.tensor({{0.8, 0.2}, {0.3, 0.7}}, {dtype = torch.float64})
  T.gradcheck(function(g, n, tau)
    return losses.grounding({group_tokens = g, nouns = n, noun_mask = nmask, Wv = W, tau = tau}, {tau_g = 0.5})
  end, {torch.randn(2, 3, 4, {dtype = torch.float64}), torch.randn(2, 2, 4, {dtype = torch.float64}),
        torch.tensor(0.3, {dtype = torch.float64})})
  T.raises(function() losses.grounding{group_tokens = torch.randn(2, 3, 4), nouns = torch.randn(2, 2, 5)} end, "'nouns'")
  T.raises(function() losses.grounding({group_tokens = torch.randn(2, 3, 4), nouns = torch.randn(2, 2, 4)}, {tau_g = -1}) end,
           'tau_g')
end)
