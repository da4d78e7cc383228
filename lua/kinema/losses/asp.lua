-- ASP: STOA-VLP spatial-temporal action set prediction (eq 8-9).
-- Per sample the targets are the distinct verb tokens' text outputs
-- (truncated to M) padded with copies of t_[CLS] (the empty action) up to M
-- rows, detached; every one of the M action outputs is matched (Hungarian,
-- maximising the total softmax-over-targets of the dot product); the loss is
-- the MSE of the matched raw pairs (eq 9), averaged over pairs and dimensions,
-- then over the batch. A caption with no verb matches every action to t_[CLS].
-- Options as OTA's: match_sim = 'dot' | 'cos', normalize = false | true.
--
-- inputs:
--   actions [B,M,d]             action encoder outputs
--   verbs [B,K,d]               text-encoder outputs at the verb tokens
--   verb_mask [B,K] bool        optional, true = a real verb (any order)
--     or text_tokens [B,L,d] + verb_positions [B,K] int64 (-1 = none)
--   verb_ids [B,K] int64        optional token ids: a repeated id keeps only
--                               its first occurrence (the "distinct" verbs)
--   text_cls [B,d]              the text [CLS] output
-- parts: verbs (mean number of verb targets kept per sample); trivial (as OTA's:
--   the MSE of predicting the mean matched target, the targets' variance)
-- extras: {rows, cols, targets [B,M,d]}
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local ota = require 'kinema.losses.ota'

local M = {}

-- Marks the later repeats of an id among the valid entries as invalid.
function M.first_occurrences(ids, mask)
  local K = ids:size(1)
  local same = ids:unsqueeze(2):eq(ids:unsqueeze(1)):logical_and(mask:unsqueeze(1))  -- [B, j, j']
  local earlier = torch.ones({K, K}, {dtype = torch.bool, device = ids.device}):tril(-1)  -- j' < j
  local repeated = same:logical_and(earlier:unsqueeze(0)):any(2)
  return mask:logical_and(repeated:logical_not())
end

function M.asp(inputs, opts)
  opts = U.options('asp', opts, {'match_sim', 'normalize'})
  local x = U.need('asp', inputs, 'actions', 3, '[B, M, d]')
  local B, Mq, d = x:size(0), x:size(1), x:size(2)
  local cls = U.need('asp', inputs, 'text_cls', 2, '[B, d]')
  local verbs, verb_mask = ota.gather_tokens('asp', inputs, 'verbs', 'verb_mask', 'verb_positions')
  U.same_size('asp', x, 'actions', 0, verbs, 'verbs', 0)
  U.same_size('asp', x, 'actions', 0, cls, 'text_cls', 0)
  U.same_size('asp', x, 'actions', 2, verbs, 'verbs', 2)
  U.same_size('asp', x, 'actions', 2, cls, 'text_cls', 1)
  if inputs.verb_ids ~= nil then
    local ids = U.need('asp', inputs, 'verb_ids', 2, 'int64 [B, K]')
    U.check(tostring(ids.shape) == tostring(verb_mask.shape), 'asp', "'verb_ids' must be [B, K] like the verbs")
    verb_mask = M.first_occurrences(ids, verb_mask)
  end
  local verbs_c, counts = U.compact(verbs:detach(), verb_mask)
  local K = verbs_c:size(1)
  if K < Mq then
    verbs_c = torch.cat({verbs_c, torch.zeros({B, Mq - K, d}, {dtype = verbs_c.dtype, device = x.device})}, 1)
  elseif K > Mq then
    verbs_c = verbs_c:narrow(1, 0, Mq)
  end
  counts = counts:clamp_max(Mq)
  local is_verb = torch.arange(Mq, {dtype = torch.int64, device = x.device}):view({1, Mq}):lt(counts:view({B, 1}))
  local targets = torch.where(is_verb:unsqueeze(-1), verbs_c,
                              cls:detach():to(verbs_c.dtype):unsqueeze(1):expand({B, Mq, d}))
  local full = torch.full({B}, Mq, {dtype = torch.int64, device = x.device})
  local loss, info = U.matching_mse('asp', x, full, targets:to(x.dtype), full, opts)
  return loss, {verbs = counts:to(torch.float64):mean():item(), trivial = info.trivial},
         {rows = info.rows, cols = info.cols, targets = targets}
end

losses.register('asp', M.asp, 'STOA action set prediction: Hungarian matching of actions to verbs padded with [CLS], MSE')

return M
