-- OTA and ASP (STOA eq 6-9) against a reference that matches by brute force
-- over all assignments, with P = softmax over targets of cos computed in
-- loops; closed-form tiny cases; detached text side; gradcheck.
local T = require 'kinema.test'
local losses = require('kinema').losses

local function dot(a, b) local s = 0; for k = 1, #a do s = s + a[k] * b[k] end; return s end
local function unit(a)
  local n = math.max(math.sqrt(dot(a, a)), 1e-8)
  local out = {}
  for k = 1, #a do out[k] = a[k] / n end
  return out
end

-- Best injective assignment maximising sum P[r][c]; returns pairs {r, c} (1-based).
local function brute_force(P, R, C)
  local best, best_pairs = -math.huge, nil
  local used = {}
  local function rec(k, acc, pairs)
    local small = math.min(R, C)
    if k > small then
      if acc > best then best, best_pairs = acc, {table.unpack(pairs)} end
      return
    end
    for other = 1, math.max(R, C) do
      if not used[other] then
        used[other] = true
        local r, c = k, other
        if R > C then r, c = other, k end
        pairs[k] = {r, c}
        rec(k + 1, acc + P[r][c], pairs)
        used[other] = false
      end
    end
    pairs[k] = nil
  end
  rec(1, 0, {})
  return best_pairs, best
end

