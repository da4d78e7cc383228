-- S-ViLM (ICLR 2024): ViT-B with 2x16x16 tubelets (joint space-time attention),
-- 32 learnable group tokens refined by grouping blocks after layers 6, 9 and 12;
-- BERT-base text encoder; projections into a 256-d space; learnable
-- temperature. The video embedding is the mean of the projected group tokens.
local nn = require 'kinema.nn'
local models = require 'kinema.models'

local M = {}

M.defaults = {
  frames = 16, image_size = 224, embed = 256,
  video = {patch_size = 16, tubelet = 2, embed_dim = 768, depth = 12, num_heads = 12, attention = 'joint',
           grouping_layers = {6, 9, 12}, num_groups = 32},
  text = {style = 'bert', vocab_size = 30522, max_len = 512, embed_dim = 768, depth = 12, num_heads = 12},
  temperature = 0.07,
}

local SViLM = nn.Module:extend('SViLM')
M.SViLM = SViLM

function SViLM:init(cfg)
  cfg = models.merge(M.defaults, cfg)
  rawset(self, 'cfg', cfg)
  self.video = models.VideoEncoder(models.merge(cfg.video, {image_size = cfg.image_size, num_frames = cfg.frames}))
  self.text = models.TextEncoder(cfg.text)
  self.video_proj = models.Projection{in_dim = cfg.video.embed_dim, out_dim = cfg.embed}
  self.text_proj = models.Projection{in_dim = cfg.text.embed_dim, out_dim = cfg.embed}
  self.temperature = models.Temperature{init = cfg.temperature}
end

-- video [B,T,3,H,W] (after cut-and-paste). groups [B,M,E] projected group
-- tokens; embed [B,E] their mean; clips [B,T',D] patch tokens averaged over
-- space per tubelet slice (the grouping loss pools them into clips).
function SViLM:encode_video(video)
  local v = self.video(video)
  local groups = self.video_proj(v.groups)
  return {groups = groups, embed = groups:mean(1), clips = v.patches:mean(2), assignment = v.assignment}
end

-- Captions and prompted noun phrases alike: the projected [CLS] output.
function SViLM:encode_text(ids, mask)
  local t = self.text(ids, mask)
  return {tokens = t.tokens, embed = self.text_proj(t.pooled)}
end

function SViLM:forward(batch)
  local out = {video = self:encode_video(batch.video), text = self:encode_text(batch.ids, batch.mask),
               tau = self.temperature()}
  if batch.noun_ids ~= nil then out.nouns = self:encode_text(batch.noun_ids, batch.noun_mask) end
  return out
end

function M.build(cfg) return SViLM(cfg) end

return M
