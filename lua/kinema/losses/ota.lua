-- OTA: STOA-VLP dynamic object-text alignment (eq 6-7).
-- Per sample: rows o = the valid trajectory outputs [N,d]; targets T = [the
-- valid noun-token text outputs ; t_[CLS]] [(L_noun + 1), d], detached (the
-- text side is frozen for this loss). P = softmax over targets of the dot
-- product o T^T (as the authors' code; opts.match_sim = 'cos' for cosine);
-- a Hungarian matching maximising the total P (kinema.ops.linear_assignment,
-- batched, no gradient) picks min(N, L_noun + 1) pairs; the loss is the MSE
-- between the matched raw o and T rows (eq 7), averaged over pairs and
-- dimensions, then over the samples (a sample without a valid trajectory is
-- left out of the average). opts.normalize = true L2-normalises both rows
-- first: (2/d)(1 - cos), a gradient ~d/2 times smaller (for ablations).
--
-- inputs:
--   trajectories [B,N,d]         trajectory encoder outputs
--   trajectory_mask [B,N] bool   optional, true = valid trajectory
--   nouns [B,K,d]                text-encoder outputs at the noun tokens
--   noun_mask [B,K] bool         optional, true = a real noun (any order)
--     or text_tokens [B,L,d] + noun_positions [B,K] int64 (-1 = none)
--   text_cls [B,d]               the text [CLS] output (the "empty" target)
-- parts: pairs (mean number of matched pairs per sample); trivial (the MSE of
--   predicting every row as the mean matched target: the targets' variance)
-- extras: {rows, cols} the matched pairs ([B,P] int64, -1 padded) as indices
--   into the compacted (valid-first) trajectories and targets; probability
--   [B,N,K+1] the P the matching maximised
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'

local M = {}

-- Noun features and mask from either nouns/noun_mask or text_tokens/noun_positions.
function M.gather_tokens(name, inputs, key, mask_key, positions_key)
  if inputs[key] ~= nil then
    local x = U.need(name, inputs, key, 3, '[B, K, d]')
    return x, U.mask(name, inputs, mask_key, x:size(0), x:size(1), x.device)
  end
  local tokens = U.need(name, inputs, 'text_tokens', 3, '[B, L, d] (or give ' .. key .. ')')
  local pos = U.need(name, inputs, positions_key, 2, 'int64 [B, K] (-1 = none)')
  U.same_size(name, tokens, 'text_tokens', 0, pos, positions_key, 0)
  U.check(pos:max():item() < tokens:size(1), name, "'%s' must index positions below %d", positions_key, tokens:size(1))
  local mask = pos:ge(0)
  local idx = pos:clamp_min(0):unsqueeze(-1):expand({pos:size(0), pos:size(1), tokens:size(2)})
  return tokens:gather(1, idx), mask
end

function M.ota(inputs, opts)
  opts = U.options('ota', opts, {'match_sim', 'normalize'})
  local o = U.need('ota', inputs, 'trajectories', 3, '[B, N, d]')
  local B, N, d = o:size(0), o:size(1), o:size(2)
  local cls = U.need('ota', inputs, 'text_cls', 2, '[B, d]')
  local nouns, noun_mask = M.gather_tokens('ota', inputs, 'nouns', 'noun_mask', 'noun_positions')
  U.same_size('ota', o, 'trajectories', 0, nouns, 'nouns', 0)
  U.same_size('ota', o, 'trajectories', 0, cls, 'text_cls', 0)
  U.same_size('ota', o, 'trajectories', 2, nouns, 'nouns', 2)
  U.same_size('ota', o, 'trajectories', 2, cls, 'text_cls', 1)
  local rows, row_counts = U.compact(o, U.mask('ota', inputs, 'trajectory_mask', B, N, o.device))
  local nouns_c, noun_counts = U.compact(nouns:detach(), noun_mask)
  local K = nouns_c:size(1)
  -- [valid nouns ; t_CLS ; padding]: t_CLS goes to row noun_counts[b].
  local targets = torch.cat({nouns_c, torch.zeros({B, 1, d}, {dtype = nouns_c.dtype, device = o.device})}, 1)
  targets = targets:scatter(1, noun_counts:view({B, 1, 1}):expand({B, 1, d}), cls:detach():view({B, 1, d}):to(targets.dtype))
  local loss, info = U.matching_mse('ota', rows, row_counts, targets:to(o.dtype), noun_counts + 1, opts)
  return loss, {pairs = info.pairs, trivial = info.trivial},
         {rows = info.rows, cols = info.cols, targets = targets, probability = info.probability}
end

losses.register('ota', M.ota, 'STOA object-text alignment: Hungarian matching of trajectories to nouns + [CLS], MSE')

return M
