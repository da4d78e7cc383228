-- kinema.eval: evaluation for video-language models.
--   retrieval: similarity (blocked), ranks, rank_metrics, retrieval
--   choice:    multiple_choice, qa_accuracy, hard_negative_accuracy
--   caption:   tokenize, bleu, rouge_l, cider_d, evaluate (coco caption metrics),
--              greedy_decode, beam_search (from decode)
--   report:    run_suite, markdown_table, json_encode, write_json
--   stats:     bootstrap, paired_bootstrap, mcnemar, quantile (eval.stats.NAME: seeds and
--              confidence intervals for comparing models)
--   qa:        AnswerHead, concat_features, fit_head, accuracy (open-ended QA as answer
--              classification; eval.qa.NAME)
--   zero_shot: zero_shot, hard_negatives, pair_scores, captioning, results_table,
--              table_columns, format_interval, hard_negative_intervals, chance_note,
--              dropped_note, cat_embeddings, index_embeddings, normalize
--              (a recipe's model on its test split)
-- Every function is reachable flat (eval.retrieval(sim, opts), eval.bleu(...)); the submodules
-- are eval.modules.<name> (and eval.caption / eval.choice for short).
local modules = {
  retrieval = require 'kinema.eval.retrieval',
  choice = require 'kinema.eval.choice',
  caption = require 'kinema.eval.caption',
  decode = require 'kinema.eval.decode',
  report = require 'kinema.eval.report',
  qa = require 'kinema.eval.qa',
  stats = require 'kinema.eval.stats',
  zero_shot = require 'kinema.eval.zero_shot',
}

local M = {modules = modules, caption = modules.caption, choice = modules.choice, qa = modules.qa,
           stats = modules.stats}

for _, name in ipairs({'retrieval', 'choice', 'caption', 'decode', 'report', 'zero_shot'}) do
  for fname, fn in pairs(modules[name]) do
    assert(M[fname] == nil or M[fname] == fn, 'kinema.eval: name clash on ' .. fname)
    M[fname] = fn
  end
end

return M