-- One sample: rows and targets as Lua lists of vectors.
local function sample_loss(rows, targets)
  local P = {}
  for r = 1, #rows do
    local logits, z = {}, 0
    for c = 1, #targets do logits[c] = math.exp(dot(unit(rows[r]), unit(targets[c]))); z = z + logits[c] end
    P[r] = {}
    for c = 1, #targets do P[r][c] = logits[c] / z end
  end
  local pairs, total = brute_force(P, #rows, #targets)
  local loss = 0
  for _, p in ipairs(pairs) do
    local a, b = unit(rows[p[1]]), unit(targets[p[2]])
    local s = 0
    for k = 1, #a do s = s + (a[k] - b[k]) ^ 2 end
    loss = loss + s / #a
  end
  return loss / #pairs, pairs, total
end

local function ota_reference(o, omask, nouns, nmask, cls)
  o, omask, nouns, nmask, cls = o:double():totable(), omask:totable(), nouns:double():totable(), nmask:totable(), cls:double():totable()
  local total, count, all_pairs = 0, 0, {}
  for b = 1, #o do
    local rows, targets = {}, {}
    for n = 1, #o[b] do if omask[b][n] then rows[#rows + 1] = o[b][n] end end
    for k = 1, #nouns[b] do if nmask[b][k] then targets[#targets + 1] = nouns[b][k] end end
    targets[#targets + 1] = cls[b]
    if #rows > 0 then
      local l, pairs = sample_loss(rows, targets)
      total, count = total + l, count + 1
      all_pairs[b] = pairs
    end
  end
  return total / count, all_pairs
end

-- The op's pairs (0-based, -1 padded) equal the brute-force pairs (1-based).
local function check_pairs(rows, cols, expected)
  rows, cols = rows:totable(), cols:totable()
  for b, want in pairs(expected) do
    local got, n_got = {}, 0
    for k = 1, #rows[b] do
      if rows[b][k] >= 0 then got[rows[b][k] + 1] = cols[b][k] + 1; n_got = n_got + 1 end
    end
    for _, p in ipairs(want) do T.eq(got[p[1]], p[2], string.format('sample %d row %d', b, p[1])) end
    T.eq(n_got, #want, 'number of pairs of sample ' .. b)
  end
end

T.test('ota matches the brute-force reference (masks, R < C and R > C)', function()
  torch.manual_seed(0)
  local B, N, K, d = 4, 4, 3, 5
  local o = torch.randn(B, N, d)
  local omask = torch.tensor({{true, true, true, true}, {true, false, true, false}, {false, true, false, false},
                              {true, true, true, false}})
  local nouns = torch.randn(B, K, d)
  local nmask = torch.tensor({{true, true, true}, {false, true, false}, {true, false, true}, {false, false, false}})
  local cls = torch.randn(B, d)
  local loss, parts, extra = losses.ota{trajectories = o, trajectory_mask = omask, nouns = nouns, noun_mask = nmask,
                                        text_cls = cls}
  local expected, pairs = ota_reference(o, omask, nouns, nmask, cls)
  T.close(loss:item(), expected, {atol = 1e-6, rtol = 1e-5})
  check_pairs(extra.rows, extra.cols, pairs)
  T.close(parts.pairs, (4 + 2 + 1 + 1) / 4)
end)

T.test('ota: 2 x 2 with an obvious matching gives zero; the matching is by P not order', function()
  local e1, e2 = {1, 0, 0}, {0, 1, 0}
  local o = torch.tensor({{e1, e2}})
  -- targets [noun = e2 ; cls = e1]: row 0 -> cls (col 1), row 1 -> noun (col 0)
  local loss, _, extra = losses.ota{trajectories = o * 2, nouns = torch.tensor({{e2}}), text_cls = torch.tensor({e1})}
  T.close(loss:item(), 0, {atol = 1e-12})
  T.eq(extra.rows, torch.tensor({{0, 1}}, {dtype = torch.int64}))
  T.eq(extra.cols, torch.tensor({{1, 0}}, {dtype = torch.int64}))
  -- rotating one trajectory by 90 degrees in the (e2, e3) plane: that pair's
  -- squared distance is 2, averaged over 2 pairs and 3 dims -> 2 / 6
  local o2 = torch.tensor({{e1, {0, 0, 1}}})
  local l2 = losses.ota{trajectories = o2, nouns = torch.tensor({{e2}}), text_cls = torch.tensor({e1})}
  T.close(l2:item(), 2 / 6, {atol = 1e-6})
end)

T.test('ota: text side detached, noun positions input, gradcheck', function()
  torch.manual_seed(1)
  local B, N, L, d = 2, 3, 6, 4
  local tokens = torch.randn(B, L, d, {requires_grad = true})
  local cls = torch.randn(B, d, {requires_grad = true})
  local pos = torch.tensor({{1, 4, -1}, {-1, 2, -1}}, {dtype = torch.int64})
  local o = torch.randn(B, N, d, {requires_grad = true})
  local loss = losses.ota{trajectories = o, text_tokens = tokens, noun_positions = pos, text_cls = cls}
  local nouns = torch.stack({torch.stack({tokens[0][1], tokens[0][4], tokens[0][0]}),
                             torch.stack({tokens[1][0], tokens[1][2], tokens[1][0]})}):detach()
  local same = losses.ota{trajectories = o, nouns = nouns, noun_mask = pos:ge(0), text_cls = cls}
  T.close(loss:item(), same:item(), {atol = 1e-6})
  loss:backward()
  T.is_true(tokens.grad == nil and cls.grad == nil, 'no gradient to the text side')
  T.is_true(o.grad:abs():sum():item() > 0)
  local n64, c64 = nouns:double(), cls:detach():double()
  T.gradcheck(function(x) return losses.ota{trajectories = x, nouns = n64, noun_mask = pos:ge(0), text_cls = c64} end,
              {torch.randn(B, N, d, {dtype = torch.float64})})
  T.raises(function() losses.ota{trajectories = o, nouns = nouns} end, "kinema.losses.ota: input 'text_cls'")
  T.raises(function() losses.ota{trajectories = o, nouns = torch.randn(B, 3, d + 1), text_cls = cls} end, "'nouns'")
end)

local function asp_reference(x, verbs, vmask, ids, cls)
  x, verbs, vmask, cls = x:double():totable(), verbs:double():totable(), vmask:totable(), cls:double():totable()
  ids = ids and ids:totable()
  local M = #x[1]
  local total = 0
  for b = 1, #x do
    local targets, seen = {}, {}
    for k = 1, #verbs[b] do
      local id = ids and ids[b][k]
      if vmask[b][k] and not (id and seen[id]) and #targets < M then targets[#targets + 1] = verbs[b][k] end
      if vmask[b][k] and id then seen[id] = true end
    end
    while #targets < M do targets[#targets + 1] = cls[b] end
    total = total + sample_loss(x[b], targets)
  end
  return total / #x
end

T.test('asp matches the brute-force reference (distinct ids, truncation, padding with [CLS])', function()
  torch.manual_seed(2)
  local B, M, K, d = 3, 3, 5, 4
  local x = torch.randn(B, M, d)
  local verbs = torch.randn(B, K, d)
  local vmask = torch.tensor({{true, true, false, true, true}, {false, true, false, false, false}, {true, true, true, true, true}})
  local ids = torch.tensor({{7, 8, 9, 7, 3}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}}, {dtype = torch.int64})
  local cls = torch.randn(B, d)
  local loss, parts = losses.asp{actions = x, verbs = verbs, verb_mask = vmask, verb_ids = ids, text_cls = cls}
  T.close(loss:item(), asp_reference(x, verbs, vmask, ids, cls), {atol = 1e-6, rtol = 1e-5})
  T.close(parts.verbs, (3 + 1 + 3) / 3)  -- sample 0: 7, 8, 3 (the second 7 dropped); sample 2 truncated to M
  local no_ids = losses.asp{actions = x, verbs = verbs, verb_mask = vmask, text_cls = cls}
  T.close(no_ids:item(), asp_reference(x, verbs, vmask, nil, cls), {atol = 1e-6, rtol = 1e-5})
end)

T.test('asp: a caption without verbs matches every action to [CLS]', function()
  torch.manual_seed(3)
  local x, cls = torch.randn(1, 4, 3), torch.randn(1, 3)
  local loss = losses.asp{actions = x, verbs = torch.randn(1, 2, 3), verb_mask = torch.zeros({1, 2}, {dtype = torch.bool}),
                          text_cls = cls}
  local xs, c = x:double():totable()[1], unit(cls:double():totable()[1])
  local expected = 0
  for m = 1, 4 do
    local a = unit(xs[m])
    for k = 1, 3 do expected = expected + (a[k] - c[k]) ^ 2 end
  end
  T.close(loss:item(), expected / 12, {atol = 1e-6})
end)

T.test('asp gradcheck; text side detached', function()
  torch.manual_seed(4)
  local verbs = torch.randn(2, 2, 3, {dtype = torch.float64, requires_grad = true})
  local cls = torch.randn(2, 3, {dtype = torch.float64})
  local vmask = torch.tensor({{true, false}, {true, true}})
  T.gradcheck(function(x) return losses.asp{actions = x, verbs = verbs, verb_mask = vmask, text_cls = cls} end,
              {torch.randn(2, 3, 3, {dtype = torch.float64})})
  local loss = losses.asp{actions = torch.randn(2, 3, 3, {dtype = torch.float64}), verbs = verbs, verb_mask = vmask, text_cls = cls}
  T.is_true(not loss.requires_grad, 'only the text side carries graph here, and it is detached')
end)
