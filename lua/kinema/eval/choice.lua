-- Choice-style evaluation: multiple choice, open-ended QA over an answer vocabulary, and
-- hard-negative caption pairs. Accuracies are percentages. Index arguments (answers, labels) are
-- 0-based class/option indices, as int64 tensors or Lua arrays of those numbers.
local torch = require 'torch'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

local function index_tensor(x, name, fn)
  if not torch.is_tensor(x) then
    check(type(x) == 'table', "%s: argument '%s' must be an int64 tensor or a Lua array", fn, name)
    x = torch.tensor(x, {dtype = torch.int64})
  end
  return x:to(torch.int64):reshape({-1}):cpu()
end

local function check_scores(scores, name, fn)
  check(torch.is_tensor(scores) and scores:dim() == 2,
        "%s: argument '%s' must be a 2-D tensor, got %s", fn, name,
        torch.is_tensor(scores) and (scores:dim() .. 'D') or type(scores))
  check(not scores:isnan():any():item(), "%s: argument '%s' contains NaN", fn, name)
end

-- argmax over dim 1; ties go to the lowest index (torch.max's documented choice is unspecified,
-- so break ties explicitly and deterministically).
local function first_argmax(scores)
  local best = scores:max{dim = 1, keepdim = true}
  local n = scores:size(1)
  local idx = torch.arange(n, {device = scores.device}):view({1, -1}):expand(scores:size())
  local masked = torch.where(scores:eq(best), idx, torch.full({1, 1}, n, {dtype = torch.int64, device = scores.device}))
  return (masked:min{dim = 1}):cpu()
end

-- multiple_choice(scores [N, num_options], answers [N]) -> accuracy in percent: the option of
-- highest similarity must be the correct one (ties resolve to the lowest option index).
function M.multiple_choice(scores, answers)
  check_scores(scores, 'scores', 'multiple_choice')
  answers = index_tensor(answers, 'answers', 'multiple_choice')
  local n, k = scores:size(0), scores:size(1)
  check(n > 0, "multiple_choice: 'scores' has no rows")
  check(answers:size(0) == n, "multiple_choice: %d answers for %d questions", answers:size(0), n)
  check(answers:min():item() >= 0 and answers:max():item() < k,
        "multiple_choice: 'answers' must be 0-based option indices in [0, %d)", k)
  local pred = first_argmax(scores:detach())
  return pred:eq(answers):to(torch.float64):mean():item() * 100
end

-- qa_accuracy(logits [N, num_answers], labels [N]) -> accuracy in percent. A label outside
-- [0, num_answers) (conventionally -1: the ground-truth answer is not in the vocabulary) can never
-- be predicted, so it counts as wrong and stays in the denominator.
function M.qa_accuracy(logits, labels)
  check_scores(logits, 'logits', 'qa_accuracy')
  labels = index_tensor(labels, 'labels', 'qa_accuracy')
  local n = logits:size(0)
  check(n > 0, "qa_accuracy: 'logits' has no rows")
  check(labels:size(0) == n, 'qa_accuracy: %d labels for %d questions', labels:size(0), n)
  local pred = first_argmax(logits:detach())
  return pred:eq(labels):to(torch.float64):mean():item() * 100
end

-- hard_negative_accuracy(pos_scores [N], negatives) -> {noun=, verb=, all=} in percent.
-- negatives maps a kind ('noun', 'verb', ...) to scores [N, M] (or [N] for one negative per
-- sample) of hard-negative captions against the same video. Pair accuracy: the percentage of
-- (positive, negative) pairs where the positive caption scores strictly higher (a tie is a
-- failure: the model did not tell them apart). 'all' pools the pairs of every kind.
function M.hard_negative_accuracy(pos_scores, negatives)
  check(torch.is_tensor(pos_scores), "hard_negative_accuracy: 'pos_scores' must be a tensor")
  local pos = pos_scores:detach():to(torch.float64):reshape({-1}):cpu()
  local n = pos:size(0)
  check(n > 0, "hard_negative_accuracy: 'pos_scores' is empty")
  check(not pos:isnan():any():item(), "hard_negative_accuracy: 'pos_scores' contains NaN")
  check(type(negatives) == 'table', "hard_negative_accuracy: 'negatives' must be a table {kind = scores}")
  check(negatives.all == nil, "hard_negative_accuracy: 'all' is reserved for the pooled accuracy; rename that kind")
  local out, wins, pairs_total = {}, 0, 0
  for kind, neg in pairs(negatives) do
    check(torch.is_tensor(neg), "hard_negative_accuracy: negatives['%s'] must be a tensor", tostring(kind))
    neg = neg:detach():to(torch.float64):cpu()
    if neg:dim() == 1 then neg = neg:view({-1, 1}) end
    check(neg:dim() == 2 and neg:size(0) == n,
          "hard_negative_accuracy: negatives['%s'] must be [%d, M] or [%d], got %s", tostring(kind), n, n,
          tostring(neg.shape))
    check(not neg:isnan():any():item(), "hard_negative_accuracy: negatives['%s'] contains NaN", tostring(kind))
    local won = pos:view({-1, 1}):gt(neg):sum():item()
    local total = neg:numel()
    check(total > 0, "hard_negative_accuracy: negatives['%s'] is empty", tostring(kind))
    out[kind] = won / total * 100
    wins, pairs_total = wins + won, pairs_total + total
  end
  check(pairs_total > 0, "hard_negative_accuracy: 'negatives' holds no kind")
  out.all = wins / pairs_total * 100
  return out
end

return M
