-- Shared pieces of the objectives in kinema/losses/: argument checks with
-- messages naming the objective and input key, temperatures, cosine
-- similarities, cross entropies, gathered columns for the distributed case,
-- and the matching-based MSE shared by OTA and ASP. Not an objective itself.
local torch = require 'torch'
local ops = torch.ops.kinema  -- kinema's operators (ops/), through the dispatcher
local util = require 'kinema.util'

local U = {}

U.EPS = 1e-8  -- cosine denominators are clamped to this (as torch.cosine_similarity and kinema.ops)

local function shape_of(x) return torch.is_tensor(x) and tostring(x.shape) or type(x) end

-- inputs[key] must be a tensor of `dims` dimensions (dims nil: any); returns it.
function U.need(loss, inputs, key, dims, what)
  local x = inputs[key]
  if not torch.is_tensor(x) then
    error(string.format("kinema.losses.%s: input '%s' (%s) is required, got %s", loss, key, what or 'tensor',
                        type(x)), 3)
  end
  if dims and x:dim() ~= dims then
    error(string.format("kinema.losses.%s: input '%s' must be %s, got shape %s", loss, key,
                        what or (dims .. '-d'), shape_of(x)), 3)
  end
  return x
end

function U.optional(loss, inputs, key, dims, what)
  if inputs[key] == nil then return nil end
  return U.need(loss, inputs, key, dims, what)
end

-- opts of objective `loss` (nil: {}) with every key among names: a misspelled
-- option raises "kinema.losses.vtc: unknown option 'tua' (did you mean 'tau'?)"
-- at the objective's caller.
function U.options(loss, opts, names)
  return util.check_options('kinema.losses.' .. loss, opts or {}, names, 4)
end

function U.check(cond, loss, fmt, ...)
  if not cond then error('kinema.losses.' .. loss .. ': ' .. string.format(fmt, ...), 3) end
end

function U.same_size(loss, a, an, da, b, bn, db)
  if a:size(da) ~= b:size(db) then
    error(string.format("kinema.losses.%s: '%s' %s and '%s' %s disagree in size (dim %d vs dim %d)", loss, an,
                        shape_of(a), bn, shape_of(b), da, db), 3)
  end
end

-- The contrastive temperature: inputs.tau (tensor or number, e.g. a
-- Temperature block's output), else inputs.logit_scale (CLIP's log(1/tau),
-- clamped to tau in [tau_min, tau_max]), else opts.tau, else `default`.
function U.temperature(loss, inputs, opts, default)
  local tau = inputs.tau
  if tau == nil and inputs.logit_scale ~= nil then
    local ls = inputs.logit_scale
    U.check(torch.is_tensor(ls) and ls:numel() == 1, loss, "input 'logit_scale' must be a one-element tensor")
    tau = (-ls:reshape({})):exp():clamp(opts.tau_min or 0.01, opts.tau_max or 1.0)
  end
  if tau == nil then tau = opts.tau or default end
  if torch.is_tensor(tau) then
    U.check(tau:numel() == 1, loss, "temperature 'tau' must be a one-element tensor, got shape %s", shape_of(tau))
    tau = tau:reshape({})
    -- checked on the CPU only: on an accelerator the test would sync every step
    if tau.device.type == 'cpu' then U.check(tau:detach():gt(0):item(), loss, "temperature 'tau' must be positive") end
  else
    U.check(type(tau) == 'number' and tau > 0, loss, "temperature 'tau' must be a positive number, got %s",
            tostring(tau))
  end
  return tau
end

function U.number(tau) return torch.is_tensor(tau) and tau:detach():item() or tau end

-- Rows scaled to unit L2 norm (norm clamped to EPS).
function U.unit(x) return x / x:norm(2, {-1}, true):clamp_min(U.EPS) end

-- [Ba, Bb] cosine similarities of the rows of a [Ba,d] and b [Bb,d].
function U.cosine_matrix(a, b) return torch.matmul(U.unit(a), U.unit(b):t()) end

-- Mean over rows of -sum_j targets[i,j] * log_softmax(logits[i,:])_j.
function U.soft_cross_entropy(logits, targets)
  return -(targets:to(logits.dtype) * logits:log_softmax(-1)):sum(-1):mean()
end

function U.cross_entropy(logits, target) return torch.cross_entropy_loss(logits, target) end

-- Targets of local rows against global columns: column offset + i for row i.
function U.diagonal_targets(rows, offset, device)
  return torch.arange(rows, {dtype = torch.int64, device = device}) + offset
end

