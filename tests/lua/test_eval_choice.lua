-- kinema.eval choice metrics: multiple choice, open-ended QA, hard-negative pairs.
local T = require 'kinema.test'
local eval = require('kinema').eval

T.test('multiple choice: argmax over options, ties to the lowest index', function()
  local scores = torch.tensor({
    {0.1, 0.2, 0.9, 0.3},  -- argmax 2, answer 2: right
    {0.7, 0.1, 0.2, 0.7},  -- tie 0/3 resolves to 0, answer 3: wrong
    {0.0, 0.5, 0.4, 0.1},  -- argmax 1, answer 1: right
  })
  T.close(eval.multiple_choice(scores, {2, 3, 1}), 200 / 3)
  T.close(eval.multiple_choice(scores, torch.tensor({2, 0, 1}, {dtype = torch.int64})), 100)
  T.raises(function() eval.multiple_choice(scores, {2, 4, 1}) end, "'answers' must be 0-based option indices in [0, 4)")
  T.raises(function() eval.multiple_choice(scores, {2, 3}) end, '2 answers for 3 questions')
  T.raises(function() eval.multiple_choice(torch.randn(3), {0}) end, "'scores' must be a 2-D tensor")
end)

T.test('open-ended QA: answers outside the vocabulary count as wrong', function()
  local logits = torch.tensor({
    {3.0, 1.0, 0.0},  -- pred 0, label 0: right
    {0.0, 2.0, 1.0},  -- pred 1, label 2: wrong
    {0.0, 0.0, 5.0},  -- pred 2, label -1 (not in the vocabulary): wrong
    {1.0, 4.0, 2.0},  -- pred 1, label 1: right
  })
  T.close(eval.qa_accuracy(logits, {0, 2, -1, 1}), 50)
  T.close(eval.qa_accuracy(logits, {0, 1, 2, 1}), 100)
  T.raises(function() eval.qa_accuracy(logits, {0, 1}) end, '2 labels for 4 questions')
  local nan = logits:clone(); nan['0, 0'] = 0 / 0
  T.raises(function() eval.qa_accuracy(nan, {0, 1, 2, 1}) end, "'logits' contains NaN")
end)

T.test('hard negatives: pair accuracy per kind and pooled', function()
  local pos = torch.tensor({0.9, 0.5, 0.2})
  local noun = torch.tensor({{0.1, 0.95}, {0.4, 0.5}, {0.3, 0.1}})
  -- pairs: .9>.1 yes, .9>.95 no, .5>.4 yes, .5>.5 no (tie), .2>.3 no, .2>.1 yes -> 3/6
  local verb = torch.tensor({0.8, 0.6, 0.1})  -- one per sample: yes, no, yes -> 2/3
  local acc = eval.hard_negative_accuracy(pos, {noun = noun, verb = verb})
  T.close(acc.noun, 50)
  T.close(acc.verb, 200 / 3)
  T.close(acc.all, 500 / 9)
  T.raises(function() eval.hard_negative_accuracy(pos, {noun = torch.randn(2, 2)}) end, "negatives['noun'] must be [3, M]")
  T.raises(function() eval.hard_negative_accuracy(pos, {}) end, 'holds no kind')
  T.raises(function() eval.hard_negative_accuracy(pos, {all = verb}) end, "'all' is reserved")
end)
