-- PLM: prefix language modelling loss (SimVLM-style). With split point p and
-- len real tokens, the output at position i predicts token i + 1 for
-- p <= i + 1 < len: CE on the suffix only, from one fusion pass with the
-- prefix-causal mask (the caller's).
--
-- inputs:
--   logits [B,L,V], or hidden [B,L,D] + head(h [N,D]) -> [N,V] (as mlm)
--   targets [B,L] int64    next-token targets, -100 elsewhere (kinema's
--                          make_plm_batch gives them), or
--   input_ids [B,L] int64 + split_points [B] int64 + attention_mask [B,L]
--                          (or lengths [B]): targets built here as
--                          targets[b,i] = input_ids[b,i+1] if p_b <= i+1 < len_b
-- opts: ignore_index (-100), label_smoothing (0)
-- parts: accuracy, count (as mlm); trivial (unigram entropy of the targets)
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local mlm = require 'kinema.losses.mlm'

local M = {}

-- Next-token targets of the suffix: [B,L] int64, ignore_index elsewhere.
function M.targets(input_ids, split_points, lengths, ignore_index)
  local B, L = input_ids:size(0), input_ids:size(1)
  local next_pos = (torch.arange(L, {dtype = torch.int64, device = input_ids.device}) + 1):view({1, L})
  local p = split_points:to(torch.int64):view({B, 1})
  local n = lengths:to(torch.int64):view({B, 1})
  local predicted = next_pos:ge(p):logical_and(next_pos:lt(n))
  local shifted = torch.cat({input_ids:narrow(1, 1, L - 1),
                             torch.full({B, 1}, ignore_index, {dtype = torch.int64, device = input_ids.device})}, 1)
  return torch.where(predicted, shifted, torch.full_like(input_ids, ignore_index))
end

function M.plm(inputs, opts)
  opts = U.options('plm', opts, {'ignore_index', 'label_smoothing'})
  local ignore = opts.ignore_index or -100
  local targets = inputs.targets
  if targets == nil then
    local ids = U.need('plm', inputs, 'input_ids', 2, 'int64 [B, L] (or give targets)')
    local split = U.need('plm', inputs, 'split_points', 1, 'int64 [B]')
    U.same_size('plm', ids, 'input_ids', 0, split, 'split_points', 0)
    local lengths = inputs.lengths
    if lengths == nil then
      local mask = U.need('plm', inputs, 'attention_mask', 2, '[B, L] (or give lengths)')
      U.check(tostring(mask.shape) == tostring(ids.shape), 'plm', "'attention_mask' must match 'input_ids' %s",
              tostring(ids.shape))
      lengths = mask:ne(0):sum(1)
    end
    U.check(torch.is_tensor(lengths) and lengths:numel() == ids:size(0), 'plm', "'lengths' must be [B]")
    local bad = split:lt(1):logical_or(split:ge(lengths:view({-1})))
    U.check(not bad:any():item(), 'plm', "every split point must lie in [1, len - 1] (input 'split_points')")
    targets = M.targets(ids, split, lengths, ignore)
  else
    U.need('plm', inputs, 'targets', 2, 'int64 [B, L]')
  end
  return mlm.token_cross_entropy('plm', inputs, targets, opts)
end

losses.register('plm', M.plm, 'prefix language modelling: next-token CE on the suffix')

return M
