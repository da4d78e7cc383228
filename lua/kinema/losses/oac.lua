-- OAC: OA-Trans object-aware contrastive loss (eq 3-5).
--   L_tag  = CE over videos of cos(v_j, t_l,i)/tau      (tags i -> videos j)
--   L_mask = CE over captions of cos(v_l,i, t_j)/tau    (masked frame i -> captions j)
--   L      = L_VTC + lambda * (L_tag + L_mask),  lambda = 0.5
--
-- inputs:
--   video_emb [B,d], text_emb [B,d]   as vtc (L_VTC)
--   tag_emb [B,d]                     t_l: text embedding of the anchor frame's
--                                     object tags joined into one string
--   masked_video_emb [B,d]            v_l: the object-masked anchor frame's
--                                     embedding (mean over kept patches)
--   tau | logit_scale                 as vtc (default opts.tau = 0.07)
--   gather                            distributed: the column gatherer, as vtc
--                                     (the tag and mask terms use the same columns)
-- opts: lambda (0.5), tau, splice_local
-- parts: vtc, tag, mask, tau; trivial (its value at equal logits)
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local vtc = require 'kinema.losses.vtc'

local M = {}

function M.oac(inputs, opts)
  opts = U.options('oac', opts, {'lambda', 'tau', 'tau_min', 'tau_max', 'directions', 'splice_local'})
  local lambda = opts.lambda or 0.5
  local l_vtc, vtc_parts = vtc.loss('oac', inputs, opts, 'mean')
  local v = inputs.video_emb
  local tags = U.need('oac', inputs, 'tag_emb', 2, '[B, d]')
  local masked = U.need('oac', inputs, 'masked_video_emb', 2, '[B, d]')
  U.check(tostring(tags.shape) == tostring(v.shape) and tostring(masked.shape) == tostring(v.shape), 'oac',
          "'tag_emb' and 'masked_video_emb' must be %s like 'video_emb'", tostring(v.shape))
  local tau = U.temperature('oac', inputs, opts, 0.07)
  local cols, offset = U.global_columns('oac', inputs, opts, {{'text_emb', inputs.text_emb}, {'video_emb', v}})
  local l_tag = vtc.contrastive('oac', U.cosine_matrix(tags, cols.video_emb) / tau, offset)
  local l_mask = vtc.contrastive('oac', U.cosine_matrix(masked, cols.text_emb) / tau, offset)
  local loss = l_vtc + (l_tag + l_mask) * lambda
  return loss, {vtc = l_vtc:detach(), tag = l_tag:detach(), mask = l_mask:detach(), tau = vtc_parts.tau,
                trivial = vtc_parts.trivial * (1 + 2 * lambda)}
end

losses.register('oac', M.oac, 'OA-Trans object-aware contrastive loss: VTC + lambda (tags->video + masked frame->text)')

return M
