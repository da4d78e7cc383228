-- kinema.eval decoding on hand-made step functions whose best sequences are known.
-- Vocabulary: 0 = bos, 1 = eos, 2 = A, 3 = B, 4 = a second bos (to tell batch rows apart).
local T = require 'kinema.test'
local eval = require('kinema').eval

local EOS = 1

-- A step function from tables of next-token probabilities keyed by the first token and the
-- generated suffix ('' right after bos, '2' after A, '2 3' after A B, ...); a missing entry forces eos.
local function step_from(tables)
  return function(tokens)
    local rows = tokens:totable()
    local out = {}
    for i, row in ipairs(rows) do
      local suffix = table.concat(row, ' ', 2)
      local p = (tables[row[1]] or {})[suffix] or {0, 1, 0, 0, 0}
      local logp = {}
      for j, v in ipairs(p) do logp[j] = math.log(v) end
      out[i] = logp
    end
    return torch.tensor(out, {dtype = torch.float64})
  end
end

-- Greedy takes A (0.6) and ends with p = 0.6 * 0.4 = 0.24; the best sequence is B eos, 0.4 * 0.9 = 0.36
-- (and A A eos = 0.18, A B eos = 0.18, B A eos = B B eos = 0.02).
local TRAP = {[0] = {
  [''] = {0, 0, 0.6, 0.4, 0},
  ['2'] = {0, 0.4, 0.3, 0.3, 0},
  ['3'] = {0, 0.9, 0.05, 0.05, 0},
}}

local function int64(t) return torch.tensor(t, {dtype = torch.int64}) end

T.test('greedy falls into the trap, beam search finds the best sequence', function()
  local step = step_from(TRAP)
  local g_tokens, g_scores, g_lens = eval.greedy_decode(step, {bos = 0, eos = EOS, max_len = 5})
  T.eq(g_tokens, int64({{0, 2, 1}}))
  T.close(g_scores, torch.tensor({math.log(0.24)}, {dtype = torch.float64}), {atol = 1e-12})
  T.eq(g_lens, {2})
  local b_tokens, b_scores, b_lens = eval.beam_search(step, {beam_size = 2, max_len = 5, length_penalty = 0,
                                                              bos = 0, eos = EOS})
  T.eq(b_tokens, int64({{0, 3, 1}}))
  T.close(b_scores, torch.tensor({math.log(0.36)}, {dtype = torch.float64}), {atol = 1e-12})
  T.eq(b_lens, {2})
  -- a beam of one is greedy
  local one = eval.beam_search(step, {beam_size = 1, max_len = 5, length_penalty = 0, bos = 0, eos = EOS})
  T.eq(one, g_tokens)
end)

T.test('length penalty changes the winner', function()
  -- "eos" right away: p = 0.5 (log -0.693); "A eos": 0.5 * 0.9 = 0.45 (log -0.799).
  -- Raw sums prefer the short one; divided by the length (penalty 1): -0.693 vs -0.400.
  local step = step_from({[0] = {[''] = {0, 0.5, 0.5, 0, 0}, ['2'] = {0, 0.9, 0.1, 0, 0}}})
  local raw = eval.beam_search(step, {beam_size = 2, max_len = 4, length_penalty = 0, bos = 0, eos = EOS})
  T.eq(raw, int64({{0, 1}}))
  local normed, scores = eval.beam_search(step, {beam_size = 2, max_len = 4, length_penalty = 1, bos = 0, eos = EOS})
  T.eq(normed, int64({{0, 2, 1}}))
  T.close(scores, torch.tensor({math.log(0.45) / 2}, {dtype = torch.float64}), {atol = 1e-12})
end)

