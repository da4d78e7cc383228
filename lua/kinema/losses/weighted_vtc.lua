-- Weighted contrastive loss (S-ViLM eq 7): VTC with the cut-and-paste soft
-- targets W^v (videos over captions) and W^c = (W^v)^T (captions over videos);
-- the video embedding is the mean of the group tokens.
--   L = CE_soft(S, W^v) + CE_soft(S^T, W^c),  S[i,j] = cos(f_i^v, f_j^c) / tau
-- The paper sums the two directions (eq 7); opts.directions = 'mean' halves it.
--
-- inputs:
--   group_tokens [B,M,d]  (video embedding = their mean), or video_emb [B,d]
--   text_emb [B,d]        caption [CLS] embeddings
--   Wv (alias W)          required; Wc optional (default Wv^T when square); as vtc
--   tau | logit_scale     as vtc (default opts.tau = 0.07)
--   gather                distributed: the column gatherer, as vtc (it gathers
--                         the group-token means as video_emb)
-- opts: directions 'sum' (eq 7) | 'mean', tau, splice_local
-- parts: v2t, t2v, tau; trivial (its value at equal logits)
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local vtc = require 'kinema.losses.vtc'

local function weighted_vtc(inputs, opts)
  opts = U.options('weighted_vtc', opts, {'tau', 'tau_min', 'tau_max', 'directions', 'splice_local'})
  U.check(inputs.Wv ~= nil or inputs.W ~= nil, 'weighted_vtc', "input 'Wv' (soft targets [B, G]) is required")
  local args = inputs
  if inputs.group_tokens ~= nil then
    local g = U.need('weighted_vtc', inputs, 'group_tokens', 3, '[B, M, d]')
    args = setmetatable({video_emb = g:mean(1)}, {__index = inputs})
  end
  return vtc.loss('weighted_vtc', args, opts, 'sum')
end

losses.register('weighted_vtc', weighted_vtc, 'S-ViLM weighted contrastive loss (eq 7), soft targets W^v / W^c')

return {weighted_vtc = weighted_vtc}
