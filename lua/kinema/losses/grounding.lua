-- Grounding: S-ViLM inter-clip spatial grounding (eq 3-6).
-- G(i,j) = (1/K_j) sum_k cos(n_k, sum_m softmax_m(cos(g_m, n_k)/tau_g) g_m)
-- for video i's group tokens g and caption j's valid noun tokens n
-- (ops.grounding_similarity, chunked, never [B,B,K,M]); then
--   L_g = CE_soft(G/tau, W^v) + CE_soft(G^T/tau, W^c)    (eq 6; the paper sums
-- the directions: opts.directions = 'mean' halves). Without W^v the
-- targets are the diagonal (eq 4).
--
-- inputs:
--   group_tokens [B,M,d]          the video's final group tokens
--   nouns [B,K,d]                 prompted noun-phrase embeddings per caption
--   noun_mask [B,K] bool          optional, true = a real noun; a caption
--                                 without nouns scores 0 against every video
--   Wv (alias W), Wc              optional soft targets, as vtc (Wc default Wv^T)
--   tau | logit_scale             outer temperature (as vtc; default opts.tau = 0.07)
--   gather                        distributed: the column gatherer, as vtc;
--                                 gathers group_tokens, nouns and noun_mask
-- opts: tau_g (0.07, the softmax over groups; a number), tau, directions 'sum' | 'mean'
-- parts: v2c, c2v, tau; trivial (its value at equal logits)
local torch = require 'torch'
local ops = torch.ops.kinema  -- kinema's operators (ops/), through the dispatcher
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local vtc = require 'kinema.losses.vtc'

local M = {}

function M.grounding(inputs, opts)
  opts = U.options('grounding', opts, {'tau', 'tau_min', 'tau_max', 'tau_g', 'directions', 'splice_local'})
  local g = U.need('grounding', inputs, 'group_tokens', 3, '[B, M, d]')
  local n = U.need('grounding', inputs, 'nouns', 3, '[B, K, d]')
  U.same_size('grounding', g, 'group_tokens', 0, n, 'nouns', 0)
  U.same_size('grounding', g, 'group_tokens', 2, n, 'nouns', 2)
  local B = g:size(0)
  local mask = U.mask('grounding', inputs, 'noun_mask', B, n:size(1), n.device)
  local tau_g = opts.tau_g or 0.07
  U.check(type(tau_g) == 'number' and tau_g > 0, 'grounding', "option 'tau_g' must be a positive number")
  local tau = U.temperature('grounding', inputs, opts, 0.07)
  local cols, offset = U.global_columns('grounding', inputs, opts,
                                        {{'group_tokens', g}, {'nouns', n, 'noun_mask', mask}})
  local v2c = ops.grounding_similarity(g, cols.nouns, cols.noun_mask, tau_g)
  local c2v = inputs.gather == nil and v2c:t() or ops.grounding_similarity(cols.group_tokens, n, mask, tau_g):t()
  local Wv, Wc = vtc.soft_targets('grounding', inputs, offset, v2c:size(1))
  local l_v2c = vtc.contrastive('grounding', v2c / tau, offset, Wv, 'Wv')
  local l_c2v = vtc.contrastive('grounding', c2v / tau, offset, Wc, 'Wc')
  local loss = U.directions('grounding', l_v2c, l_c2v, opts.directions or 'sum')
  return loss, {v2c = l_v2c:detach(), c2v = l_c2v:detach(), tau = U.number(tau),
                trivial = U.trivial_contrastive(v2c:size(1), opts.directions or 'sum')}, {similarity = v2c}
end

losses.register('grounding', M.grounding, 'S-ViLM spatial grounding: soft-target CE over G(video, caption)/tau, both directions')

return M
