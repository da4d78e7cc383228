-- MLM: masked language modelling loss, cross entropy at the chosen positions
-- only (labels -100 elsewhere, as kinema's MLM masker produces them).
--
-- inputs:
--   labels [B,L] int64     original token id at chosen positions, -100 elsewhere
--   logits [B,L,V]         vocabulary logits from the caller's head, or
--   hidden [B,L,D] + head  the fusion text outputs and a function head(h [N,D])
--                          -> logits [N,V], applied to the chosen positions only
--                          (no [B,L,V] tensor is built)
-- opts: ignore_index (-100), label_smoothing (0)
-- parts: accuracy (over chosen positions), count (number of chosen positions); trivial (unigram entropy of the targets)
-- A batch with no chosen position gives a zero loss (still in the graph).
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'

local M = {}

-- Shared by MLM and PLM: CE over the positions of `labels` not equal to ignore.
function M.token_cross_entropy(name, inputs, labels, opts)
  local ignore = opts.ignore_index or -100
  U.check(torch.is_tensor(labels) and labels.dtype == torch.int64, name, "labels must be an int64 tensor")
  local chosen = labels:ne(ignore)
  local logits, targets
  if inputs.logits ~= nil then
    logits = U.need(name, inputs, 'logits', labels:dim() + 1, '[' .. table.concat(labels:size(), ', ') .. ', V]')
    for d = 0, labels:dim() - 1 do U.same_size(name, logits, 'logits', d, labels, 'labels', d) end
    logits = logits[chosen]
    targets = labels[chosen]
  else
    local hidden = U.need(name, inputs, 'hidden', labels:dim() + 1, '[B, L, D] (or give logits)')
    U.check(type(inputs.head) == 'function' or type(inputs.head) == 'table', name,
            "input 'head' (function(h [N, D]) -> logits [N, V]) is required with 'hidden'")
    for d = 0, labels:dim() - 1 do U.same_size(name, hidden, 'hidden', d, labels, 'labels', d) end
    targets = labels[chosen]
    logits = inputs.head(hidden[chosen])
    U.check(torch.is_tensor(logits) and logits:dim() == 2 and logits:size(0) == targets:size(0), name,
            'head must return logits [%d, V]', targets:size(0))
  end
  local n = targets:size(0)
  if n == 0 then
    local anchor = inputs.logits or inputs.hidden
    return anchor:sum() * 0, {accuracy = 0, count = 0, trivial = 0}
  end
  local vocab = logits:size(1)
  U.check(targets:min():item() >= 0 and targets:max():item() < vocab, name,
          'labels must lie in [0, %d) or equal %d', vocab, ignore)
  local loss = torch.cross_entropy_loss(logits, targets, {label_smoothing = opts.label_smoothing or 0})
  local _, predicted = logits:detach():max(1)
  return loss, {accuracy = predicted:eq(targets):to(torch.float32):mean(), count = n,
                trivial = U.label_entropy(targets)}
end

function M.mlm(inputs, opts)
  opts = U.options('mlm', opts, {'ignore_index', 'label_smoothing'})
  local labels = U.need('mlm', inputs, 'labels', nil, 'int64 [B, L]')
  return M.token_cross_entropy('mlm', inputs, labels, opts)
end

losses.register('mlm', M.mlm, 'masked language modelling: CE at the chosen positions (labels -100 elsewhere)')

return M