-- The global columns of the distributed case, gathered by the objective
-- itself. inputs.gather, when given, is the injected gatherer
--   gather(key, x) -> all [G, ...], offset
-- returning the rows of every rank for this rank's tensor x (the input `key`
-- or a value derived from it) and where this rank's rows sit among them
-- (kinema.dist.column_gatherer() across processes; a test may return fixed
-- tensors). `entries` lists what the objective compares across ranks:
-- {key, x} or {key, x, mask_key, mask} (mask a bool [B, n] over x's rows).
-- Returns {key = [G, ...]} with the local block replaced by x, so the gradient
-- reaches the local rows through the columns too (opts.splice_local = false
-- keeps the gathered tensor as given), {mask_key = [G, n] bool} with the local
-- block always the local mask, and the offset. Without a gatherer: the local
-- tensors and offset 0.
local function splice(all, x, offset)
  local B, G = x:size(0), all:size(0)
  local pieces = {}
  if offset > 0 then pieces[#pieces + 1] = all:narrow(0, 0, offset) end
  pieces[#pieces + 1] = x:to(all.dtype)
  if offset + B < G then pieces[#pieces + 1] = all:narrow(0, offset + B, G - offset - B) end
  return torch.cat(pieces, 0)
end

function U.global_columns(loss, inputs, opts, entries)
  local gather = inputs.gather
  local out = {}
  if gather == nil then
    for _, e in ipairs(entries) do
      out[e[1]] = e[2]
      if e[3] ~= nil then out[e[3]] = e[4] end
    end
    return out, 0
  end
  U.check(type(gather) == 'function', loss, "input 'gather' (the column gatherer) must be a function, got %s",
          type(gather))
  local offset, G
  local function gathered(key, x)
    local all, off = gather(key, x)
    U.check(torch.is_tensor(all) and all:dim() == x:dim(), loss,
            "the gatherer returned %s for '%s', not a %d-d tensor like it", shape_of(all), key, x:dim())
    for d = 1, x:dim() - 1 do U.same_size(loss, x, key, d, all, 'gathered ' .. key, d) end
    local B, rows = x:size(0), all:size(0)
    U.check(type(off) == 'number' and off >= 0 and off == math.floor(off) and off + B <= rows, loss,
            "rank offset %s must place the %d local rows of '%s' inside its %d gathered rows", tostring(off), B, key,
            rows)
    U.check(offset == nil or (off == offset and rows == G), loss,
            "gathered '%s' (%d rows, rank offset %d) disagrees with the other columns (%d rows, rank offset %d)",
            key, rows, off, G or 0, offset or 0)
    offset, G = off, rows
    return all
  end
  for _, e in ipairs(entries) do
    local key, x, mask_key, mask = e[1], e[2], e[3], e[4]
    local all = gathered(key, x)
    out[key] = opts.splice_local == false and all or splice(all, x, offset)
    if mask_key ~= nil then out[mask_key] = splice(gathered(mask_key, mask):ne(0), mask, offset) end
  end
  return out, offset
end

-- Soft targets W over the columns: [B, G] as given, or this rank's [B, B]
-- block (G > B: zero weight on the other ranks' columns) placed at offset.
function U.soft_targets(loss, W, key, offset, G)
  if W == nil then return nil end
  U.check(torch.is_tensor(W) and W:dim() == 2, loss, "soft targets '%s' must be a 2-d tensor, got %s", key, shape_of(W))
  if W:size(1) == G or W:size(1) ~= W:size(0) then return W end
  local out = torch.zeros({W:size(0), G}, {dtype = W.dtype, device = W.device})
  out:narrow(1, offset, W:size(1)):copy_(W)
  return out
end

-- Combines the two directions of a symmetric loss: 'mean' or 'sum'.
function U.directions(loss, a, b, mode)
  if mode == 'mean' then return (a + b) / 2 end
  if mode == 'sum' then return a + b end
  U.check(false, loss, "option 'directions' must be 'mean' or 'sum', got %s", tostring(mode))
end

-- The value a contrastive loss over `columns` candidates takes when every
-- logit is equal (log columns per direction), combined like U.directions:
-- the 'trivial' part objectives report for kinema.diagnostics.
function U.trivial_contrastive(columns, mode)
  return math.log(columns) * (mode == 'sum' and 2 or 1)
end

-- Entropy (nats) of the labels' empirical distribution with the Miller-Madow
-- bias correction (+ (distinct - 1) / 2n; Miller 1955): the cross entropy of
-- the best context-free (unigram) predictor, a token classifier's trivial value.
function U.label_entropy(labels)
  local n = labels:numel()
  if n == 0 then return 0 end
  local counts = labels:reshape({n}):to('cpu'):bincount()
  counts = counts:masked_select(counts:gt(0))
  local p = counts:to(torch.float64) / n
  return -(p * p:log()):sum():item() + (counts:numel() - 1) / (2 * n)
end

-- A bool mask [B,K] from an optional input (nil: all valid).
function U.mask(loss, inputs, key, B, K, device)
  local m = inputs[key]
  if m == nil then return torch.ones({B, K}, {dtype = torch.bool, device = device}) end
  U.check(torch.is_tensor(m) and m:dim() == 2 and m:size(0) == B and m:size(1) == K, loss,
          "input '%s' must be [%d, %d], got %s", key, B, K, shape_of(m))
  return m:ne(0)
end

-- Rows of x [B,K,...] reordered so the valid ones (mask [B,K] true) come
-- first, in their original order; returns the reordered x and counts [B].
function U.compact(x, mask)
  local K = mask:size(1)
  local key = mask:logical_not():to(torch.int64) * K + torch.arange(K, {dtype = torch.int64, device = mask.device})
  local _, order = torch.sort(key, 1)
  local idx = order
  local shape = x:size()
  for _ = 3, #shape do idx = idx:unsqueeze(-1) end
  idx = idx:expand(shape)
  return x:gather(1, idx), mask:sum(1)
end

-- STOA's matching objective (OTA eq 6-7, ASP eq 8-9) on padded batches:
-- rows [B,R,d] with row_counts [B] valid leading rows, targets [B,C,d] with
-- col_counts [B] valid leading rows (detached here: the text side is frozen).
-- P = softmax over the valid targets of sim(row, target), sim the dot product
-- (opts.match_sim = 'dot', the default, as the authors' code) or the cosine
-- ('cos'); a matching maximising the total P (ops.linear_assignment,
-- no gradient); loss = mean over samples with at least one pair of the MSE
-- between the matched raw rows and targets (averaged over pairs and
-- dimensions). opts.normalize = true L2-normalises both first: that form is
-- (2/d)(1 - cos), about d/2 times weaker, kept for ablations.
-- info.trivial: the loss of the best constant prediction, every row the
-- (pair-weighted) mean of the matched targets, i.e. their variance: a loss
-- that stays there has learnt nothing about which target a sample has.
function U.matching_mse(loss_name, rows, row_counts, targets, col_counts, opts)
  opts = opts or {}
  local match_sim = opts.match_sim or 'dot'
  U.check(match_sim == 'dot' or match_sim == 'cos', loss_name, "option 'match_sim' must be 'dot' or 'cos', got %s",
          tostring(match_sim))
  U.check(opts.normalize == nil or type(opts.normalize) == 'boolean', loss_name,
          "option 'normalize' must be true or false, got %s", tostring(opts.normalize))
  local B, C = targets:size(0), targets:size(1)
  targets = targets:detach()
  local probability, r, c = torch.no_grad(function()
    local a, b = rows:detach(), targets
    if match_sim == 'cos' then a, b = U.unit(a), U.unit(b) end
    local sim = torch.matmul(a, b:transpose(1, 2))
    local col_valid = torch.arange(C, {dtype = torch.int64, device = rows.device}):view({1, 1, C})
                        :lt(col_counts:view({B, 1, 1}))
    local p = sim:masked_fill(col_valid:logical_not(), -math.huge):softmax(-1)
    p = p:masked_fill(col_valid:logical_not(), 0)
    return p, ops.linear_assignment(p, row_counts, col_counts, true)
  end)
  local o, t = rows, targets
  if opts.normalize then o, t = U.unit(rows), U.unit(targets) end
  local valid = r:ge(0)
  local d = rows:size(2)
  local npairs = r:size(1)
  local ri = r:clamp_min(0):unsqueeze(-1):expand({B, npairs, d})
  local ci = c:clamp_min(0):unsqueeze(-1):expand({B, npairs, d})
  local om, tm = o:gather(1, ri), t:gather(1, ci)
  local per_pair = (om - tm):pow(2):mean(-1)                       -- [B, P]
  local pairs_per_sample = valid:sum(1)
  local per_sample = (per_pair * valid:to(per_pair.dtype)):sum(1) / pairs_per_sample:clamp_min(1):to(per_pair.dtype)
  local has = pairs_per_sample:gt(0)
  local samples = has:sum()
  local loss = (per_sample * has:to(per_sample.dtype)):sum() / samples:clamp_min(1):to(per_sample.dtype)
  local trivial = torch.no_grad(function()
    -- each pair's weight in the loss: 1 / (its sample's pairs x the samples with
    -- pairs); the weights sum to 1 (to 0 without pairs, giving 0)
    local w = valid:to(torch.float64) / pairs_per_sample:clamp_min(1):to(torch.float64):unsqueeze(1)
    w = w / samples:clamp_min(1):to(torch.float64)
    local tt = tm:detach():to(torch.float64)
    local mean_row = (tt * w:unsqueeze(-1)):sum(0):sum(0)                             -- [d]
    return ((tt - mean_row):pow(2):mean(-1) * w):sum():item()
  end)
  return loss, {pairs = pairs_per_sample:sum():item() / math.max(B, 1), probability = probability,
                rows = r, cols = c, trivial = trivial}
end

-- index_select along dim 0 of a tensor or of every tensor in a table (nested).
function U.select_batch(x, index)
  if x == nil then return nil end
  if torch.is_tensor(x) then return x:index_select(0, index) end
  if type(x) == 'table' then
    local out = {}
    for k, v in pairs(x) do out[k] = U.select_batch(v, index) end
    return out
  end
  return x
end

return U
