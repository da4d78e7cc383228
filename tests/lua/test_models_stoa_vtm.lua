-- VTM learns: a small STOA fusion encoder + VTM head on a separable toy matching
-- task shaped like the STOA inputs (per-frame tokens nearly the same for every
-- video, as a video encoder's are at init; the trajectories carry the object's
-- colour; the caption carries the colour word). With the width-scaled fusion
-- init ('clip', the default) the loss falls well below the label-prior entropy
-- (0.6365) within 150 steps; with the generic normal(0.02) init ('bert') it stays
-- at the prior.
-- Mined negatives: drawn from an informative similarity, nearly every negative
-- carries the positive's colour and the loss stays at the prior; with half the
-- negatives drawn uniformly (the tiny preset's vtm.uniform) it learns.
local T = require 'kinema.test'
local kinema = require 'kinema'
local stoa = require 'kinema.models.stoa'
local PRIOR = -(math.log(1 / 3) / 3 + 2 / 3 * math.log(2 / 3))

-- opts.mined: draw the negatives from an informative similarity (same colour:
-- 10, else 0), as hard-negative mining does once VTC has learned; then nearly
-- every negative has the positive's colour, the only feature the task has.
-- opts.uniform: the VTM option mixing uniform draws into the mined negatives.
local function train_vtm(fusion_init, vtm_token, steps, opts)
  opts = opts or {}
  torch.manual_seed(0)
  local C, d, B, T_, N, M, L = 8, 64, 24, 4, 4, 3, 8
  local m = stoa.build{frames = T_, image_size = 32, embed = d, vtm_token = vtm_token, fusion_init = fusion_init,
                       video = {patch_size = 16, embed_dim = 32, depth = 1, num_heads = 2},
                       text = {vocab_size = 50, max_len = 16, embed_dim = d, depth = 1, num_heads = 2},
                       trajectory = {num_trajectories = N, depth = 1, embed_dim = 32, num_heads = 2},
                       action = {num_queries = M, depth = 1, embed_dim = 32, num_heads = 2},
                       fusion = {depth = 2, embed_dim = d, num_heads = 4}, object_layer = 1, action_layer = 1}
  local params = {}
  for _, p in ipairs(m.fusion:parameters()) do params[#params + 1] = p end
  for _, p in ipairs(m.vtm_head:parameters()) do params[#params + 1] = p end
  local opt = kinema.optim.AdamW(params, {lr = 5e-4, weight_decay = 0.05})
  local colour_v, colour_t = torch.randn(C, d) * 0.3, torch.randn(C, d)
  local frame_const, text_base = torch.randn(T_, d) * 0.2, torch.randn(L, d) * 0.8
  local pool = torch.full({B}, L - 1, {dtype = torch.int64})
  local mask = torch.ones({B, L}, {dtype = torch.bool})
  return T.train_tail_loss(opt, steps, 25, function()
    local ids = torch.randint(C, {B}, {dtype = torch.int64})
    local frames = frame_const:unsqueeze(0):expand({B, T_, d}) + torch.randn(B, T_, d) * 0.003
    local traj = torch.randn(B, N, d) * 0.3
    traj['..., 0, :'] = colour_v:index_select(0, ids)
    local text = text_base:unsqueeze(0):expand({B, L, d}) + torch.randn(B, L, d) * 0.3
    text['..., 2, :'] = colour_t:index_select(0, ids) * 3
    local sim = opts.mined and ids:view(B, 1):eq(ids:view(1, B)):to(torch.float32) * 10 or torch.zeros(B, B)
    return kinema.losses.vtm({sim = sim,
      video = {frames = frames, trajectories = traj, actions = torch.randn(B, M, d) * 0.3},
      text = {tokens = text, mask = mask, pool_index = pool},
      fuse = function(v, t) return m:vtm_logits(m:fuse(v, t.tokens, t.mask), t.pool_index) end},
      {uniform = opts.uniform})
  end)
end

T.test('VTM learns a separable toy matching task with the default fusion init, not with normal(0.02)', function()
  local learned = train_vtm('clip', 'video_cls', 150)
  T.is_true(learned < 0.45, string.format('clip init: mean VTM loss of the last 25 steps %.4f (prior %.4f)', learned, PRIOR))
  local stuck = train_vtm('bert', 'video_cls', 150)
  T.is_true(stuck > PRIOR - 0.02, string.format('bert init: %.4f, expected to stay near the prior %.4f', stuck, PRIOR))
end)

T.test('the head can read the fused text [CLS] instead; a bad fusion_init is named', function()
  local learned = train_vtm('clip', 'text_cls', 150)
  T.is_true(learned < 0.45, string.format('text_cls: mean VTM loss of the last 25 steps %.4f', learned))
  T.raises(function() stoa.build{fusion_init = 'xavier'} end, "config key 'fusion_init' must be 'clip' or 'bert', got xavier")
end)

T.test('mined negatives alone leave VTM at the prior; mixing in uniform draws (the tiny preset) makes it learn', function()
  local mined = train_vtm('clip', 'video_cls', 250, {mined = true})
  T.is_true(mined > PRIOR - 0.04, string.format('pure mining: %.4f, expected near the prior %.4f', mined, PRIOR))
  local mixed = train_vtm('clip', 'video_cls', 250, {mined = true, uniform = 0.5})
  T.is_true(mixed < 0.56, string.format('uniform = 0.5: mean VTM loss of the last 25 steps %.4f (prior %.4f)', mixed, PRIOR))
  local spec = require 'kinema.recipes.stoa'
  T.eq(spec.presets.tiny.vtm.uniform, 0.5, 'the tiny STOA preset mixes uniform negatives')
  T.eq(spec.presets.tiny.weights.vtm, 3, 'the tiny STOA preset weighs VTM 3 (docs/objectives.md)')
  T.eq(spec.defaults.vtm.uniform, 0, "the paper's preset mines only (its encoders start from CLIP)")
end)
