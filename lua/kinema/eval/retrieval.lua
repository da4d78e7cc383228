-- Retrieval evaluation: blocked similarity matrices and rank metrics.
--
-- Conventions (the Lua/tensor boundary): similarity matrices are [num_texts, num_videos];
-- `text_to_video` holds, for each text (caption) i, the 0-based column index of its video,
-- either as an int64 tensor [num_texts] or a Lua array of the same 0-based numbers.
--
-- Ties: a query's rank is 1 + the number of candidates with a STRICTLY higher score than the
-- correct one, so a tie never hurts the correct item (optimistic ranking). Ranks are 1-based.
-- NaN scores are rejected, since they compare false with everything and would silently win.
local torch = require 'torch'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

-- Slices rows [start, start+len) of a tensor, or of every tensor field of a table (so a score_fn
-- can receive structured embeddings, e.g. DemoVLP's {global=, regions=, region_mask=}).
local function slice_rows(emb, start, len)
  if torch.is_tensor(emb) then return emb:narrow(0, start, len) end
  local out = {}
  for k, v in pairs(emb) do
    out[k] = torch.is_tensor(v) and v:narrow(0, start, len) or v
  end
  return out
end

local function count_rows(emb, what)
  if torch.is_tensor(emb) then
    check(emb:dim() >= 1, "similarity: argument '%s' must have at least one dim", what)
    return emb:size(0)
  end
  check(type(emb) == 'table', "similarity: argument '%s' must be a tensor or a table of tensors", what)
  local n
  for k, v in pairs(emb) do
    if torch.is_tensor(v) then
      check(n == nil or v:size(0) == n,
            "similarity: fields of '%s' disagree on the number of rows (field '%s' has %d, expected %d)",
            what, tostring(k), v:size(0), n or -1)
      n = v:size(0)
    end
  end
  check(n ~= nil, "similarity: argument '%s' holds no tensor", what)
  return n
end

local function dot_scores(q, g)
  check(torch.is_tensor(q) and torch.is_tensor(g),
        'similarity: table embeddings need opts.score_fn (the default score is a dot product)')
  check(q:dim() == 2 and g:dim() == 2, "similarity: default score needs 2-D embeddings, got %dD and %dD",
        q:dim(), g:dim())
  check(q:size(1) == g:size(1), 'similarity: embedding widths differ (%d vs %d)', q:size(1), g:size(1))
  return torch.matmul(q, g:t())
end

-- similarity(query_emb, gallery_emb, {block = 1024, score_fn = fn(q_block, g_block) -> [bq, bg]})
-- -> [num_queries, num_gallery] float tensor. Blocks over both queries and gallery so that a
-- score_fn with large intermediates (e.g. region-word attention) only ever sees block x block
-- pairs. Runs without autograd. The default score is the dot product (pass normalised embeddings
-- for cosine similarity).
function M.similarity(query_emb, gallery_emb, opts)
  opts = opts or {}
  local block = opts.block or 1024
  check(type(block) == 'number' and block >= 1 and block % 1 == 0,
        "similarity: 'block' must be a positive integer, got %s", tostring(block))
  local score_fn = opts.score_fn or dot_scores
  check(type(score_fn) == 'function', "similarity: 'score_fn' must be a function")
  local nq, ng = count_rows(query_emb, 'query_emb'), count_rows(gallery_emb, 'gallery_emb')
  return torch.no_grad(function()
    local rows = {}
    for qs = 0, nq - 1, block do
      local bq = math.min(block, nq - qs)
      local q = slice_rows(query_emb, qs, bq)
      local cols = {}
      for gs = 0, ng - 1, block do
        local bg = math.min(block, ng - gs)
        local s = score_fn(q, slice_rows(gallery_emb, gs, bg))
        check(torch.is_tensor(s) and s:dim() == 2 and s:size(0) == bq and s:size(1) == bg,
              'similarity: score_fn must return a [%d, %d] tensor for a block, got %s', bq, bg,
              torch.is_tensor(s) and tostring(s.shape) or type(s))
        cols[#cols + 1] = s:detach()
      end
      rows[#rows + 1] = #cols == 1 and cols[1] or torch.cat(cols, 1)
    end
    return #rows == 1 and rows[1] or torch.cat(rows, 0)
  end)
end

-- global_local_score({lambda = 1, local_weight = 1}) -> score_fn for similarity() ranking texts
-- against videos as DemoVLP does, by global + local similarity:
--   score(t, v) = <t.global, v.global> + local_weight * (S(v, t) + S'(t, v)) / 2
-- with S (region -> word) and S' (word -> region) from kinema.ops.rwa_similarity. The paper says
-- "global + local" without naming a direction, so both are averaged (kinema's choice). Queries
-- are texts {global = [Nt, D], words = [Nt, L, D], word_mask = [Nt, L] bool or nil}; the gallery
-- is videos {global = [Nv, D], regions = [Nv, N, D], region_mask = [Nv, N] bool or nil}.
-- Normalise the global embeddings first for a cosine.
function M.global_local_score(opts)
  opts = opts or {}
  local lambda, weight = opts.lambda or 1, opts.local_weight or 1
  local ops = require('kinema').ops
  return function(q, g)
    check(type(q) == 'table' and torch.is_tensor(q.global) and torch.is_tensor(q.words),
          "global_local_score: queries must be {global =, words =, word_mask =}")
    check(type(g) == 'table' and torch.is_tensor(g.global) and torch.is_tensor(g.regions),
          "global_local_score: gallery must be {global =, regions =, region_mask =}")
    local s_rw, s_wr = ops.rwa_similarity(g.regions, g.region_mask, q.words, q.word_mask, lambda)
    return torch.matmul(q.global, g.global:t()) + (s_rw:t() + s_wr) * (weight / 2)
  end
end

-- text_to_video as an int64 tensor; identity (one caption per video) when absent.
local function text_to_video_tensor(t2v, num_texts, num_videos)
  if t2v == nil then
    check(num_texts == num_videos,
          'ranks: sim is %dx%d; a non-square matrix needs text_to_video', num_texts, num_videos)
    return torch.arange(num_texts)
  end
  if not torch.is_tensor(t2v) then
    check(type(t2v) == 'table', "ranks: 'text_to_video' must be an int64 tensor or a Lua array")
    t2v = torch.tensor(t2v, {dtype = torch.int64})
  end
  t2v = t2v:to(torch.int64):reshape({-1})
  check(t2v:size(0) == num_texts, "ranks: 'text_to_video' has %d entries for %d texts",
        t2v:size(0), num_texts)
  if num_texts > 0 then
    check(t2v:min():item() >= 0 and t2v:max():item() < num_videos,
          "ranks: 'text_to_video' entries must be 0-based video indices in [0, %d)", num_videos)
  end
  return t2v
end

-- ranks(sim, text_to_video, {block = 1024}) -> t2v_ranks [num_texts], v2t_ranks [num_videos]
-- (int64 on the CPU, 1-based). Text->video ranks every caption against all videos; video->text
-- ranks all texts for each video and keeps the best-ranked of its correct captions (texts above
-- it count whichever video they describe). Every video needs a caption.
function M.ranks(sim, text_to_video, opts)
  opts = opts or {}
  check(torch.is_tensor(sim) and sim:dim() == 2, "ranks: 'sim' must be a 2-D [num_texts, num_videos] tensor")
  local block = opts.block or 1024
  local nt, nv = sim:size(0), sim:size(1)
  check(nt > 0 and nv > 0, "ranks: 'sim' is empty (%dx%d)", nt, nv)
  local t2v = text_to_video_tensor(text_to_video, nt, nv)
  return torch.no_grad(function()
    sim = sim:detach()
    check(not sim:isnan():any():item(), "ranks: 'sim' contains NaN")
    local correct = sim:gather(1, t2v:to(sim.device):view({-1, 1}))  -- [nt, 1]
    local t2v_parts = {}
    for s = 0, nt - 1, block do
      local b = math.min(block, nt - s)
      t2v_parts[#t2v_parts + 1] = sim:narrow(0, s, b):gt(correct:narrow(0, s, b)):sum{dim = {1}} + 1
    end
    -- Rank is monotonic in the score, so a video's best-ranked correct caption is the correct
    -- caption it scores highest: one count per video instead of one per caption.
    local best = {}
    local vids, scores = t2v:totable(), correct:view({-1}):to(torch.float64):totable()
    for i = 1, nt do
      local v = vids[i] + 1
      if best[v] == nil or scores[i] > best[v] then best[v] = scores[i] end
    end
    for v = 1, nv do
      check(best[v] ~= nil, 'ranks: video %d (0-based) has no caption in text_to_video', v - 1)
    end
    -- compare in the matrix's own dtype: the float64 copy of a float32 score is the same number
    local best_t = torch.tensor(best, {dtype = torch.float64}):to(sim.dtype):to(sim.device):view({-1, 1})
    local sim_t = sim:t()
    local v2t_parts = {}
    for s = 0, nv - 1, block do
      local b = math.min(block, nv - s)
      v2t_parts[#v2t_parts + 1] = sim_t:narrow(0, s, b):gt(best_t:narrow(0, s, b)):sum{dim = {1}} + 1
    end
    return torch.cat(t2v_parts, 0):to(torch.int64):cpu(), torch.cat(v2t_parts, 0):to(torch.int64):cpu()
  end)
end

-- rank_metrics(ranks, {ks = {1, 5, 10}}) -> {R1=, R5=, R10=, MedR=, MeanR=}: R@K in percent;
-- MedR is the median rank, the mean of the two middle ranks for an even count (numpy's median).
function M.rank_metrics(ranks, opts)
  opts = opts or {}
  check(torch.is_tensor(ranks) and ranks:dim() == 1 and ranks:size(0) > 0,
        "rank_metrics: 'ranks' must be a non-empty 1-D tensor")
  local r = ranks:to(torch.float64)
  local out = {}
  for _, k in ipairs(opts.ks or {1, 5, 10}) do
    out['R' .. k] = r:le(k):to(torch.float64):mean():item() * 100
  end
  local sorted = r:sort()
  local n = sorted:size(0)
  local lo, hi = sorted[math.floor((n - 1) / 2)]:item(), sorted[math.floor(n / 2)]:item()
  out.MedR = (lo + hi) / 2
  out.MeanR = r:mean():item()
  return out
end

-- retrieval(sim, {text_to_video =, ks =, block =}) -> flat table {t2v_R1, ..., t2v_MeanR,
-- v2t_R1, ..., v2t_MeanR} for a [num_texts, num_videos] similarity matrix.
function M.retrieval(sim, opts)
  opts = opts or {}
  local t2v_ranks, v2t_ranks = M.ranks(sim, opts.text_to_video, opts)
  local out = {}
  for name, ranks in pairs({t2v = t2v_ranks, v2t = v2t_ranks}) do
    for k, v in pairs(M.rank_metrics(ranks, opts)) do out[name .. '_' .. k] = v end
  end
  return out
end

return M
