-- kinema.eval caption metrics against the COCO caption evaluation code itself:
-- tests/fixtures/eval_caption_coco.json holds 40 ids of raw captions (case,
-- punctuation, clitics, quotes, brackets), pycocoevalcap's PTBTokenizer output for
-- them and its Bleu(4) / Rouge / Cider scores (written by
-- tests/fixtures/make_caption_metrics_fixture.py; pycocoevalcap is not needed here).
local T = require 'kinema.test'
local eval = require('kinema').eval
local json = require 'kinema.json'
local sys = require 'kinema.sys'

local coco = json.decode(assert(sys.read_file('tests/fixtures/eval_caption_coco.json')), 'eval_caption_coco.json')
local METRICS = {'Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'ROUGE_L', 'CIDEr'}

T.test('tokenize reproduces the PTBTokenizer on every candidate and reference', function()
  local n = 0
  for _, id in ipairs(coco.ids) do
    T.eq(eval.tokenize(coco.raw.candidates[id]), coco.tokenized.candidates[id], id)
    for j, ref in ipairs(coco.raw.references[id]) do
      T.eq(eval.tokenize(ref), coco.tokenized.references[id][j], id .. ' ref ' .. j)
      n = n + 1
    end
  end
  T.is_true(n >= 100, 'references compared: ' .. n)
end)

T.test('on the PTB-tokenized text: corpus BLEU-1..4, ROUGE-L, CIDEr-D equal the scorers (1e-9)', function()
  local m = eval.evaluate(coco.tokenized.candidates, coco.tokenized.references, {tokenize = false})
  for _, k in ipairs(METRICS) do T.close(m[k], coco.scores[k], {atol = 1e-9, rtol = 0}, k) end
  local _, rouge = eval.rouge_l(coco.tokenized.candidates, coco.tokenized.references, {tokenize = false})
  local _, cider = eval.cider_d(coco.tokenized.candidates, coco.tokenized.references, {tokenize = false})
  for _, id in ipairs(coco.ids) do
    T.close(rouge[id], coco.per_id.ROUGE_L[id], {atol = 1e-9, rtol = 0}, 'ROUGE_L ' .. id)
    T.close(cider[id], coco.per_id.CIDEr[id], {atol = 1e-9, rtol = 0}, 'CIDEr ' .. id)
  end
end)

T.test('end to end on the raw captions: the same scores as tokenizer + scorers', function()
  local m = eval.evaluate(coco.raw.candidates, coco.raw.references)
  for _, k in ipairs(METRICS) do T.close(m[k], coco.scores[k], {atol = 1e-9, rtol = 0}, k) end
end)
