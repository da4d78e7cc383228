-- STOA-VLP (AAAI 2023): CLIP ViT-B/16 video encoder with per-frame [CLS]
-- tokens; object trajectory encoder on layer-10 patches (eq 1); action encoder
-- on layer-11 patches and the object tokens (eq 2); CLIP text encoder; a 6-layer
-- modality-agnostic fusion encoder over [frames ; v_CLS ; trajectories ;
-- actions ; text]; VTM and MLM/PLM heads (vocabulary tied to the word
-- embeddings); learnable temperature. Sizes are the paper's; every one can be
-- overridden: kinema.models.stoa.build{frames = 4, video = {depth = 2, ...}}.
local torch = require 'torch'
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
  vtm_token = 'video_cls',               -- the fused token the VTM head reads: 'video_cls' | 'text_cls'
  -- The fusion encoder's initial weights: 'clip' scales them with the width as
  -- CLIP's text transformer does (attention in width^-1/2, output projections
  -- width^-1/2 (2 depth)^-1/2, MLP in (2 width)^-1/2); 'bert' keeps the generic
  -- truncated normal(0.02), which at small widths makes attention and the MLP too
  -- weak for the matching VTM must learn: from scratch its loss stays at the
  -- label-prior entropy (tests/lua/test_models_stoa_vtm.lua).
  fusion_init = 'clip',
  temperature = 0.07,
}

-- Re-initialises a FusionEncoder's weight matrices (see defaults.fusion_init);
-- biases and LayerNorms keep their init (0 and 1). Input projections get
-- normal(0, fan_in^-1/2).
function M.init_fusion(fusion, scheme, width, depth)
  assert(scheme == 'clip' or scheme == 'bert', "STOA: config key 'fusion_init' must be 'clip' or 'bert', got "
         .. tostring(scheme))
  if scheme == 'bert' then return end
  local attn_std, proj_std, fc_std = width ^ -0.5, width ^ -0.5 * (2 * depth) ^ -0.5, (2 * width) ^ -0.5
  torch.no_grad(function()
    for _, pair in ipairs(fusion:named_parameters()) do
      local name, w = pair[1], pair[2]
      local std
      if name:match('attn%.qkv%.weight$') or name:match('attn%.[qkv]%.weight$') then std = attn_std
      elseif name:match('attn%.proj%.weight$') or name:match('mlp%.fc2%.weight$') then std = proj_std
      elseif name:match('mlp%.fc1%.weight$') then std = fc_std
      elseif name:match('_proj%.weight$') then std = w:size(1) ^ -0.5 end
      if std then w:normal_(0, std) end
    end
  end)
end

local STOA = nn.Module:extend('STOA')
M.STOA = STOA

function STOA:init(cfg)
  cfg = models.merge(M.defaults, cfg)
  assert(cfg.fusion_init == 'clip' or cfg.fusion_init == 'bert',
         "STOA: config key 'fusion_init' must be 'clip' or 'bert', got " .. tostring(cfg.fusion_init))
  assert(cfg.vtm_token == 'video_cls' or cfg.vtm_token == 'text_cls',
         "STOA: config key 'vtm_token' must be 'video_cls' or 'text_cls', got " .. tostring(cfg.vtm_token))
  rawset(self, 'cfg', cfg)
  local video = models.merge(cfg.video, {image_size = cfg.image_size, num_frames = cfg.frames, proj_dim = cfg.embed,
                                         return_layers = {cfg.object_layer, cfg.action_layer}})
  self.video = models.VideoEncoder(video)
  self.text = models.TextEncoder(models.merge(cfg.text, {proj_dim = cfg.embed}))
  self.trajectory = models.TrajectoryEncoder(models.merge(cfg.trajectory, {num_frames = cfg.frames, out_dim = cfg.embed}))
  self.action = models.ActionEncoder(models.merge(cfg.action, {num_frames = cfg.frames, out_dim = cfg.embed}))
  self.fusion = models.FusionEncoder(models.merge(cfg.fusion, {video_dim = cfg.embed, trajectory_dim = cfg.embed,
                                                              action_dim = cfg.embed, text_dim = cfg.text.embed_dim}))
  M.init_fusion(self.fusion, cfg.fusion_init, cfg.fusion.embed_dim, cfg.fusion.depth)
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
    out.trajectory_class = t.trajectory_class  -- the detection class each trajectory follows (-1 absent)
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

-- The VTM head reads the fused video [CLS] (vtm_token = 'video_cls') or the
-- fused text at the pooled position t_[CLS]/[EOT] ('text_cls', ALBEF's choice:
-- the text stream that MLM/PLM also train to attend to the video); pool_index
-- [B] int64 is the text encoder's.
function STOA:vtm_logits(fused, pool_index)
  if self.cfg.vtm_token == 'video_cls' then return self.vtm_head(fused.video_cls) end
  assert(pool_index ~= nil, "STOA:vtm_logits: vtm_token = 'text_cls' needs the text pool_index")
  local B, D = fused.text:size(0), fused.text:size(2)
  return self.vtm_head(fused.text:gather(1, pool_index:view({B, 1, 1}):expand({B, 1, D})):squeeze(1))
end
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
