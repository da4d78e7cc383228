-- Caption decoding from a prefix language-model head, generic over the model:
--   step_fn(tokens [R, t] int64) -> log-probabilities of the next token [R, V]
-- (the caller closes over the video features and the fusion encoder; rows are hypotheses).
-- tokens reach step_fn on the CPU (move them to the model's device inside step_fn); the
-- returned log-probabilities may live anywhere.
-- Token ids are 0-based vocabulary indices. Sequences start from `bos` (a number, repeated
-- batch_size times) or from `prefix` (an int64 [B, t0] tensor, e.g. a prompt).
local torch = require 'torch'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

local function start_tokens(opts, fn)
  if opts.prefix ~= nil then
    check(torch.is_tensor(opts.prefix) and opts.prefix:dim() == 2 and opts.prefix:size(1) >= 1,
          "%s: 'prefix' must be an int64 [B, t0] tensor with t0 >= 1", fn)
    return opts.prefix:to(torch.int64):cpu()
  end
  check(type(opts.bos) == 'number', "%s: give 'bos' (a token id) or 'prefix' (a tensor)", fn)
  local b = opts.batch_size or 1
  return torch.full({b, 1}, opts.bos, {dtype = torch.int64})
end

local function call_step(step_fn, tokens, fn)
  local logp = step_fn(tokens)
  check(torch.is_tensor(logp) and logp:dim() == 2 and logp:size(0) == tokens:size(0),
        '%s: step_fn must return [%d, V] log-probabilities, got %s', fn, tokens:size(0),
        torch.is_tensor(logp) and tostring(logp.shape) or type(logp))
  logp = logp:detach():to(torch.float64):cpu()  -- the search's bookkeeping lives on the CPU
  check(not logp:isnan():any():item(), '%s: step_fn returned NaN', fn)
  return logp
end

local function common_opts(opts, fn)
  check(type(opts) == 'table', '%s: opts table required', fn)
  check(type(opts.eos) == 'number', "%s: 'eos' (a token id) is required", fn)
  check(type(opts.max_len) == 'number' and opts.max_len >= 1,
        "%s: 'max_len' (the most tokens to generate) must be >= 1", fn)
end

-- greedy_decode(step_fn, {bos | prefix, batch_size, eos, max_len, pad = eos})
-- -> tokens [B, t0 + L] (the start tokens, then the generated ones; after eos, pad),
--    scores [B] (summed log-probabilities of the generated tokens, eos included),
--    lengths (Lua array: generated tokens per row, eos included).
function M.greedy_decode(step_fn, opts)
  common_opts(opts, 'greedy_decode')
  return torch.no_grad(function()
    local tokens = start_tokens(opts, 'greedy_decode')
    local b = tokens:size(0)
    local pad = opts.pad or opts.eos
    local finished = torch.zeros({b}, {dtype = torch.bool})
    local scores = torch.zeros({b}, {dtype = torch.float64})
    local lengths = torch.zeros({b}, {dtype = torch.int64})
    for _ = 1, opts.max_len do
      local logp = call_step(step_fn, tokens, 'greedy_decode')
      local best, next_tok = logp:max{dim = 1}
      local alive = finished:logical_not()
      scores = scores + torch.where(alive, best, torch.zeros_like(best))
      lengths = lengths + alive:to(torch.int64)
      next_tok = torch.where(alive, next_tok, torch.full_like(next_tok, pad))
      tokens = torch.cat({tokens, next_tok:view({-1, 1})}, 1)
      finished = finished:logical_or(next_tok:eq(opts.eos))
      if finished:all():item() then break end
    end
    local lens = lengths:totable()
    return tokens, scores, lens
  end)
end

-- beam_search(step_fn, {beam_size = 4, max_len, length_penalty = 1, bos | prefix, batch_size,
--                       eos, pad = eos})
-- -> tokens [B, t0 + L] (best hypothesis per batch row, padded with pad), scores [B] (its
--    length-normalised log-probability), lengths (Lua array of generated lengths, eos included).
-- Hypotheses are ranked by sum(log p) / len^length_penalty (len counts generated tokens, eos
-- included; length_penalty = 0 ranks by the raw sum). Each step expands every live beam and keeps
-- the 2K best candidates: those ending in eos among the top K join the finished pool, the rest
-- refill the K live beams. A row stops once it has K finished hypotheses and no live beam could
-- beat the worst of them at the current length; at max_len live beams count as finished.
function M.beam_search(step_fn, opts)
  common_opts(opts, 'beam_search')
  local k = opts.beam_size or 4
  check(type(k) == 'number' and k >= 1 and k % 1 == 0, "beam_search: 'beam_size' must be a positive integer")
  local lp = opts.length_penalty or 1
  local pad = opts.pad or opts.eos
  return torch.no_grad(function()
    local start = start_tokens(opts, 'beam_search')
    local b, t0 = start:size(0), start:size(1)
    local tokens = start:repeat_interleave(k, {dim = 0})  -- rows b*k .. b*k+k-1 belong to row b
    local beam_scores = {}
    for i = 1, b * k do beam_scores[i] = ((i - 1) % k == 0) and 0 or -math.huge end
    local finished, done = {}, {}
    for i = 1, b do finished[i] = {} end
    local function add_finished(pool, raw, len, row_tokens)
      pool[#pool + 1] = {score = raw / (len ^ lp), len = len, tokens = row_tokens}
      table.sort(pool, function(x, y) return x.score > y.score end)
      if #pool > k then pool[#pool] = nil end
    end
    for step = 1, opts.max_len do
      local logp = call_step(step_fn, tokens, 'beam_search')
      local v = logp:size(1)
      local cand = (torch.tensor(beam_scores, {dtype = torch.float64}):view({-1, 1}) + logp):view({b, k * v})
      local top_v, top_i = cand:topk(math.min(2 * k, k * v), {dim = 1})
      top_v, top_i = top_v:totable(), top_i:totable()
      local rows, toks, next_scores = {}, {}, {}
      local prev = nil
      for bi = 1, b do
        local live = {}
        if not done[bi] then
          for j = 1, #top_v[bi] do
            local s = top_v[bi][j]
            if s > -math.huge then
              local beam, tok = math.floor(top_i[bi][j] / v), top_i[bi][j] % v
              local row = (bi - 1) * k + beam
              if tok == opts.eos then
                if j <= k then
                  prev = prev or tokens:totable()
                  local seq = {unpack(prev[row + 1])}
                  seq[#seq + 1] = tok
                  add_finished(finished[bi], s, step, seq)
                end
              elseif #live < k then
                live[#live + 1] = {row = row, tok = tok, score = s}
              end
            end
          end
          if step == opts.max_len then
            prev = prev or tokens:totable()
            for _, h in ipairs(live) do
              local seq = {unpack(prev[h.row + 1])}
              seq[#seq + 1] = h.tok
              add_finished(finished[bi], h.score, step, seq)
            end
          end
          local pool = finished[bi]
          if #live == 0 then
            done[bi] = true
          elseif #pool >= k and pool[#pool].score >= live[1].score / (step ^ lp) then
            done[bi] = true
          end
        end
        for j = 1, k do  -- rows of finished batch entries keep running as inert -inf beams
          local h = (not done[bi]) and live[j] or nil
          rows[#rows + 1] = h and h.row or (bi - 1) * k
          toks[#toks + 1] = h and h.tok or pad
          next_scores[#next_scores + 1] = h and h.score or -math.huge
        end
      end
      local all_done = true
      for bi = 1, b do all_done = all_done and done[bi] == true end
      if all_done or step == opts.max_len then break end
      tokens = torch.cat({tokens:index_select(0, torch.tensor(rows, {dtype = torch.int64})),
                          torch.tensor(toks, {dtype = torch.int64}):view({-1, 1})}, 1)
      beam_scores = next_scores
    end
    local width = t0
    for bi = 1, b do
      check(#finished[bi] > 0, 'beam_search: batch row %d produced no hypothesis', bi - 1)
      width = math.max(width, #finished[bi][1].tokens)
    end
    local out, scores, lengths = {}, {}, {}
    for bi = 1, b do
      local best = finished[bi][1]
      local seq = {unpack(best.tokens)}
      for _ = #seq + 1, width do seq[#seq + 1] = pad end
      out[bi], scores[bi], lengths[bi] = seq, best.score, best.len
    end
    return torch.tensor(out, {dtype = torch.int64}), torch.tensor(scores, {dtype = torch.float64}), lengths
  end)
end

return M
