-- kinema.eval caption metrics against published and hand-derived values.
-- BLEU: the worked example of sacrebleu's README (BLEU = 48.53, precisions 82.4/50.0/45.5/37.5,
-- BP 0.943, hyp_len 17, ref_len 18). sacrebleu and coco's BleuScorer agree on this case: both sum
-- clipped counts over the corpus and take the closest reference length (shorter on a tie); only
-- the tokenisation differs, so the candidates below are given pre-tokenised as sacrebleu's 13a
-- tokenizer splits them (a period split off, apostrophes kept, case kept) with tokenize = false.
-- ROUGE-L and CIDEr-D: small cases derived by hand in the comments.
local T = require 'kinema.test'
local eval = require('kinema').eval

T.test('BLEU: sacrebleu README example (48.53)', function()
  local sys = {'The dog bit the man .', "It wasn't surprising .", 'The man had just bitten him .'}
  local refs = {
    {'The dog bit the man .', 'The dog had bit the man .'},
    {'It was not unexpected .', 'No one was surprised .'},
    {'The man bit him first .', 'The man had bitten the dog .'},
  }
  local b, stats = eval.bleu(sys, refs, {tokenize = false})
  -- clipped matches / guesses per order: 14/17, 7/14, 5/11, 3/8; closest ref lengths 6 + 5 + 7
  T.eq(stats.correct, {14, 7, 5, 3})
  T.eq(stats.guess, {17, 14, 11, 8})
  T.eq(stats.testlen, 17)
  T.eq(stats.reflen, 18)
  -- BLEU-4 = exp(1 - 18/17) * (14/17 * 7/14 * 5/11 * 3/8)^(1/4) = 0.4853083
  T.close(b.Bleu_4, 0.4853082700992987, {atol = 1e-9, rtol = 0})
  T.close(b.Bleu_4 * 100, 48.53, {atol = 0.005, rtol = 0})
  -- BLEU-1 = BP * 14/17
  T.close(b.Bleu_1, 0.776483765527544, {atol = 1e-9, rtol = 0})
end)

T.test("BLEU: 'closest' length takes the shorter on a tie; coco's zero-count guard", function()
  -- candidate of 3 words, references of 2 and 4 words: both 1 away, the shorter (2) is taken,
  -- so c = 3 > r = 2 and there is no brevity penalty. Orders 1-3 match fully; order 4 has no
  -- 4-gram to guess, and coco's (0 + 1e-15) / (0 + 1e-9) = 1e-6 gives BLEU-4 = (1e-6)^(1/4).
  local b, stats = eval.bleu({'a b c'}, {{'a b', 'a b c d'}}, {tokenize = false})
  T.eq(stats.reflen, 2)
  T.close(b.Bleu_1, 1, {atol = 1e-9}); T.close(b.Bleu_3, 1, {atol = 1e-9})
  T.close(b.Bleu_4, 0.03162277660168379, {atol = 1e-9, rtol = 0})
  -- a longer reference set alone: r = 4 > c = 3 gives BP = exp(1 - 4/3) on every order
  local short = eval.bleu({'a b c'}, {{'a b c d'}}, {tokenize = false})
  T.close(short.Bleu_1, math.exp(1 - 4 / 3), {atol = 1e-9})
end)

T.test('ROUGE-L: LCS F-measure with beta 1.2, maxima over references', function()
  -- "a cat on the mat" (5 words) vs
  --   "the cat sat on a mat" (6): LCS "cat on mat" = 3 -> P 3/5, R 3/6
  --   "a cat is sitting on the mat today" (8): LCS = the whole candidate, 5 -> P 1, R 5/8
  -- P_max = 1, R_max = 5/8: F = 2.44 * 1 * 0.625 / (0.625 + 1.44 * 1) = 0.7384988
  -- "dog" vs "a cat": LCS 0 -> 0. Mean over the two ids = 0.3692494
  local mean, per = eval.rouge_l({'a cat on the mat', 'dog'},
                                 {{'the cat sat on a mat', 'a cat is sitting on the mat today'}, {'a cat'}},
                                 {tokenize = false})
  T.close(per[1], 0.7384987893462469, {atol = 1e-12})
  T.eq(per[2], 0)
  T.close(mean, 0.36924939467312345, {atol = 1e-12})
  -- coco takes P and R maxima from different references: "a b c d" vs "a b" (P .5, R 1) and
  -- "a b c d e f g h" (P 1, R .5) scores F(1, 1) = 1
  T.close((eval.rouge_l({'a b c d'}, {{'a b', 'a b c d e f g h'}}, {tokenize = false})), 1, {atol = 1e-12})
end)

