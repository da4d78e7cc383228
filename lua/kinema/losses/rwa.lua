-- RWA: DemoVLP region-word alignment (eq 6-12) with the global VTC.
-- S [Bv,Bt] (region -> word) and S' [Bt,Bv] (word -> region) come from
-- ops.rwa_similarity (thresholded attention, chunked; never
-- [B,B,N,L]); then
--   L_local = CE over captions of S/sigma + CE over videos of S'/sigma
--   L       = global_weight * L_VTC + local_weight * L_local   (both 1)
-- (docs/objectives.md: VTC averages its two directions; the paper sums all four
-- terms, which is global_weight = 2.)
--
-- inputs:
--   video_emb [B,d], text_emb [B,d]      global [CLS] embeddings (for L_VTC)
--   regions [B,N,d], region_mask [B,N]   region outputs, [CLS] excluded, mask
--                                        bool true = valid (optional)
--   words [B,L,d], word_mask [B,L]       word outputs, [CLS]/padding excluded by the mask
--   tau | logit_scale                    as vtc (default opts.tau = 0.05); sigma
--                                        defaults to the same temperature
--   gather                               distributed: the column gatherer, as vtc;
--                                        gathers regions, words and their masks too
-- opts: lambda (1; the authors' code uses 20), sigma (default tau), global_weight (1),
--       local_weight (1), tau, splice_local
-- parts: vtc, local_v2t, local_t2v, tau; trivial (its value at equal logits)
-- Also: losses.rwa_retrieval_scores(inputs, opts) -> [Bv,Bt] ranking scores
--   cos(v_i, t_j) + local_weight * (S[i,j] + S'[j,i]) / 2 (global plus local
--   similarity; the same rule as kinema.eval's global_local_score, transposed).
local torch = require 'torch'
local ops = torch.ops.kinema  -- kinema's operators (ops/), through the dispatcher
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'
local vtc = require 'kinema.losses.vtc'

local M = {}

local function tokens(name, inputs, key, mask_key)
  local x = U.need(name, inputs, key, 3, '[B, n, d]')
  return x, U.mask(name, inputs, mask_key, x:size(0), x:size(1), x.device)
end

-- S [B,G] (local videos against all captions) and S' [B,G] (local captions
-- against all videos), plus the column offset.
function M.local_similarities(name, inputs, opts)
  local r, rm = tokens(name, inputs, 'regions', 'region_mask')
  local w, wm = tokens(name, inputs, 'words', 'word_mask')
  U.same_size(name, r, 'regions', 2, w, 'words', 2)
  local lambda = opts.lambda or 1.0
  U.check(type(lambda) == 'number', name, "option 'lambda' must be a number")
  if inputs.gather == nil then
    U.same_size(name, r, 'regions', 0, w, 'words', 0)
    local S, Sp = ops.rwa_similarity(r, rm, w, wm, lambda)
    return S, Sp, 0
  end
  local cols, offset = U.global_columns(name, inputs, opts,
                                        {{'regions', r, 'region_mask', rm}, {'words', w, 'word_mask', wm}})
  local S = ops.rwa_similarity(r, rm, cols.words, cols.word_mask, lambda)
  local _, Sp = ops.rwa_similarity(cols.regions, cols.region_mask, w, wm, lambda)
  return S, Sp, offset
end

function M.rwa(inputs, opts)
  opts = U.options('rwa', opts, {'global_weight', 'local_weight', 'lambda', 'sigma', 'tau', 'tau_min', 'tau_max', 'directions', 'splice_local'})
  local l_vtc, parts = vtc.loss('rwa', inputs, setmetatable({tau = opts.tau or 0.05}, {__index = opts}), 'mean')
  local tau = U.temperature('rwa', inputs, {tau = opts.tau or 0.05, tau_min = opts.tau_min, tau_max = opts.tau_max})
  local sigma = opts.sigma or tau
  local S, Sp, offset = M.local_similarities('rwa', inputs, opts)
  local l_v2t = vtc.contrastive('rwa', S / sigma, offset)
  local l_t2v = vtc.contrastive('rwa', Sp / sigma, offset)
  local loss = l_vtc * (opts.global_weight or 1) + (l_v2t + l_t2v) * (opts.local_weight or 1)
  return loss, {vtc = l_vtc:detach(), local_v2t = l_v2t:detach(), local_t2v = l_t2v:detach(), tau = parts.tau,
                trivial = parts.trivial * (opts.global_weight or 1) + 2 * parts.trivial * (opts.local_weight or 1)}
end

-- Ranking scores [Bv,Bt] for retrieval: global cosine plus the mean of the
-- two local directions. Videos and captions may differ in number.
function M.rwa_retrieval_scores(inputs, opts)
  opts = opts or {}
  local v = U.need('rwa_retrieval_scores', inputs, 'video_emb', 2, '[Bv, d]')
  local t = U.need('rwa_retrieval_scores', inputs, 'text_emb', 2, '[Bt, d]')
  local r, rm = tokens('rwa_retrieval_scores', inputs, 'regions', 'region_mask')
  local w, wm = tokens('rwa_retrieval_scores', inputs, 'words', 'word_mask')
  U.same_size('rwa_retrieval_scores', v, 'video_emb', 0, r, 'regions', 0)
  U.same_size('rwa_retrieval_scores', t, 'text_emb', 0, w, 'words', 0)
  local S, Sp = ops.rwa_similarity(r, rm, w, wm, opts.lambda or 1.0)
  return U.cosine_matrix(v, t) + (S + Sp:t()) * ((opts.local_weight or 1) / 2)
end

losses.register('rwa', M.rwa, 'DemoVLP region-word alignment: global VTC + CE over S/sigma and S\'/sigma')

return M
