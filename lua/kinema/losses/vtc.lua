-- VTC: video-text contrastive loss (STOA eq 3-5, OA-Trans eq 1-2, DemoVLP eq 4-5).
--   S[i,j] = cos(v_i, t_j) / tau;  L = (CE(S, diag) + CE(S^T, diag)) / 2
-- Soft targets W replace the diagonal when given (S-ViLM's W^v / W^c).
--
-- inputs:
--   video_emb [B,d], text_emb [B,d]   local rows (gradient flows to them)
--   tau | logit_scale                  temperature: a 0-d tensor (e.g. the
--                                      model's Temperature block output,
--                                      learnable, clamped to [0.01, 1]) or a
--                                      number; or CLIP's logit_scale = log(1/tau)
--                                      (clamped to tau in [0.01, 1]); else opts.tau (0.07)
--   Wv (alias W), Wc                   optional soft targets: row i of Wv for
--                                      video i over captions, row j of Wc for
--                                      caption j over videos, [B,G] or this
--                                      rank's [B,B] block; Wc defaults to Wv^T
--                                      (only when Wv is square)
--   gather                             distributed: the column gatherer
--                                      gather(key, x) -> [G,...], offset
--                                      (kinema.dist.column_gatherer()); the
--                                      columns are every rank's rows with the
--                                      local block replaced by the local
--                                      tensors (opts.splice_local = false to
--                                      keep them as gathered); targets are
--                                      offset + i.
-- opts: tau (0.07), tau_min/tau_max (logit_scale clamp), directions 'mean' (STOA eq 5) | 'sum'
-- parts: v2t, t2v (each direction's CE), tau; trivial (its value at equal logits)
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'

local M = {}

-- The [B,G] logits of both directions for local rows against global columns.
function M.logits(name, inputs, opts)
  local v = U.need(name, inputs, 'video_emb', 2, '[B, d]')
  local t = U.need(name, inputs, 'text_emb', 2, '[B, d]')
  U.same_size(name, v, 'video_emb', 0, t, 'text_emb', 0)
  U.same_size(name, v, 'video_emb', 1, t, 'text_emb', 1)
  local tau = U.temperature(name, inputs, opts, 0.07)
  local cols, offset = U.global_columns(name, inputs, opts, {{'text_emb', t}, {'video_emb', v}})
  local t_all, v_all = cols.text_emb, cols.video_emb
  local v2t = U.cosine_matrix(v, t_all) / tau
  local t2v = U.cosine_matrix(t, v_all) / tau
  return v2t, t2v, offset, tau
end

-- The soft targets Wv (alias W) and Wc over G columns (nil when not given):
-- Wc defaults to Wv^T when Wv is square; a local [B,B] block is placed at the
-- rank's offset.
function M.soft_targets(name, inputs, offset, G)
  local Wv, Wc = inputs.Wv or inputs.W, inputs.Wc
  if Wv ~= nil and Wc == nil then
    U.check(torch.is_tensor(Wv) and Wv:dim() == 2 and Wv:size(0) == Wv:size(1), name,
            "input 'Wc' is required when 'Wv' is not square (distributed columns)")
    Wc = Wv:t()
  end
  U.check(Wc == nil or Wv ~= nil, name, "input 'Wc' given without 'Wv'")
  return U.soft_targets(name, Wv, 'Wv', offset, G), U.soft_targets(name, Wc, 'Wc', offset, G)
end

-- Cross entropy of [B,G] logits against the diagonal shifted by offset, or
-- against soft targets W [B,G].
function M.contrastive(name, logits, offset, W, key)
  if W ~= nil then
    U.check(torch.is_tensor(W) and tostring(W.shape) == tostring(logits.shape), name,
            "soft targets '%s' must be %s like the logits, got %s", key, tostring(logits.shape),
            torch.is_tensor(W) and tostring(W.shape) or type(W))
    return U.soft_cross_entropy(logits, W)
  end
  return U.cross_entropy(logits, U.diagonal_targets(logits:size(0), offset, logits.device))
end

function M.loss(name, inputs, opts, default_directions)
  opts = opts or {}
  local v2t, t2v, offset, tau = M.logits(name, inputs, opts)
  local Wv, Wc = M.soft_targets(name, inputs, offset, v2t:size(1))
  local l_v2t = M.contrastive(name, v2t, offset, Wv, 'Wv')
  local l_t2v = M.contrastive(name, t2v, offset, Wc, 'Wc')
  local directions = opts.directions or default_directions
  local loss = U.directions(name, l_v2t, l_t2v, directions)
  return loss, {v2t = l_v2t:detach(), t2v = l_t2v:detach(), tau = U.number(tau),
                trivial = U.trivial_contrastive(v2t:size(1), directions)}
end

M.options = {'tau', 'tau_min', 'tau_max', 'directions', 'splice_local'}
function M.vtc(inputs, opts)
  return M.loss('vtc', inputs, U.options('vtc', opts, M.options), 'mean')
end

losses.register('vtc', M.vtc, 'video-text contrastive loss, (CE(S) + CE(S^T))/2, optional soft targets')

return M
