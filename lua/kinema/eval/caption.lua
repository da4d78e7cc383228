-- Captioning metrics as the COCO caption evaluation (pycocoevalcap) computes them: BLEU-1..4,
-- ROUGE-L and CIDEr-D, on the same scale as coco (BLEU and ROUGE-L in [0, 1], CIDEr-D x10).
-- Plain Lua on strings; no tensors are involved. Decoding (greedy, beam search) lives in
-- kinema.eval.decode and is re-exported here.
--
-- Inputs: `candidates` maps an id to one candidate string (or a one-element array of it);
-- `references` maps the same ids to arrays of reference strings. Arrays (ids 1..N) work too.
local decode = require 'kinema.eval.decode'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

-- coco's PTBTokenizer drops these tokens after Stanford's PTB tokenisation; the double quote
-- stands for PTB's `` and '' tokens.
local DROPPED = {}
for _, p in ipairs({"''", "'", '``', '`', '.', '?', '!', ',', ':', '-', '--', '...', ';', '"'}) do
  DROPPED[p] = true
end
-- Brackets become PTB's -LRB-, -RRB-, ... tokens and are kept: coco's drop list spells them in
-- capitals but runs the tokenizer with -lowerCase, so "(slowly)" scores as "-lrb- slowly -rrb-".
local BRACKETS = {['('] = '-lrb-', [')'] = '-rrb-', ['['] = '-lsb-', [']'] = '-rsb-', ['{'] = '-lcb-', ['}'] = '-rcb-'}
local CLITICS = {["'s"] = true, ["'re"] = true, ["'ve"] = true, ["'ll"] = true, ["'d"] = true, ["'m"] = true}