T.test('batched prefixes decode independently; max_len truncates; padding after eos', function()
  -- row 0 starts with bos 0 (the trap), row 1 with bos 4: A then B forever (never eos)
  local tables = {[0] = TRAP[0], [4] = {}}
  for _, suffix in ipairs({'', '2', '2 3', '2 3 3'}) do tables[4][suffix] = {0, 0.1, 0.2, 0.7, 0} end
  tables[4][''] = {0, 0.1, 0.8, 0.1, 0}
  local step = step_from(tables)
  local prefix = int64({{0}, {4}})
  local tokens, scores, lens = eval.beam_search(step, {beam_size = 3, max_len = 3, length_penalty = 0,
                                                       prefix = prefix, eos = EOS, pad = 9})
  -- row 0: B eos (0.36), padded to the batch width with 9; row 1 truncated at 3 tokens: A B B
  -- (0.8 * 0.7 * 0.7 = 0.392 beats every sequence ending in eos: eos 0.1, A eos 0.08, A B eos 0.056,
  -- and B eos 0.1, A A eos 0.16 since a suffix missing from the table forces eos)
  T.eq(tokens, int64({{0, 3, 1, 9}, {4, 2, 3, 3}}))
  T.close(scores, torch.tensor({math.log(0.36), math.log(0.392)}, {dtype = torch.float64}), {atol = 1e-12})
  T.eq(lens, {2, 3})
  local g = eval.greedy_decode(step, {prefix = prefix, eos = EOS, max_len = 3, pad = 9})
  T.eq(g, int64({{0, 2, 1, 9}, {4, 2, 3, 3}}))
end)

T.test('a beam as wide as the search space is exhaustive search', function()
  -- random next-token distributions over {eos, A, B} for every suffix up to length 2; with
  -- max_len 3 there are 3 + 2*3 + 4*3 = 21 complete sequences, so 16 beams never drop the best.
  torch.manual_seed(3)
  local tables = {[0] = {}}
  local suffixes = {'', '2', '3', '2 2', '2 3', '3 2', '3 3'}
  for _, s in ipairs(suffixes) do
    local p = torch.rand(3, {dtype = torch.float64}) + 0.05
    p = (p / p:sum()):totable()
    tables[0][s] = {0, p[1], p[2], p[3], 0}
  end
  local function prob(seq)  -- seq: generated tokens
    local total, prefix = 1, {}
    for _, tok in ipairs(seq) do
      local p = tables[0][table.concat(prefix, ' ')] or {0, 1, 0, 0, 0}
      total = total * p[tok + 1]
      prefix[#prefix + 1] = tok
    end
    return total
  end
  for _, lp in ipairs({0, 1}) do
    local best, best_seq = -math.huge, nil
    local function visit(seq)
      local n = #seq
      if n > 0 and (seq[n] == EOS or n == 3) then
        local s = math.log(prob(seq)) / (n ^ lp)
        if s > best then best, best_seq = s, {unpack(seq)} end
        return
      end
      for _, tok in ipairs({1, 2, 3}) do
        seq[n + 1] = tok; visit(seq); seq[n + 1] = nil
      end
    end
    visit({})
    local tokens, scores = eval.beam_search(step_from(tables), {beam_size = 16, max_len = 3, length_penalty = lp,
                                                                bos = 0, eos = EOS})
    local got = tokens:totable()[1]
    table.remove(got, 1)
    while #got > #best_seq do table.remove(got) end
    T.eq(got, best_seq, 'length_penalty ' .. lp)
    T.close(scores[0]:item(), best, {atol = 1e-12})
  end
end)

T.test('decoding errors are named', function()
  local step = step_from(TRAP)
  T.raises(function() eval.beam_search(step, {max_len = 3, bos = 0}) end, "'eos' (a token id) is required")
  T.raises(function() eval.greedy_decode(step, {eos = 1, max_len = 3}) end, "give 'bos'")
  T.raises(function() eval.beam_search(step, {eos = 1, bos = 0, max_len = 0}) end, "'max_len'")
  T.raises(function() eval.beam_search(step, {eos = 1, bos = 0, max_len = 2, beam_size = 0}) end, "'beam_size'")
  T.raises(function() eval.greedy_decode(function() return torch.zeros(5) end, {eos = 1, bos = 0, max_len = 2}) end,
           'step_fn must return [1, V] log-probabilities')
end)
