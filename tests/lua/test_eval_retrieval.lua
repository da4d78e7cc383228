-- kinema.eval retrieval: blocked similarity, ranks with ties and several captions per video,
-- R@K / MedR / MeanR on hand-made matrices whose ranks are worked out in the comments.
local T = require 'kinema.test'
local eval = require('kinema').eval

-- 5 captions of 3 videos: texts 0,1 -> video 0; text 2 -> video 1; texts 3,4 -> video 2.
local SIM = torch.tensor({
  {0.9, 0.1, 0.2},  -- t0 (v0): nothing above 0.9                         -> rank 1
  {0.3, 0.5, 0.3},  -- t1 (v0): 0.5 above; the 0.3 tie does not count      -> rank 2
  {0.4, 0.4, 0.4},  -- t2 (v1): a three-way tie                             -> rank 1
  {0.8, 0.7, 0.6},  -- t3 (v2): 0.8 and 0.7 above                           -> rank 3
  {0.1, 0.2, 0.0},  -- t4 (v2): 0.1 and 0.2 above                           -> rank 3
})
local T2V = {0, 0, 1, 2, 2}
-- video -> text, column by column (texts strictly above the correct caption's score):
--   v0 = (.9 .3 .4 .8 .1): t0 rank 1, t1 rank 4 (.9 .4 .8 above)  -> best 1
--   v1 = (.1 .5 .4 .7 .2): t2 rank 3 (.5 .7 above)                -> 3
--   v2 = (.2 .3 .4 .6 .0): t3 rank 1, t4 rank 5                    -> best 1

local function int64(t) return torch.tensor(t, {dtype = torch.int64}) end

T.test('ranks: ties are optimistic, video->text keeps the best caption', function()
  local t2v, v2t = eval.ranks(SIM, T2V)
  T.eq(t2v, int64({1, 2, 1, 3, 3}))
  T.eq(v2t, int64({1, 3, 1}))
  -- same answer from a tensor index list and from tiny blocks
  local t2v_b, v2t_b = eval.ranks(SIM, int64(T2V), {block = 2})
  T.eq(t2v_b, t2v)
  T.eq(v2t_b, v2t)
end)

T.test('retrieval metrics in both directions', function()
  local m = eval.retrieval(SIM, {text_to_video = T2V})
  -- t2v ranks 1,2,1,3,3: R@1 = 2/5, MedR = 2, MeanR = 10/5
  T.close(m.t2v_R1, 40); T.close(m.t2v_R5, 100); T.close(m.t2v_R10, 100)
  T.close(m.t2v_MedR, 2); T.close(m.t2v_MeanR, 2)
  -- v2t ranks 1,3,1: R@1 = 2/3, MedR = 1, MeanR = 5/3
  T.close(m.v2t_R1, 200 / 3); T.close(m.v2t_R5, 100); T.close(m.v2t_MedR, 1); T.close(m.v2t_MeanR, 5 / 3)
  local n = 0
  for _ in pairs(m) do n = n + 1 end
  T.eq(n, 10)
end)

T.test('rank_metrics: even count median is the mean of the middle two', function()
  local m = eval.rank_metrics(int64({10, 1, 3, 2}))
  T.close(m.R1, 25); T.close(m.R5, 75); T.close(m.R10, 100)
  T.close(m.MedR, 2.5); T.close(m.MeanR, 4)
  local m2 = eval.rank_metrics(int64({7, 1, 30}), {ks = {1, 50}})
  T.close(m2.R1, 100 / 3); T.close(m2.R50, 100); T.eq(m2.R5, nil); T.close(m2.MedR, 7)
end)

T.test('square matrix: identity matching by default', function()
  -- rows are texts; correct video on the diagonal
  local sim = torch.tensor({{1.0, 2.0, 0.0}, {0.0, 1.0, 0.5}, {3.0, 2.0, 1.0}})
  -- t2v: t0 rank 2 (2.0 above 1.0), t1 rank 1, t2 rank 3
  -- v2t: column 0 = (1, 0, 3): t0 rank 2; column 1 = (2, 1, 2): t1 rank 3; column 2 = (0, .5, 1): rank 1
  local t2v, v2t = eval.ranks(sim)
  T.eq(t2v, int64({2, 1, 3}))
  T.eq(v2t, int64({2, 3, 1}))
end)

T.test('blocked similarity equals the unblocked product', function()
  torch.manual_seed(0)
  local q, g = torch.randn(37, 8), torch.randn(23, 8)
  local full = torch.matmul(q, g:t())
  T.close(eval.similarity(q, g), full, {atol = 1e-5})
  T.close(eval.similarity(q, g, {block = 5}), full, {atol = 1e-5})
  T.close(eval.similarity(q, g, {block = 1}), full, {atol = 1e-5})
  -- structured embeddings with a custom score (global + local, as DemoVLP ranks)
  local qs = {global = q, words = torch.randn(37, 4, 8)}
  local gs = {global = g, regions = torch.randn(23, 6, 8)}
  local calls = 0
  local function score(a, b)
    calls = calls + 1
    T.is_true(a.global:size(0) <= 10 and b.global:size(0) <= 10, 'blocks stay within the block size')
    local local_sim = torch.einsum('qld,grd->qglr', {a.words, b.regions}):amax{dim = {2, 3}}
    return torch.matmul(a.global, b.global:t()) + local_sim
  end
  local expected = full + torch.einsum('qld,grd->qglr', {qs.words, gs.regions}):amax{dim = {2, 3}}
  local got = eval.similarity(qs, gs, {block = 10, score_fn = score})
  T.close(got, expected, {atol = 1e-4})
  T.eq(calls, 4 * 3)
  T.is_true(not got.requires_grad, 'no autograd graph')
end)

T.test('ranks match the definition on random tied scores with several captions per video', function()
  torch.manual_seed(1)
  local nt, nv = 30, 7
  local sim = torch.randint(0, 4, {nt, nv}):to(torch.float32)  -- few values: many ties
  local t2v = {}
  for i = 1, nt do t2v[i] = (i - 1) % nv end
  local s = sim:totable()
  local want_t2v, want_v2t = {}, {}
  for i = 1, nt do
    local c, r = s[i][t2v[i] + 1], 1
    for j = 1, nv do if s[i][j] > c then r = r + 1 end end
    want_t2v[i] = r
    -- rank of caption i in its video's column, best over the video's captions
    local col, rc = t2v[i] + 1, 1
    for k = 1, nt do if s[k][col] > c then rc = rc + 1 end end
    want_v2t[col] = math.min(want_v2t[col] or math.huge, rc)
  end
  local got_t2v, got_v2t = eval.ranks(sim, t2v, {block = 4})
  T.eq(got_t2v, int64(want_t2v))
  T.eq(got_v2t, int64(want_v2t))
end)

T.test('global_local_score: DemoVLP ranking by global + local similarity, blocked', function()
  torch.manual_seed(2)
  local kinema = require 'kinema'
  local texts = {global = torch.randn(9, 8), words = torch.randn(9, 5, 8),
                 word_mask = torch.rand(9, 5):gt(0.3)}
  texts.word_mask['..., 0'] = true
  local videos = {global = torch.randn(7, 8), regions = torch.randn(7, 6, 8), region_mask = torch.ones(7, 6, {dtype = torch.bool})}
  local s_rw, s_wr = kinema.ops.rwa_similarity(videos.regions, videos.region_mask, texts.words, texts.word_mask, 20.0)
  local expected = torch.matmul(texts.global, videos.global:t()) + (s_rw:t() + s_wr) * 0.25
  local got = eval.similarity(texts, videos, {block = 4, score_fn = eval.global_local_score{lambda = 20, local_weight = 0.5}})
  T.close(got, expected, {atol = 1e-5})
  T.raises(function() eval.similarity({global = texts.global}, videos, {score_fn = eval.global_local_score()}) end,
           'global_local_score: queries must be {global =, words =, word_mask =}')
end)

T.test('bad input is named', function()
  T.raises(function() eval.ranks(SIM) end, 'needs text_to_video')
  T.raises(function() eval.ranks(SIM, {0, 0, 1, 3, 2}) end, "'text_to_video' entries must be 0-based")
  T.raises(function() eval.ranks(SIM, {0, 0, 0, 2, 2}) end, 'video 1 (0-based) has no caption')
  T.raises(function() eval.ranks(SIM, {0, 1}) end, "'text_to_video' has 2 entries for 5 texts")
  local nan = SIM:clone(); nan['1, 1'] = 0 / 0
  T.raises(function() eval.ranks(nan, T2V) end, "'sim' contains NaN")
  T.raises(function() eval.similarity(torch.randn(2, 3), torch.randn(2, 4)) end, 'embedding widths differ')
  T.raises(function() eval.similarity(torch.randn(2, 3), torch.randn(2, 3), {block = 0}) end, "'block'")
  T.raises(function() eval.similarity(torch.randn(2, 3), torch.randn(4, 3), {score_fn = function() return torch.zeros(1, 1) end}) end,
           'score_fn must return a [2, 4] tensor')
  T.raises(function() eval.rank_metrics(torch.zeros({0}, {dtype = torch.int64})) end, 'non-empty')
  T.raises(function() eval.ranks(torch.zeros(0, 3), {}) end, "'sim' is empty")
end)
