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
--   Wv [B,G] (alias W), Wc [B,G]  optional soft targets (Wc default Wv^T)
--   tau | logit_scale             outer temperature (as vtc; default opts.tau = 0.07)
--   group_tokens_all [G,M,d], nouns_all [G,K,d], noun_mask_all [G,K], rank_offset
--                                 distributed columns (local block spliced in)
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
  local distributed = inputs.group_tokens_all ~= nil or inputs.nouns_all ~= nil
  local v2c, c2v, offset
  if not distributed then
    local G = ops.grounding_similarity(g, n, mask, tau_g)
    v2c, c2v, offset = G, G:t(), 0
  else
    U.check(inputs.group_tokens_all ~= nil and inputs.nouns_all ~= nil, 'grounding',
            "inputs 'group_tokens_all' and 'nouns_all' (gathered columns) must be given together")
    local g_all = U.columns('grounding', inputs, opts, 'group_tokens', 'group_tokens_all', g)
    local n_all
    n_all, offset = U.columns('grounding', inputs, opts, 'nouns', 'nouns_all', n)
    local mask_all = inputs.noun_mask_all
    if mask_all == nil then
      mask_all = torch.ones({n_all:size(0), n_all:size(1)}, {dtype = torch.bool, device = n.device})
    end
    U.check(torch.is_tensor(mask_all) and mask_all:dim() == 2 and mask_all:size(0) == n_all:size(0)
            and mask_all:size(1) == n_all:size(1), 'grounding', "input 'noun_mask_all' must be [G, K] like 'nouns_all'")
    -- the local block always carries the local mask
    mask_all = mask_all:ne(0)
    mask_all = torch.cat({mask_all:narrow(0, 0, offset), mask,
                          mask_all:narrow(0, offset + B, mask_all:size(0) - offset - B)}, 0)
    U.check(g_all:size(0) == n_all:size(0), 'grounding', "'group_tokens_all' and 'nouns_all' must have the same rows")
    v2c = ops.grounding_similarity(g, n_all, mask_all, tau_g)
    c2v = ops.grounding_similarity(g_all, n, mask, tau_g):t()
  end
  local Wv, Wc = inputs.Wv or inputs.W, inputs.Wc
  if Wv ~= nil and Wc == nil then
    U.check(Wv:dim() == 2 and Wv:size(0) == Wv:size(1), 'grounding', "input 'Wc' is required when 'Wv' is not square")
    Wc = Wv:t()
  end
  local l_v2c = vtc.contrastive('grounding', v2c / tau, offset, Wv, 'Wv')
  local l_c2v = vtc.contrastive('grounding', c2v / tau, offset, Wc, 'Wc')
  local loss = U.directions('grounding', l_v2c, l_c2v, opts.directions or 'sum')
  return loss, {v2c = l_v2c:detach(), c2v = l_c2v:detach(), tau = U.number(tau),
                trivial = U.trivial_contrastive(v2c:size(1), opts.directions or 'sum')}, {similarity = v2c}
end

losses.register('grounding', M.grounding, 'S-ViLM spatial grounding: soft-target CE over G(video, caption)/tau, both directions')

return M
