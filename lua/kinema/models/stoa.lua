-- STOA-VLP (AAAI 2023): CLIP ViT-B/16 video encoder with per-frame [CLS]
-- tokens; object trajectory encoder on layer-10 patches (eq 1); action encoder
-- on layer-11 patches and the object tokens (eq 2); CLIP text encoder; a 6-layer
-- modality-agnostic fusion encoder over [frames ; v_CLS ; trajectories ;
-- actions ; text]; VTM and MLM/PLM heads (vocabulary tied to the word
-- embeddings); learnable temperature. Sizes are the paper's; every one can be
-- overridden: kinema.models.stoa.build{frames = 4, video = {depth = 2, ...}}.
local nn = require 'kinema.nn'
local models = require 'kinema.models'

local M = {}

M.defaults = {
  frames = 12, image_size = 224, embed = 512,
  video = {patch_size = 16, embed_dim = 768, depth = 12, num_heads = 12, act = 'quick_gelu',
           layer_norm_eps = 1e-5, patch_bias = false, norm_pre = true, attention = 'frame'},
  text = {style = 'clip', vocab_size = 49408, max_len = 77, embed_dim = 512, depth = 12, num_heads = 8},
  trajectory = {num_trajectories = 20, depth = 2, embed_dim = 768, num_heads = 12, act = 'quick_gelu',
                layer_norm_eps = 1e-5},
  action = {num_queries = 4, depth = 2, embed_dim = 768, num_heads = 12, act = 'quick_gelu', layer_norm_eps = 1e-5},
  fusion = {depth = 6, embed_dim = 512, num_heads = 8},
  object_layer = 10, action_layer = 11,  -- 1-based video layers feeding the two encoders
  temperature = 0.07,
}

local STOA = nn.Module:extend('STOA')
M.STOA = STOA

function STOA:init(cfg)
  cfg = models.merge(M.defaults, cfg)
  rawset(self, 'cfg', cfg)
  local video = models.merge(cfg.video, {image_size = cfg.image_size, num_frames = cfg.frames, proj_dim = cfg.embed,
                                         return_layers = {cfg.object_layer, cfg.action_layer}})
  self.video = models.VideoEncoder(video)
  self.text = models.TextEncoder(models.merge(cfg.text, {proj_dim = cfg.embed}))
  self.trajectory = models.TrajectoryEncoder(models.merge(cfg.trajectory, {num_frames = cfg.frames, out_dim = cfg.embed}))
  self.action = models.ActionEncoder(models.merge(cfg.action, {num_frames = cfg.frames, out_dim = cfg.embed}))
  self.fusion = models.FusionEncoder(models.merge(cfg.fusion, {video_dim = cfg.embed, trajectory_dim = cfg.embed,
                                                              action_dim = cfg.embed, text_dim = cfg.text.embed_dim}))
  self.vtm_head = models.VTMHead{embed_dim = cfg.fusion.embed_dim}
  self.mlm_head = models.MLMHead{embed_dim = cfg.fusion.embed_dim, vocab_size = cfg.text.vocab_size, act = 'quick_gelu'}
  self.temperature = models.Temperature{init = cfg.temperature}
end

-- The word-embedding matrix of the text encoder (the MLM/PLM decoder weight).
function STOA:word_embeddings()
  for _, p in ipairs(self.text:_own_parameters()) do
    if p[1] == 'word_embed.weight' then return p[2] end
  end
  error('STOA: text encoder has no word_embed.weight')
end

-- video [B,T,3,H,W]; boxes [B,T,K,4] normalised; classes [B,T,K] int64; scores [B,T,K].
function STOA:encode_video(video, boxes, classes, scores)
  local v = self.video(video)
  local out = {frames = v.cls_proj, pooled = v.pooled_proj}
  if boxes ~= nil then
    local t = self.trajectory(v['layer_' .. self.cfg.object_layer], boxes, classes, scores)
    local a = self.action(v['layer_' .. self.cfg.action_layer], t.object_tokens, t.object_mask)
    out.trajectories, out.trajectory_mask, out.actions = t.trajectories, t.trajectory_mask, a.actions
  end
  return out
end

-- ids [B,L] int64; mask [B,L] bool. tokens [B,L,D_text], pooled (projected, EOT) [B,E].
function STOA:encode_text(ids, mask)
  local t = self.text(ids, mask)
  return {tokens = t.tokens, pooled = t.pooled_proj, pool_index = t.pool_index}
end

-- The fusion pass. prefix_len [B] int64 switches to the PLM prefix-causal mask.
function STOA:fuse(video, text_tokens, text_mask, prefix_len)
  return self.fusion(video.frames, text_tokens, text_mask, video.trajectories, video.actions, prefix_len,
                     video.trajectory_mask)
end

function STOA:vtm_logits(fused) return self.vtm_head(fused.video_cls) end
function STOA:lm_logits(fused) return self.mlm_head(fused.text, self:word_embeddings()) end

-- batch: video, boxes, classes, scores, ids, mask. Unimodal outputs for VTC,
-- OTA and ASP; the recipes call fuse / vtm_logits / lm_logits for the rest.
function STOA:forward(batch)
  local video = self:encode_video(batch.video, batch.boxes, batch.classes, batch.scores)
  local text = self:encode_text(batch.ids, batch.mask)
  return {video = video, text = text, tau = self.temperature()}
end

function M.build(cfg) return STOA(cfg) end

return M