T.test('CIDEr-D: tf-idf over the evaluated references, clipping, length penalty', function()
  -- Two ids, so idf = log 2 - log df = L (log 2) for n-grams in one reference set, 0 for "a"
  -- (in both), L for unseen n-grams (df clamps to 1).
  -- id 1: candidate "the cat cat", refs "a cat", "the cat".
  --   candidate: 1-grams the L, cat 2L (norm L*sqrt5); 2-grams "the cat" L, "cat cat" L
  --   (norm L*sqrt2); 3-gram L; bigram count 2.
  --   vs "a cat" (1-grams a 0, cat L; 2-gram "a cat" L; bigram count 1):
  --     n=1: min(2L, L) * L / (L sqrt5 * L) = 1/sqrt5 (clipping); n=2: no shared 2-gram -> 0;
  --     n=3,4: the reference has none -> 0. Length penalty exp(-(2-1)^2 / 72).
  --   vs "the cat": n=1: (L*L + min(2L, L)*L) / (L sqrt5 * L sqrt2) = 2/sqrt10;
  --     n=2: L*L / (L sqrt2 * L) = 1/sqrt2; n=3,4: 0. Same penalty.
  --   score = (1/sqrt5 + 2/sqrt10 + 1/sqrt2) * exp(-1/72) / 4 orders / 2 refs * 10 = 2.2026639
  -- id 2: "a dog" vs "a dog": n=1 (a weighs 0) 1, n=2 1, n=3,4 0 -> 0.5 * 10 = 5
  local mean, per = eval.cider_d({'the cat cat', 'a dog'}, {{'a cat', 'the cat'}, {'a dog'}}, {tokenize = false})
  T.close(per[1], 2.2026638965080263, {atol = 1e-12})
  T.close(per[2], 5, {atol = 1e-12})
  T.close(mean, 3.601331948254013, {atol = 1e-12})
  -- ids keyed by strings give the same numbers
  local mean2 = eval.cider_d({x = 'the cat cat', y = {'a dog'}}, {x = {'a cat', 'the cat'}, y = {'a dog'}})
  T.close(mean2, 3.601331948254013, {atol = 1e-12})
end)

-- Expected strings: pycocoevalcap 1.2's PTBTokenizer (Stanford CoreNLP 3.4.1) on the same input.
T.test('tokenizer: lowercase, PTB splits, coco punctuation removed, brackets kept as -lrb- ...', function()
  T.eq(eval.tokenize("A man, who's riding a horse (quickly)... on the U.S. road-side. They don't stop!"),
       "a man who 's riding a horse -lrb- quickly -rrb- on the u.s. road-side they do n't stop")
  T.eq(eval.tokenize('"Hello," she said -- twice;  \n then: left?'), 'hello she said twice then left')
  T.eq(eval.tokenize("the dogs' bowls"), 'the dogs bowls')
  T.eq(eval.tokenize(''), '')
  T.eq(eval.tokenize('It costs $5 (50%) at 3.5. At 9 a.m. today.'), 'it costs $ 5 -lrb- 50 % -rrb- at 3.5 at 9 a.m. today')
  T.eq(eval.tokenize('x [y] {z}'), 'x -lsb- y -rsb- -lcb- z -rcb-')
end)

T.test('evaluate: tokenizes, then reports coco-named metrics', function()
  local cands = {v1 = 'The cat, the CAT.', v2 = 'A dog!'}
  local refs = {v1 = {'A cat.', 'The cat?'}, v2 = {'a dog'}}
  local m = eval.evaluate(cands, refs)
  local tok_c = {v1 = 'the cat the cat', v2 = 'a dog'}
  local tok_r = {v1 = {'a cat', 'the cat'}, v2 = {'a dog'}}
  local b = eval.bleu(tok_c, tok_r, {tokenize = false})
  T.close(m.Bleu_4, b.Bleu_4, {atol = 1e-15})
  T.close(m.ROUGE_L, (eval.rouge_l(tok_c, tok_r, {tokenize = false})), {atol = 1e-15})
  T.close(m.CIDEr, (eval.cider_d(tok_c, tok_r, {tokenize = false})), {atol = 1e-15})
  for _, k in ipairs({'Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'ROUGE_L', 'CIDEr'}) do
    T.is_true(type(m[k]) == 'number', k)
  end
  T.raises(function() eval.evaluate({a = 'x'}, {a = {'x'}, b = {'y'}}) end, "id 'b' has references but no candidate")
  T.raises(function() eval.bleu({'x'}, {{}}) end, 'needs a non-empty array of references')
  T.raises(function() eval.bleu({{'x', 'y'}}, {{'x'}}) end, 'exactly one candidate')
end)
