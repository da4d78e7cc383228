-- Open-ended video QA as answer classification (the ALPRO / VIOLET protocol):
-- an answer head maps a question-video feature to logits over the answer
-- vocabulary (e.g. the 1,500 most frequent training answers); accuracy counts a
-- question whose answer is outside the vocabulary (label -1) as wrong.
--   features: the fused [CLS] output of a fusion encoder (pass it as is), or
--             the concatenated unimodal embeddings, qa.concat_features(v, q)
--   local head = qa.AnswerHead{in_dim = 2 * 256, num_answers = 1500}
--   qa.fit_head(head, train_features, train_labels, {epochs = 10, lr = 1e-3})
--   local acc = qa.accuracy(head, test_features, test_labels)
local torch = require 'torch'
local nn = require 'kinema.nn'
local optim = require 'kinema.optim'
local choice = require 'kinema.eval.choice'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

-- Linear -> GELU -> LayerNorm -> Linear, the answer MLP of ALBEF-style QA heads.
local AnswerHead = nn.Module:extend('AnswerHead')
M.AnswerHead = AnswerHead

function AnswerHead:init(cfg)
  check(type(cfg) == 'table' and (cfg.in_dim or 0) > 0 and (cfg.num_answers or 0) > 0,
        'AnswerHead{in_dim =, num_answers =[, hidden =]} needs positive in_dim and num_answers')
  local hidden = cfg.hidden or 2 * cfg.in_dim
  self.fc1 = nn.Linear(cfg.in_dim, hidden)
  self.act = nn.GELU()
  self.norm = nn.LayerNorm(hidden)
  self.fc2 = nn.Linear(hidden, cfg.num_answers)
end

function AnswerHead:forward(x) return self.fc2(self.norm(self.act(self.fc1(x)))) end

-- [v ; q] for unimodal video and question embeddings [N, d] each.
function M.concat_features(video_emb, question_emb)
  check(torch.is_tensor(video_emb) and torch.is_tensor(question_emb) and video_emb:dim() == 2 and
        question_emb:dim() == 2 and video_emb:size(0) == question_emb:size(0),
        'qa.concat_features: video_emb and question_emb must be [N, d] with the same N')
  return torch.cat({video_emb, question_emb}, 1)
end

-- Trains the head on frozen features [N, D] with cross entropy; labels [N]
-- int64 (or a Lua array of 0-based ids), -1 = answer outside the vocabulary
-- (left out of training). opts: epochs (10), batch_size (256), lr (1e-3),
-- weight_decay (0.01), seed (0). Returns the mean loss of the last epoch.
function M.fit_head(head, features, labels, opts)
  opts = opts or {}
  if type(labels) == 'table' then labels = torch.tensor(labels, {dtype = torch.int64}) end
  check(torch.is_tensor(features) and features:dim() == 2, 'qa.fit_head: features must be [N, D]')
  check(labels:size(0) == features:size(0), 'qa.fit_head: %d labels for %d features', labels:size(0),
        features:size(0))
  local known = labels:ge(0)
  features, labels = features:detach()[known], labels[known]
  local n = features:size(0)
  check(n > 0, 'qa.fit_head: no training question has an answer in the vocabulary')
  local opt = optim.AdamW(head, {lr = opts.lr or 1e-3, weight_decay = opts.weight_decay or 0.01})
  local bs = opts.batch_size or 256
  local gen_state = torch.get_rng_state()
  torch.manual_seed(opts.seed or 0)
  local last = 0
  head:train()
  for _ = 1, opts.epochs or 10 do
    local order = torch.randperm(n)
    local sum, batches = 0, 0
    for s = 0, n - 1, bs do
      local idx = order:narrow(0, s, math.min(bs, n - s))
      local loss = torch.cross_entropy_loss(head(features:index_select(0, idx)), labels:index_select(0, idx))
      opt:zero_grad()
      loss:backward()
      opt:step()
      sum, batches = sum + loss:item(), batches + 1
    end
    last = sum / batches
  end
  torch.set_rng_state(gen_state)
  head:eval()
  return last
end

-- Accuracy in percent of the head's argmax answer (eval.qa_accuracy's rules).
function M.accuracy(head, features, labels)
  local logits = torch.no_grad(function() return head(features) end)
  return choice.qa_accuracy(logits, labels)
end

return M
