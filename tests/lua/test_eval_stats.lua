-- kinema.eval.stats against independently computed values: numpy's linear
-- quantile, McNemar's exact p from the binomial tail summed by hand, and the
-- bootstrap intervals against the normal-approximation intervals of the
-- binomial proportion and of a paired difference (analytic, not resampled).
local T = require 'kinema.test'
local stats = require('kinema').eval.stats

T.test('quantile: linear interpolation between order statistics (numpy default)', function()
  local v = torch.tensor({5, 1, 4, 2, 3}, {dtype = torch.float64})
  -- numpy.quantile([1..5], 0.1) = 1.4, 0.5 = 3, 0.975 = 4.9
  T.close(stats.quantile(v, 0.1), 1.4, {atol = 1e-12})
  T.close(stats.quantile(v, 0.5), 3, {atol = 1e-12})
  T.close(stats.quantile(v, 0.975), 4.9, {atol = 1e-12})
  T.close(stats.quantile(v, 0), 1, {atol = 1e-12})
  T.close(stats.quantile(v, 1), 5, {atol = 1e-12})
end)

T.test("mcnemar: the exact two-sided binomial tail", function()
  -- 3 pairs only a got right, 12 only b: p = 2 * (C(15,0) + C(15,1) + C(15,2) + C(15,3)) / 2^15
  --                                      = 2 * (1 + 15 + 105 + 455) / 32768 = 0.03515625
  local a, b = {}, {}
  for i = 1, 3 do a[#a + 1], b[#b + 1] = 1, 0 end
  for i = 1, 12 do a[#a + 1], b[#b + 1] = 0, 1 end
  for i = 1, 20 do a[#a + 1], b[#b + 1] = 1, 1 end
  for i = 1, 7 do a[#a + 1], b[#b + 1] = 0, 0 end
  local r = stats.mcnemar(a, b)
  T.eq({r.a_only, r.b_only}, {3, 12})
  T.close(r.p, 0.03515625, {atol = 1e-12})
  -- equal discordant counts (5 and 5): the tail is half the mass or more, p = 1
  T.close(stats.mcnemar({1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 1, 1, 1, 1}).p, 1, {atol = 1e-12})
  -- seeds pooled: [2, N] matrices count the discordant pairs of both rows
  local two = stats.mcnemar({{1, 0, 1}, {1, 1, 0}}, {{0, 0, 1}, {0, 0, 0}})
  T.eq({two.a_only, two.b_only}, {3, 0})
  T.close(two.p, 2 / 8, {atol = 1e-12})
  T.raises(function() stats.mcnemar({1, 0}, {1, 0, 1}) end, "kinema.eval.stats: 'a' and 'b' must have the same shape")
end)

T.test('bootstrap interval of a proportion is the binomial normal interval', function()
  -- 600 of 1000 items right: p +- 1.96 sqrt(p (1 - p) / n) = 0.6 +- 0.03036
  local x = torch.zeros(1000, {dtype = torch.float64})
  x:narrow(0, 0, 600):fill_(1)
  local before = torch.rand(1):item()
  local r = stats.bootstrap(x, {resamples = 4000, seed = 1})
  T.close(r.mean, 0.6, {atol = 1e-12})
  local half = 1.96 * math.sqrt(0.6 * 0.4 / 1000)
  T.close(r.lo, 0.6 - half, {atol = 0.004})
  T.close(r.hi, 0.6 + half, {atol = 0.004})
  -- the same seed gives the same interval; the default generator is left as it was
  local again = stats.bootstrap(x, {resamples = 4000, seed = 1})
  T.eq({again.lo, again.hi}, {r.lo, r.hi})
  torch.manual_seed(5); local u1 = torch.rand(1):item()
  torch.manual_seed(5); stats.bootstrap(x, {resamples = 50}); local u2 = torch.rand(1):item()
  T.eq(u1, u2, 'the default generator state is restored')
  T.is_true(before >= 0)
end)

T.test('paired bootstrap: interval of the mean paired difference and its p-value', function()
  -- 1000 paired items: a right on 650, b right on 600; they differ on 150 items (100 a only, 50 b only).
  -- d_i in {-1, 0, 1}: mean 0.05, sd sqrt(E d^2 - 0.05^2) = sqrt(0.15 - 0.0025); interval 0.05 +- 1.96 sd / sqrt(1000)
  local a = torch.zeros(1000, {dtype = torch.float64})
  local b = torch.zeros(1000, {dtype = torch.float64})
  a:narrow(0, 0, 550):fill_(1); b:narrow(0, 0, 550):fill_(1)     -- both right
  a:narrow(0, 550, 100):fill_(1)                                  -- a only
  b:narrow(0, 650, 50):fill_(1)                                   -- b only
  local r = stats.paired_bootstrap(a, b, {resamples = 4000, seed = 2})
  T.close(r.diff, 0.05, {atol = 1e-12})
  local sd = math.sqrt(0.15 - 0.05 ^ 2)
  local half = 1.96 * sd / math.sqrt(1000)
  T.close(r.lo, 0.05 - half, {atol = 0.004})
  T.close(r.hi, 0.05 + half, {atol = 0.004})
  -- the normal approximation's two-sided p: z = 0.05 / (sd / sqrt(1000)) = 4.10 -> p = 4e-5, below 1/4000
  T.close(r.p, 1 / 4000, {atol = 1e-12})
  -- no difference at all: p = 1
  T.close(stats.paired_bootstrap(a, a, {resamples = 200}).p, 1, {atol = 1e-12})
  -- a small difference: 10 a-only, 8 b-only of 1000. The resampled counts of a-only and b-only
  -- items are nearly Poisson(10) and Poisson(8), so p = 2 P(A - B <= 0), summed here exactly
  local c = torch.zeros(1000, {dtype = torch.float64})
  local e = torch.zeros(1000, {dtype = torch.float64})
  c:narrow(0, 0, 550):fill_(1); e:narrow(0, 0, 550):fill_(1)     -- both right
  c:narrow(0, 550, 10):fill_(1)                                   -- c only
  e:narrow(0, 560, 8):fill_(1)                                    -- e only
  local small = stats.paired_bootstrap(c, e, {resamples = 4000, seed = 3})
  local function poisson(k, mu)
    local lp = -mu + k * math.log(mu)
    for i = 2, k do lp = lp - math.log(i) end
    return math.exp(lp)
  end
  local tail = 0
  for bb = 0, 60 do
    for aa = 0, bb do tail = tail + poisson(aa, 10) * poisson(bb, 8) end
  end
  T.close(small.p, 2 * tail, {atol = 0.03})
  T.raises(function() stats.paired_bootstrap({1, 0}, {1, 0, 1}) end, "must hold the same items")
end)

T.test('seeds: the interval widens with the spread between seeds', function()
  -- three seeds with accuracies 0.5, 0.6, 0.7 on the same 1000 items
  local x = torch.zeros(3, 1000, {dtype = torch.float64})
  for s, k in ipairs({500, 600, 700}) do x[s - 1]:narrow(0, 0, k):fill_(1) end
  local r = stats.bootstrap(x, {resamples = 4000, seed = 4})
  T.close(r.mean, 0.6, {atol = 1e-12})
  local one = stats.bootstrap(x[1], {resamples = 4000, seed = 4})
  T.is_true(r.hi - r.lo > 2 * (one.hi - one.lo), string.format('%g vs %g', r.hi - r.lo, one.hi - one.lo))
  -- drawing the three seeds with replacement: the mean of 3 draws from {0.5, 0.6, 0.7} ranges over [0.5, 0.7]
  T.is_true(r.lo >= 0.5 - 0.01 and r.hi <= 0.7 + 0.01)
end)

T.test("one run's hard-negative accuracies: intervals over its test videos, the table cells, the verdict", function()
  local eval = require('kinema').eval
  local f64 = {dtype = torch.float64}
  -- 400 test videos; VTM head: nouns won on 240 videos (60%), verbs on 160 (40%); cosine nouns 50% exactly
  local noun, verb, even = torch.zeros(400, f64), torch.zeros(400, f64), torch.full({400}, 0.5, f64)
  noun:narrow(0, 0, 240):fill_(1)
  verb:narrow(0, 0, 160):fill_(1)
  local metrics = {hard_match_noun = 60, hard_match_verb = 40, hard_noun = 50, t2v_R1 = 3, hard_pairs = 800}
  local items = {hard_match_noun = noun, hard_match_verb = verb, hard_noun = even, t2v_R1 = torch.zeros(400, f64)}
  local iv = eval.hard_negative_intervals(metrics, items)
  T.eq(iv.t2v_R1, nil)    -- the hard negatives only
  T.eq(iv.hard_pairs, nil)
  -- the binomial normal interval: 60 +- 1.96 sqrt(.6 .4 / 400) 100 = 60 +- 4.80
  T.close(iv.hard_match_noun.mean, 60, {atol = 1e-9})
  T.close(iv.hard_match_noun.lo, 60 - 4.80, {atol = 0.8})
  T.close(iv.hard_match_noun.hi, 60 + 4.80, {atol = 0.8})
  T.close(iv.hard_match_verb.hi, 40 + 4.80, {atol = 0.8})
  -- every video at 0.5: every resample is 50
  T.eq({iv.hard_noun.lo, iv.hard_noun.hi}, {50, 50})
  T.eq(eval.format_interval({mean = 56.14, lo = 51.86, hi = 59.94}), '56.1 [51.9, 59.9]')
  T.eq(eval.chance_note(iv, 'VTM head'), string.format(
    'hard negatives against chance (50%%, 95%% interval over the test videos): VTM head: nouns above chance (%s), '
    .. 'verbs below chance (%s); embedding cosine: nouns not above chance (50.0 [50.0, 50.0])',
    eval.format_interval(iv.hard_match_noun), eval.format_interval(iv.hard_match_verb)))
  T.eq(eval.chance_note({}, 'VTM head'), nil)
  -- the results table shows a cell given with its interval as 'mean [lo, hi]', a number as before
  local tab = eval.results_table({stoa = {t2v_R1 = 3, hard_match_noun = iv.hard_match_noun}}, {'stoa'})
  T.is_true(tab:find('| stoa | 3.0 | - |', 1, true) ~= nil, tab)
  T.is_true(tab:find('| ' .. eval.format_interval(iv.hard_match_noun) .. ' |', 1, true) ~= nil, tab)
  T.eq(eval.hard_negative_intervals({t2v_R1 = 3}, {t2v_R1 = torch.zeros(4, f64)}), nil)
end)
