-- kinema.eval.zero_shot: a recipe's model evaluated on its test split (the spec
-- kinema.recipe describes: spec.embed, spec.match, spec.caption, spec.loader_options):
--   zero_shot        retrieval R@K / MedR and hard-negative caption accuracy, with
--                    the per-item outcomes behind them
--   hard_negatives, pair_scores   the hard-negative pairs under each scoring
--   captioning       BLEU / ROUGE-L / CIDEr-D of the recipe's captioning head
--   results_table    the markdown table of the metrics, one row per recipe
--   hard_negative_intervals, format_interval, chance_note   the hard-negative
--                    accuracies with their 95% intervals, and whether they beat chance
--   dropped_note, cat_embeddings, index_embeddings, normalize
local torch = require 'torch'
local rdata = require 'kinema.recipe_data'
local retrieval = require 'kinema.eval.retrieval'
local caption = require 'kinema.eval.caption'
local stats = require 'kinema.eval.stats'

local M = {}

local function fail(fmt, ...) error('kinema.eval: ' .. string.format(fmt, ...), 0) end

local function normalize(x) return x / x:norm(2, {-1}, true):clamp_min(1e-12) end

local function global_of(E) return torch.is_tensor(E) and E or E.global end

-- Chunks of captions of cfg.eval.batch_size with their gallery rows:
-- fn(ids, mask, rows [n] int64) -> scores [n]; returns the scores concatenated.
local function score_captions(cfg, tok, captions, video_rows, fn)
  local parts = {}
  for s = 1, #captions, cfg.eval.batch_size do
    local chunk = {}
    for j = s, math.min(#captions, s + cfg.eval.batch_size - 1) do chunk[#chunk + 1] = captions[j] end
    local ids, mask = tok:encode_batch(chunk, cfg.text_len)
    parts[#parts + 1] = fn(ids, mask, video_rows:narrow(0, s - 1, #chunk)):reshape({-1}):to(torch.float64)
  end
  return torch.cat(parts, 0)
end

-- The two scorings of a (caption, its video) pair: 'cosine' of the global
-- embeddings (every recipe), and 'match', the recipe's own matching function
-- where it has one (spec.match.score(model, video_rows, ids, mask, cfg) -> [n],
-- video_rows the rows of what spec.match.video, or else spec.embed.video, made):
-- STOA's VTM head probability, DemoVLP's global + local similarity (spec.match.name
-- names it in the printed verdict against chance).
local function pair_scorers(model, cfg, spec, V, Vm)
  local scorers = {cosine = function(ids, mask, rows)
    local E = global_of(spec.embed.text(model, ids, mask, cfg))
    return (E * global_of(V):index_select(0, rows)):sum(-1)
  end}
  if spec.match then
    scorers.match = function(ids, mask, rows)
      return spec.match.score(model, M.index_embeddings(Vm or V, rows), ids, mask, cfg)
    end
  end
  return scorers
end

-- Accuracy in percent per kind and over all pairs: {noun =, verb =, ..., all =}
-- (won[k] = 1 when found[k]'s positive scored strictly higher).
local function pair_accuracy(found, won)
  local wins, totals, all = {}, {}, 0
  for k, p in ipairs(found) do
    wins[p.kind] = (wins[p.kind] or 0) + won[k]
    totals[p.kind] = (totals[p.kind] or 0) + 1
    all = all + won[k]
  end
  local out = {all = 100 * all / #found}
  for kind, n in pairs(totals) do out[kind] = 100 * wins[kind] / n end
  return out
end

-- Per video, the share of its hard-negative pairs of each kind won, and of
-- all its pairs: {noun = [N], verb = [N], all = [N]} float64 in [0, 1] (N: the
-- videos with pairs of that kind, in gallery order).
local function per_video_wins(found, won)
  local sums, counts = {all = {}}, {all = {}}
  for k, p in ipairs(found) do
    for _, kind in ipairs({p.kind, 'all'}) do
      sums[kind], counts[kind] = sums[kind] or {}, counts[kind] or {}
      sums[kind][p.row] = (sums[kind][p.row] or 0) + won[k]
      counts[kind][p.row] = (counts[kind][p.row] or 0) + 1
    end
  end
  local out = {}
  for kind, by_row in pairs(counts) do
    local rows = {}
    for row in pairs(by_row) do rows[#rows + 1] = row end
    table.sort(rows)
    local shares = {}
    for i, row in ipairs(rows) do shares[i] = sums[kind][row] / by_row[row] end
    out[kind] = torch.tensor(shares, {dtype = torch.float64})
  end
  return out
end

-- Embedding-cosine scores of captions against their own gallery rows (the run report's hard-negative pairs).
function M.pair_scores(model, cfg, spec, tok, V, captions, rows)
  local ids, mask = tok:encode_batch(captions, cfg.text_len)
  return pair_scorers(model, cfg, spec, V).cosine(ids, mask, rows)
end

-- Accuracy on the hard-negative caption pairs (the positive caption must score
-- above its edited negative against the same video) under each scoring of
-- pair_scorers, per kind and over all pairs, or nil when the test data has no
-- hard-negative file. Returns metrics {noun, verb, ..., all [, match_noun,
-- ..., match_all]} in percent, pairs (their number), and the per-video outcomes behind them (same
-- keys, [N] in [0, 1]: the share of that video's pairs won).
function M.hard_negatives(model, cfg, spec, tok, V, ids, Vm)
  local path = rdata.data_source(cfg, 'test').hard_negatives
  if not path then return nil end
  local found = rdata.read_hard_negatives(path, ids)
  if #found == 0 then return nil end
  -- each distinct (video, positive) scored once
  local key_of, positives, positive_rows, pos_index = {}, {}, {}, {}
  local negatives, negative_rows = {}, {}
  for k, p in ipairs(found) do
    local key = p.row .. '\0' .. p.positive
    if not key_of[key] then
      positives[#positives + 1] = p.positive
      positive_rows[#positive_rows + 1] = p.row
      key_of[key] = #positives
    end
    pos_index[k] = key_of[key] - 1
    negatives[k], negative_rows[k] = p.negative, p.row
  end
  local function rows(list) return torch.tensor(list, {dtype = torch.int64}) end
  return torch.no_grad(function()
    local metrics, items = {pairs = #found}, {}
    for scoring, fn in pairs(pair_scorers(model, cfg, spec, V, Vm)) do
      local prefix = scoring == 'cosine' and '' or (scoring .. '_')
      local pos = score_captions(cfg, tok, positives, rows(positive_rows), fn):index_select(0, rows(pos_index))
      local neg = score_captions(cfg, tok, negatives, rows(negative_rows), fn)
      local won = pos:gt(neg):to(torch.int64):totable()
      for k, v in pairs(pair_accuracy(found, won)) do metrics[prefix .. k] = v end
      for k, v in pairs(per_video_wins(found, won)) do items[prefix .. k] = v end
    end
    return metrics, items
  end)
end

-- Zero-shot retrieval on the test split (test_ds: the dataset, read here when
-- absent), and hard-negative caption accuracy when the data has a
-- hard-negative file. Returns flat metrics (t2v_R1 ..., v2t_..., hard_noun,
-- hard_verb, hard_all, with the recipe's own matching hard_match_noun ..., hard_pairs,
-- num_test_videos, dropped_test_videos), the per-item outcomes behind the R@K
-- and hard-negative metrics ({metric = [N] float64}) and the test videos left
-- out under --eval.drop_unreadable ({id =, error =}).
function M.zero_shot(model, cfg, spec, tok, test_ds)
  local ds = test_ds or rdata.dataset(cfg, 'test')
  local loader = rdata.loader(cfg, ds, 'test', spec.loader_options(cfg, tok, 'test'))
  local videos, texts, ids, match_videos, dropped = {}, {}, {}, {}, {}
  model:eval()
  local ok, err = pcall(torch.no_grad, function()
    for batch in loader:iter(0) do
      for i, id in ipairs(batch.dropped_ids or {}) do dropped[#dropped + 1] = {id = id, error = batch.dropped_errors[i]} end
      if #batch.indices > 0 then
        videos[#videos + 1] = spec.embed.video(model, batch, cfg)
        texts[#texts + 1] = spec.embed.text(model, batch.ids, batch.mask, cfg)
        if spec.match and spec.match.video then match_videos[#match_videos + 1] = spec.match.video(model, batch, cfg) end
        for _, id in ipairs(batch.id) do ids[#ids + 1] = id end
      end
    end
  end)
  loader:close()
  if not ok then model:train(); error(err, 0) end
  if #ids == 0 then model:train(); fail('every test video was unreadable (%d dropped)', #dropped) end
  local V, Tt = M.cat_embeddings(videos), M.cat_embeddings(texts)
  local Vm = #match_videos > 0 and M.cat_embeddings(match_videos) or nil
  local score = spec.embed.score
  local sim = retrieval.similarity(Tt, V, {score_fn = score and function(q, g) return score(model, q, g, cfg) end})
  local metrics = retrieval.retrieval(sim)
  metrics.num_test_videos = #ids
  metrics.dropped_test_videos = #dropped
  -- per-item outcomes for confidence intervals (kinema.eval.stats): hits of each query at K
  local items = {}
  local t2v_ranks, v2t_ranks = retrieval.ranks(sim)
  for _, k in ipairs({1, 5, 10}) do
    items['t2v_R' .. k] = t2v_ranks:le(k):to(torch.float64)
    items['v2t_R' .. k] = v2t_ranks:le(k):to(torch.float64)
  end
  local hard, hard_items = M.hard_negatives(model, cfg, spec, tok, V, ids, Vm)
  for k, v in pairs(hard or {}) do metrics['hard_' .. k] = v end
  for k, v in pairs(hard_items or {}) do items['hard_' .. k] = v end
  model:train()
  return metrics, items, dropped
end

-- The line under a results table naming the test videos evaluation left out.
function M.dropped_note(dropped)
  if not dropped or #dropped == 0 then return nil end
  local names = {}
  for i = 1, math.min(#dropped, 10) do names[i] = string.format("'%s' (%s)", dropped[i].id, dropped[i].error) end
  return string.format('%d unreadable test video(s) left out (--eval.drop_unreadable): %s%s', #dropped,
                       table.concat(names, '; '), #dropped > 10 and '; ...' or '')
end

-- Captioning on the test split for a recipe with spec.caption (STOA's PLM
-- head): greedy (beam_size 1) or beam decoding, scored against the test
-- captions with BLEU-1..4, ROUGE-L and CIDEr-D as the COCO evaluation does.
function M.captioning(model, cfg, spec, tok, opts)
  if not spec.caption then fail("recipe '%s' has no captioning head", spec.name) end
  local ds = rdata.dataset(cfg, 'test')
  local loader = rdata.loader(cfg, ds, 'test', spec.loader_options(cfg, tok, 'test'))
  local candidates, references = {}, {}
  model:eval()
  torch.no_grad(function()
    for batch in loader:iter(0) do
      if #batch.indices == 0 then goto continue end
      local caps = spec.caption(model, batch, cfg, tok, opts)
      for i, id in ipairs(batch.id) do
        candidates[id] = caps[i]
        references[id] = {batch.caption[i]}
      end
      ::continue::
    end
  end)
  loader:close()
  model:train()
  return caption.evaluate(candidates, references), candidates
end

-- Embeddings are tensors [B,E] or tables of batch-first tensors.
function M.cat_embeddings(list)
  if torch.is_tensor(list[1]) then return torch.cat(list, 0) end
  local out = {}
  for k, v in pairs(list[1]) do
    if torch.is_tensor(v) then
      local parts = {}
      for i, e in ipairs(list) do parts[i] = e[k] end
      out[k] = torch.cat(parts, 0)
    end
  end
  return out
end

function M.index_embeddings(E, index)
  if torch.is_tensor(E) then return E:index_select(0, index) end
  local out = {}
  for k, v in pairs(E) do out[k] = v:index_select(0, index) end
  return out
end

M.normalize = normalize

-- A metric with its 95% interval ({mean =, lo =, hi =}, kinema.eval.stats) as one cell: 'mean [lo, hi]'.
function M.format_interval(e) return string.format('%.1f [%.1f, %.1f]', e.mean, e.lo, e.hi) end

-- The hard-negative accuracies of one run with their 95% intervals, bootstrapped
-- over the test videos (kinema.eval.stats.aggregate on zero_shot's per-video
-- outcomes, as eval_suite does over seeds): {hard_noun = {mean =, lo =, hi =,
-- ...}, hard_match_noun = ..., ...}, or nil without hard negatives.
function M.hard_negative_intervals(metrics, items, opts)
  local run, any = {metrics = {}, items = {}}, false
  for key, outcomes in pairs(items or {}) do
    if key:match('^hard_') and metrics[key] ~= nil then
      run.metrics[key], run.items[key], any = metrics[key], outcomes, true
    end
  end
  return any and stats.aggregate({run}, opts) or nil
end

-- One line saying, per scoring and kind, whether the accuracy on the hard
-- negatives beats chance (50%: the positive and its negative are a coin flip)
-- by its 95% interval; match_name names the recipe's own matching ('match').
function M.chance_note(intervals, match_name)
  local parts = {}
  for _, scoring in ipairs({{'hard_match_', match_name or 'match'}, {'hard_', 'embedding cosine'}}) do
    local kinds = {}
    for _, kind in ipairs({'noun', 'verb'}) do
      local e = intervals[scoring[1] .. kind]
      if e then
        local verdict = e.lo > 50 and 'above chance' or (e.hi < 50 and 'below chance' or 'not above chance')
        kinds[#kinds + 1] = string.format('%ss %s (%s)', kind, verdict, M.format_interval(e))
      end
    end
    if #kinds > 0 then parts[#parts + 1] = scoring[2] .. ': ' .. table.concat(kinds, ', ') end
  end
  if #parts == 0 then return nil end
  return 'hard negatives against chance (50%, 95% interval over the test videos): ' .. table.concat(parts, '; ')
end

-- One row per recipe: R@1/5/10 both directions, MedR, hard-negative accuracy.
M.table_columns = {
  {'t2v_R1', 'T2V R@1'}, {'t2v_R5', 'R@5'}, {'t2v_R10', 'R@10'}, {'t2v_MedR', 'MedR'},
  {'v2t_R1', 'V2T R@1'}, {'v2t_R5', 'R@5'}, {'v2t_R10', 'R@10'}, {'v2t_MedR', 'MedR'},
  {'hard_noun', 'hard noun'}, {'hard_verb', 'hard verb'}, {'hard_all', 'hard all'},
  {'hard_match_noun', 'match noun'}, {'hard_match_verb', 'match verb'}, {'hard_match_all', 'match all'},
}

-- A cell's value is a number or {mean =, lo =, hi =} (shown with its interval).
function M.results_table(results, order)
  local head, rule = {'| recipe'}, {'|---'}
  for _, c in ipairs(M.table_columns) do head[#head + 1] = c[2]; rule[#rule + 1] = '---:' end
  local lines = {table.concat(head, ' | ') .. ' |', table.concat(rule, '|') .. '|'}
  for _, name in ipairs(order) do
    local m = results[name]
    local row = {'| ' .. name}
    for _, c in ipairs(M.table_columns) do
      local v = m[c[1]]
      row[#row + 1] = v == nil and '-' or (type(v) == 'table' and M.format_interval(v) or string.format('%.1f', v))
    end
    lines[#lines + 1] = table.concat(row, ' | ') .. ' |'
  end
  return table.concat(lines, '\n')
end

return M
