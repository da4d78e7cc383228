-- Open-ended QA: the answer head learns a separable problem; out-of-vocabulary answers count wrong.
local T = require 'kinema.test'
local eval = require('kinema').eval
local qa = eval.qa

-- Each answer a has its own direction in feature space (video part + question part).
local function dataset(n, num_answers, seed)
  torch.manual_seed(seed)
  local centers = torch.randn(num_answers, 8) * 3
  local labels = torch.randint(0, num_answers, {n})
  local v = centers:index_select(0, labels) + torch.randn(n, 8) * 0.3
  local q = centers:index_select(0, labels):flip({1}) + torch.randn(n, 8) * 0.3
  return qa.concat_features(v, q), labels
end

T.test('the answer head fits separable answers and reaches full test accuracy', function()
  local xtr, ytr = dataset(400, 5, 1)
  local head = qa.AnswerHead{in_dim = 16, num_answers = 5, hidden = 32}
  local loss = qa.fit_head(head, xtr, ytr, {epochs = 30, lr = 3e-3, batch_size = 64})
  T.is_true(loss < 0.1, 'final training loss ' .. loss)
  -- the test set shares the answer centres (same seed for centres, fresh noise)
  torch.manual_seed(1)
  local centers = torch.randn(5, 8) * 3
  local labels = torch.tensor({0, 1, 2, 3, 4, 0, 1, 2, 3, 4}, {dtype = torch.int64})
  local v = centers:index_select(0, labels) + torch.randn(10, 8) * 0.3
  local q = centers:index_select(0, labels):flip({1}) + torch.randn(10, 8) * 0.3
  T.eq(qa.accuracy(head, qa.concat_features(v, q), labels), 100)
  -- an answer outside the vocabulary (-1) can never be right: 9 of 10
  local with_oov = labels:clone()
  with_oov[9] = -1
  T.close(qa.accuracy(head, qa.concat_features(v, q), with_oov), 90)
end)

T.test('fit_head leaves out-of-vocabulary questions and the global RNG alone', function()
  local x, y = dataset(64, 3, 2)
  y['0:10'] = -1
  local head = qa.AnswerHead{in_dim = 16, num_answers = 3}
  local state = torch.get_rng_state()
  qa.fit_head(head, x, y, {epochs = 1})
  T.eq(torch.get_rng_state(), state)
  local all_oov = torch.full({4}, -1, {dtype = torch.int64})
  T.raises(function() qa.fit_head(qa.AnswerHead{in_dim = 16, num_answers = 3}, x['0:4'], all_oov) end,
           'no training question has an answer in the vocabulary')
end)

T.test('bad arguments are named', function()
  T.raises(function() qa.AnswerHead{in_dim = 0, num_answers = 3} end, 'positive in_dim and num_answers')
  T.raises(function() qa.concat_features(torch.zeros(2, 3), torch.zeros(3, 3)) end, 'the same N')
  T.raises(function() qa.fit_head(qa.AnswerHead{in_dim = 3, num_answers = 2}, torch.zeros(2, 3), {0}) end,
           '1 labels for 2 features')
end)
