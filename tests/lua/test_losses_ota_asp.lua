-- OTA and ASP (STOA eq 6-9) against a reference that matches by brute force
-- over all assignments, with P = softmax over targets of the dot product (or
-- cos) computed in loops, MSE of the raw (or unit) rows; hand-computed tiny
-- cases; detached text side; gradcheck.
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

local function identity(a) return a end

-- One sample: rows and targets as Lua lists of vectors. opts as the
-- objectives': match_sim 'dot' (default) or 'cos', normalize.
local function sample_loss(rows, targets, opts)
  opts = opts or {}
  local sim_form = opts.match_sim == 'cos' and unit or identity
  local mse_form = opts.normalize and unit or identity
  local P = {}
  for r = 1, #rows do
    local logits, z = {}, 0
    for c = 1, #targets do logits[c] = math.exp(dot(sim_form(rows[r]), sim_form(targets[c]))); z = z + logits[c] end
    P[r] = {}
    for c = 1, #targets do P[r][c] = logits[c] / z end
  end
  local pairs, total = brute_force(P, #rows, #targets)
  local loss = 0
  for _, p in ipairs(pairs) do
    local a, b = mse_form(rows[p[1]]), mse_form(targets[p[2]])
    local s = 0
    for k = 1, #a do s = s + (a[k] - b[k]) ^ 2 end
    loss = loss + s / #a
  end
  return loss / #pairs, pairs, total
end

local function ota_reference(o, omask, nouns, nmask, cls, opts)
  o, omask, nouns, nmask, cls = o:double():totable(), omask:totable(), nouns:double():totable(), nmask:totable(), cls:double():totable()
  local total, count, all_pairs = 0, 0, {}
  for b = 1, #o do
    local rows, targets = {}, {}
    for n = 1, #o[b] do if omask[b][n] then rows[#rows + 1] = o[b][n] end end
    for k = 1, #nouns[b] do if nmask[b][k] then targets[#targets + 1] = nouns[b][k] end end
    targets[#targets + 1] = cls[b]
    if #rows > 0 then
      local l, pairs = sample_loss(rows, targets, opts)
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

T.test('ota matches the brute-force reference (masks, R < C and R > C; every option)', function()
  torch.manual_seed(0)
  local B, N, K, d = 4, 4, 3, 5
  local o = torch.randn(B, N, d)
  local omask = torch.tensor({{true, true, true, true}, {true, false, true, false}, {false, true, false, false},
                              {true, true, true, false}})
  local nouns = torch.randn(B, K, d)
  local nmask = torch.tensor({{true, true, true}, {false, true, false}, {true, false, true}, {false, false, false}})
  local cls = torch.randn(B, d)
  local inputs = {trajectories = o, trajectory_mask = omask, nouns = nouns, noun_mask = nmask, text_cls = cls}
  for _, opts in ipairs({{}, {match_sim = 'cos'}, {normalize = true}, {normalize = true, match_sim = 'cos'}}) do
    local what = string.format('match_sim %s normalize %s', tostring(opts.match_sim), tostring(opts.normalize))
    local loss, parts, extra = losses.ota(inputs, opts)
    local expected, pairs = ota_reference(o, omask, nouns, nmask, cls, opts)
    T.close(loss:item(), expected, {atol = 1e-6, rtol = 1e-5}, what)
    check_pairs(extra.rows, extra.cols, pairs)
    T.close(parts.pairs, (4 + 2 + 1 + 1) / 4)
  end
end)

T.test('ota by hand: dot vs cos matching, raw vs normalised MSE, the raw gradient', function()
  -- one trajectory o = (1, 0); targets [noun (10, 10) ; cls (1, 0)].
  -- dot: P = softmax(10, 1) -> the noun; raw MSE ((1-10)^2 + (0-10)^2) / 2 = 90.5
  -- cos: P = softmax(0.7071, 1) -> cls; the rows are equal: 0
  local o = torch.tensor({{{1, 0}}}, {dtype = torch.float64, requires_grad = true})
  local inputs = {trajectories = o, nouns = torch.tensor({{{10, 10}}}, {dtype = torch.float64}),
                  text_cls = torch.tensor({{1, 0}}, {dtype = torch.float64})}
  local loss, _, extra = losses.ota(inputs)
  T.close(loss:item(), 90.5, {atol = 1e-9})
  T.eq(extra.cols, torch.tensor({{0}}, {dtype = torch.int64}))
  loss:backward()
  -- d/do of mean_k (o_k - t_k)^2 = 2 (o - t) / d = (-9, -10)
  T.close(o.grad, torch.tensor({{{-9, -10}}}, {dtype = torch.float64}), {atol = 1e-9})
  local cos_loss, _, cos_extra = losses.ota(inputs, {match_sim = 'cos'})
  T.close(cos_loss:item(), 0, {atol = 1e-12})
  T.eq(cos_extra.cols, torch.tensor({{1}}, {dtype = torch.int64}))
  -- normalised, dot matching: unit rows (1, 0) and (0.7071, 0.7071): ((1 - 0.7071)^2 + 0.5) / 2 = 1 - 1/sqrt(2)
  T.close(losses.ota(inputs, {normalize = true}):item(), 1 - 1 / math.sqrt(2), {atol = 1e-9})
  -- = (2/d)(1 - cos) with d = 2
  T.close(losses.ota(inputs, {normalize = true, match_sim = 'cos'}):item(), 0, {atol = 1e-12})
  T.raises(function() losses.ota(inputs, {match_sim = 'l2'}) end,
           "kinema.losses.ota: option 'match_sim' must be 'dot' or 'cos', got l2")
  T.raises(function() losses.ota(inputs, {normalize = 'yes'}) end,
           "kinema.losses.ota: option 'normalize' must be true or false, got yes")
end)

T.test('ota: 2 x 2 with an obvious matching; the matching is by P not order', function()
  local e1, e2 = {1, 0, 0}, {0, 1, 0}
  local o = torch.tensor({{e1, e2}})
  -- targets [noun = e2 ; cls = e1]: row 0 -> cls (col 1), row 1 -> noun (col 0)
  local loss, _, extra = losses.ota{trajectories = o, nouns = torch.tensor({{e2}}), text_cls = torch.tensor({e1})}
  T.close(loss:item(), 0, {atol = 1e-12})
  T.eq(extra.rows, torch.tensor({{0, 1}}, {dtype = torch.int64}))
  T.eq(extra.cols, torch.tensor({{1, 0}}, {dtype = torch.int64}))
  -- rows scaled by 2: the same matching; raw MSE (1 + 1) / 3 per pair = 2/3, normalised 0
  local scaled = {trajectories = o * 2, nouns = torch.tensor({{e2}}), text_cls = torch.tensor({e1})}
  T.close(losses.ota(scaled):item(), 1 / 3, {atol = 1e-6})
  T.close(losses.ota(scaled, {normalize = true}):item(), 0, {atol = 1e-12})
  -- o = [(2,0,0), (0,0,1)]: dot P row 0 = softmax(0, 2) -> cls, row 1 = (0.5, 0.5) -> the noun;
  -- raw squared distances 1 and 2 over 3 dims, mean over 2 pairs = 0.5; normalised 0 and 2 -> 1/3
  local o2 = torch.tensor({{{2, 0, 0}, {0, 0, 1}}})
  local two = {trajectories = o2, nouns = torch.tensor({{e2}}), text_cls = torch.tensor({e1})}
  T.close(losses.ota(two):item(), 0.5, {atol = 1e-6})
  T.close(losses.ota(two, {normalize = true}):item(), 1 / 3, {atol = 1e-6})
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

local function asp_reference(x, verbs, vmask, ids, cls, opts)
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
    total = total + sample_loss(x[b], targets, opts)
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
  for _, opts in ipairs({{match_sim = 'cos'}, {normalize = true}, {normalize = true, match_sim = 'cos'}}) do
    local l = losses.asp({actions = x, verbs = verbs, verb_mask = vmask, verb_ids = ids, text_cls = cls}, opts)
    T.close(l:item(), asp_reference(x, verbs, vmask, ids, cls, opts), {atol = 1e-6, rtol = 1e-5})
  end
end)

T.test('asp: a caption without verbs matches every action to [CLS]', function()
  torch.manual_seed(3)
  local x, cls = torch.randn(1, 4, 3), torch.randn(1, 3)
  local loss = losses.asp{actions = x, verbs = torch.randn(1, 2, 3), verb_mask = torch.zeros({1, 2}, {dtype = torch.bool}),
                          text_cls = cls}
  local xs, c = x:double():totable()[1], cls:double():totable()[1]
  local expected, expected_unit = 0, 0
  for m = 1, 4 do
    local a, ua, uc = xs[m], unit(xs[m]), unit(c)
    for k = 1, 3 do
      expected = expected + (a[k] - c[k]) ^ 2
      expected_unit = expected_unit + (ua[k] - uc[k]) ^ 2
    end
  end
  T.close(loss:item(), expected / 12, {atol = 1e-6})
  local opts = {normalize = true}
  T.close(losses.asp({actions = x, verbs = torch.randn(1, 2, 3), verb_mask = torch.zeros({1, 2}, {dtype = torch.bool}),
                      text_cls = cls}, opts):item(), expected_unit / 12, {atol = 1e-6})
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

T.test("ota/asp 'trivial': the MSE of the best constant prediction, the matched targets' variance", function()
  local f64 = {dtype = torch.float64}
  local e1, e2, e3 = {1, 0, 0}, {0, 1, 0}, {0, 0, 1}
  -- sample 1: two trajectories, targets [noun e2 ; cls e1], 2 pairs of weight 1/2 x 1/2;
  -- sample 2: one valid trajectory, no noun, targets [cls e3], 1 pair of weight 1/2.
  -- Weighted mean target m = (1/4, 1/4, 1/2); |e1 - m|^2 = |e2 - m|^2 = 14/16, |e3 - m|^2 = 6/16;
  -- trivial = (1/4 14/16 + 1/4 14/16 + 1/2 6/16) / 3 dims = 5/24
  local inputs = {trajectories = torch.randn(2, 2, 3, f64), trajectory_mask = torch.tensor({{true, true}, {true, false}}),
                  nouns = torch.tensor({{e2}, {{0, 0, 0}}}, f64), noun_mask = torch.tensor({{true}, {false}}),
                  text_cls = torch.tensor({e1, e3}, f64)}
  local _, parts = losses.ota(inputs)
  T.close(parts.trivial, 5 / 24, {atol = 1e-12})
  -- every trajectory predicting m: the loss is the trivial value
  inputs.trajectories = torch.tensor({1 / 4, 1 / 4, 1 / 2}, f64):view({1, 1, 3}):expand({2, 2, 3}):contiguous()
  local loss, constant_parts = losses.ota(inputs)
  T.close(loss:item(), 5 / 24, {atol = 1e-12})
  T.close(constant_parts.trivial, 5 / 24, {atol = 1e-12})
  -- ASP: every action is matched, so the mean is that of all targets; a constant
  -- prediction at it scores the trivial value, a prediction of the targets 0
  torch.manual_seed(5)
  local asp_inputs = {actions = torch.randn(3, 2, 4, f64), verbs = torch.randn(3, 3, 4, f64),
                      verb_mask = torch.tensor({{true, true, true}, {true, false, false}, {false, false, false}}),
                      text_cls = torch.randn(3, 4, f64)}
  local _, asp_parts, extra = losses.asp(asp_inputs)
  local t = extra.targets
  local m = t:reshape({-1, 4}):mean(0)
  T.close(asp_parts.trivial, (t - m):pow(2):mean():item(), {atol = 1e-12})
  asp_inputs.actions = m:view({1, 1, 4}):expand({3, 2, 4}):contiguous()
  T.close(losses.asp(asp_inputs):item(), asp_parts.trivial, {atol = 1e-12})
  asp_inputs.actions = t:clone()
  T.close(losses.asp(asp_inputs):item(), 0, {atol = 1e-12})
  -- the normalised form reports the variance of the unit targets
  local _, unit_parts = losses.ota(inputs, {normalize = true})
  T.close(unit_parts.trivial, 5 / 24, {atol = 1e-12})  -- e1, e2, e3 are unit already
end)