-- Splits one whitespace-free chunk the way the PTB tokenizer would for caption text: a final
-- period comes off unless the word is a dotted abbreviation (u.s., a.m.), clitics
-- (n't, 's, 're, ...) become their own tokens, and quote marks around the word come off.
local function split_word(w, out)
  local lead = w:match("^'+")
  if lead and not CLITICS[w] then out[#out + 1] = lead; w = w:sub(#lead + 1) end
  local trail_period = false
  local dotted = w:gsub('%a%.', '') == ''  -- u.s., a.m. (and '...' is not a word to split)
  if #w > 1 and w:sub(-1) == '.' and not dotted and not w:match('^%.+$') then
    w, trail_period = w:sub(1, -2), true
  end
  local trail_quote = w:match("'+$")
  if trail_quote and #trail_quote < #w then w = w:sub(1, -#trail_quote - 1) else trail_quote = nil end
  local stem, clitic = w:match("^(.+)(n't)$")
  if not stem then
    stem, clitic = w:match("^(.+)('%a+)$")
    if clitic and not CLITICS[clitic] then stem, clitic = nil, nil end
  end
  if stem then out[#out + 1] = stem; out[#out + 1] = clitic elseif #w > 0 then out[#out + 1] = w end
  if trail_quote then out[#out + 1] = trail_quote end
  if trail_period then out[#out + 1] = '.' end
end

-- tokenize(s) -> string of space-separated tokens: lowercase, PTB-style splitting (simplified),
-- then coco's punctuation tokens removed. Simplified: $ and % become tokens (kept, as coco keeps
-- them), hyphenated words stay whole, and PTB's rarer rules (cannot -> can not, gonna -> gon na,
-- undotted abbreviations such as mr.) are not reproduced.
function M.tokenize(s)
  check(type(s) == 'string', 'caption.tokenize: expected a string, got %s', type(s))
  s = s:lower():gsub('%s', ' ')
  s = s:gsub('%.%.%.', ' ... '):gsub('%-%-', ' -- '):gsub('([,;:%?!%(%)%[%]{}"`$%%])', ' %1 ')
  local raw = {}
  for w in s:gmatch('%S+') do split_word(w, raw) end
  local kept = {}
  for _, t in ipairs(raw) do
    if not DROPPED[t] then kept[#kept + 1] = BRACKETS[t] or t end
  end
  return table.concat(kept, ' ')
end

local function words(s)
  local out = {}
  for w in s:gmatch('%S+') do out[#out + 1] = w end
  return out
end

-- counts[k][ngram] for k = 1..n, ngrams joined by single spaces.
local function ngram_counts(ws, n)
  local counts = {}
  for k = 1, n do
    local c = {}
    for i = 1, #ws - k + 1 do
      local g = table.concat(ws, ' ', i, i + k - 1)
      c[g] = (c[g] or 0) + 1
    end
    counts[k] = c
  end
  return counts
end

-- Normalises the inputs to an ordered list of {id, candidate, refs} (sorted ids for determinism).
local function pairs_of(candidates, references, fn, tokenize)
  check(type(candidates) == 'table' and type(references) == 'table',
        "%s: 'candidates' and 'references' must be tables keyed by id", fn)
  local ids = {}
  for id in pairs(candidates) do ids[#ids + 1] = id end
  for id in pairs(references) do
    check(candidates[id] ~= nil, "%s: id '%s' has references but no candidate", fn, tostring(id))
  end
  table.sort(ids, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == 'number'
  end)
  check(#ids > 0, '%s: no candidates', fn)
  local prep = tokenize and M.tokenize or function(s) return s end
  local items = {}
  for i, id in ipairs(ids) do
    local cand, refs = candidates[id], references[id]
    if type(cand) == 'table' then
      check(#cand == 1, "%s: id '%s' must have exactly one candidate, got %d", fn, tostring(id), #cand)
      cand = cand[1]
    end
    check(type(cand) == 'string', "%s: candidate of id '%s' must be a string", fn, tostring(id))
    check(type(refs) == 'table' and #refs > 0, "%s: id '%s' needs a non-empty array of references", fn, tostring(id))
    local r = {}
    for j, ref in ipairs(refs) do
      check(type(ref) == 'string', "%s: reference %d of id '%s' must be a string", fn, j, tostring(id))
      r[j] = prep(ref)
    end
    items[i] = {id = id, cand = prep(cand), refs = r}
  end
  return items
end

-- bleu(candidates, references, {n = 4, tokenize = true}) -> {Bleu_1, ..., Bleu_n} as coco's
-- BleuScorer with option 'closest': clipped n-gram matches and guesses summed over the corpus,
-- each sentence's reference length the one closest to its candidate's (the shorter on a tie),
-- brevity penalty exp(1 - r/c) when c < r, computed per order on the cumulative geometric mean.
function M.bleu(candidates, references, opts)
  opts = opts or {}
  local n = opts.n or 4
  local items = pairs_of(candidates, references, 'caption.bleu', opts.tokenize ~= false)
  local correct, guess = {}, {}
  for k = 1, n do correct[k], guess[k] = 0, 0 end
  local testlen, reflen = 0, 0
  for _, it in ipairs(items) do
    local cw = words(it.cand)
    local maxcounts = {}
    for k = 1, n do maxcounts[k] = {} end
    local best_len, best_diff
    for _, ref in ipairs(it.refs) do
      local rw = words(ref)
      local diff = math.abs(#rw - #cw)
      if best_diff == nil or diff < best_diff or (diff == best_diff and #rw < best_len) then
        best_len, best_diff = #rw, diff
      end
      for k, c in ipairs(ngram_counts(rw, n)) do
        for g, cnt in pairs(c) do
          if cnt > (maxcounts[k][g] or 0) then maxcounts[k][g] = cnt end
        end
      end
    end
    testlen, reflen = testlen + #cw, reflen + best_len
    for k, c in ipairs(ngram_counts(cw, n)) do
      guess[k] = guess[k] + math.max(0, #cw - k + 1)
      for g, cnt in pairs(c) do correct[k] = correct[k] + math.min(cnt, maxcounts[k][g] or 0) end
    end
  end
  -- coco's guards: tiny keeps a zero match count at (almost) zero, small avoids division by zero
  local tiny, small = 1e-15, 1e-9
  local out, prod = {}, 1
  local ratio = (testlen + tiny) / (reflen + small)
  for k = 1, n do
    prod = prod * (correct[k] + tiny) / (guess[k] + small)
    local b = prod ^ (1 / k)
    if ratio < 1 then b = b * math.exp(1 - 1 / ratio) end
    out['Bleu_' .. k] = b
  end
  return out, {testlen = testlen, reflen = reflen, correct = correct, guess = guess}
end

-- Length of the longest common subsequence of two token arrays (O(|a||b|) time, O(|b|) memory).
local function lcs_length(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = 0 end
  for i = 1, #a do
    local cur = {[0] = 0}
    for j = 1, #b do
      if a[i] == b[j] then cur[j] = prev[j - 1] + 1
      else cur[j] = math.max(prev[j], cur[j - 1]) end
    end
    prev = cur
  end
  return prev[#b]
end

-- rouge_l(candidates, references, {beta = 1.2, tokenize = true}) -> mean score, per-id scores.
-- Per candidate: precision and recall of the LCS against each reference, the maxima of each over
-- the references, then F = (1 + beta^2) P R / (R + beta^2 P) (0 when either is 0).
function M.rouge_l(candidates, references, opts)
  opts = opts or {}
  local beta = opts.beta or 1.2
  local items = pairs_of(candidates, references, 'caption.rouge_l', opts.tokenize ~= false)
  local scores, total = {}, 0
  for _, it in ipairs(items) do
    local cw = words(it.cand)
    local p_max, r_max = 0, 0
    for _, ref in ipairs(it.refs) do
      local rw = words(ref)
      local l = lcs_length(rw, cw)
      if #cw > 0 then p_max = math.max(p_max, l / #cw) end
      if #rw > 0 then r_max = math.max(r_max, l / #rw) end
    end
    local s = 0
    if p_max > 0 and r_max > 0 then
      s = (1 + beta ^ 2) * p_max * r_max / (r_max + beta ^ 2 * p_max)
    end
    scores[it.id] = s
    total = total + s
  end
  return total / #items, scores
end

-- cider_d(candidates, references, {n = 4, sigma = 6, tokenize = true}) -> mean score, per-id.
-- TF-IDF vectors of 1..n-grams with document frequencies counted over the reference sets of the
-- evaluated ids (an n-gram counts once per id) and idf = log(#ids) - log(max(1, df)); per order,
-- a cosine in which each candidate weight is clipped by the reference's (min(h, r) * r), times the
-- Gaussian length penalty exp(-(l_h - l_r)^2 / (2 sigma^2)) where l counts bigram occurrences
-- (coco's choice; the same difference as word counts once both have two or more words);
-- averaged over orders and references, times 10.
function M.cider_d(candidates, references, opts)
  opts = opts or {}
  local n, sigma = opts.n or 4, opts.sigma or 6
  local items = pairs_of(candidates, references, 'caption.cider_d', opts.tokenize ~= false)
  local df = {}
  for _, it in ipairs(items) do
    it.cand_counts = ngram_counts(words(it.cand), n)
    it.ref_counts = {}
    local seen = {}
    for j, ref in ipairs(it.refs) do
      it.ref_counts[j] = ngram_counts(words(ref), n)
      for _, c in ipairs(it.ref_counts[j]) do
        for g in pairs(c) do seen[g] = true end
      end
    end
    for g in pairs(seen) do df[g] = (df[g] or 0) + 1 end
  end
  local log_docs = math.log(#items)
  local function to_vec(counts)
    local vec, norm, length = {}, {}, 0
    for k = 1, n do
      local v, sq = {}, 0
      for g, tf in pairs(counts[k]) do
        local w = tf * (log_docs - math.log(math.max(1, df[g] or 0)))
        v[g] = w
        sq = sq + w * w
      end
      vec[k], norm[k] = v, math.sqrt(sq)
    end
    for _, tf in pairs(counts[2] or {}) do length = length + tf end
    return vec, norm, length
  end
  local scores, total = {}, 0
  for _, it in ipairs(items) do
    local hv, hn, hl = to_vec(it.cand_counts)
    local sum = 0
    for _, rc in ipairs(it.ref_counts) do
      local rv, rn, rl = to_vec(rc)
      local penalty = math.exp(-((hl - rl) ^ 2) / (2 * sigma ^ 2))
      for k = 1, n do
        local dot = 0
        for g, w in pairs(hv[k]) do
          local r = rv[k][g] or 0
          dot = dot + math.min(w, r) * r
        end
        if hn[k] ~= 0 and rn[k] ~= 0 then sum = sum + dot / (hn[k] * rn[k]) * penalty end
      end
    end
    local s = sum / n / #it.refs * 10
    scores[it.id] = s
    total = total + s
  end
  return total / #items, scores
end

-- evaluate(candidates, references, {tokenize = true}) -> {Bleu_1..Bleu_4, ROUGE_L, CIDEr} with
-- coco's names; CIDEr is CIDEr-D (coco's 'CIDEr' scorer is the D variant).
function M.evaluate(candidates, references, opts)
  opts = opts or {}
  local tok = opts.tokenize ~= false
  local cands, refs = candidates, references
  if tok then  -- tokenize once, then score the tokenized text
    local items = pairs_of(candidates, references, 'caption.evaluate', true)
    cands, refs = {}, {}
    for _, it in ipairs(items) do cands[it.id], refs[it.id] = it.cand, it.refs end
  end
  local out = M.bleu(cands, refs, {tokenize = false})
  out.ROUGE_L = M.rouge_l(cands, refs, {tokenize = false})
  out.CIDEr = M.cider_d(cands, refs, {tokenize = false})
  return out
end

M.greedy_decode = decode.greedy_decode
M.beam_search = decode.beam_search

return M
