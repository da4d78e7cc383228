-- OA-Trans (CVPR 2022): Frozen-style video encoder (ViT-B/16, divided
-- space-time attention) and DistilBERT text encoder, projections into a 256-d
-- space. The masked anchor frame goes through the same video encoder; its
-- embedding is the mean of the non-masked patch outputs. Object tags are
-- encoded by the text encoder.
local nn = require 'kinema.nn'
local models = require 'kinema.models'

local M = {}

M.defaults = {
  frames = 8, image_size = 224, embed = 256,
  video = {patch_size = 16, embed_dim = 768, depth = 12, num_heads = 12, attention = 'divided'},
  text = {style = 'bert', vocab_size = 30522, max_len = 512, embed_dim = 768, depth = 6, num_heads = 12,
          type_vocab_size = 0},
  temperature = 0.05,
}

local OATrans = nn.Module:extend('OATrans')
M.OATrans = OATrans

function OATrans:init(cfg)
  cfg = models.merge(M.defaults, cfg)
  rawset(self, 'cfg', cfg)
  self.video = models.VideoEncoder(models.merge(cfg.video, {image_size = cfg.image_size, num_frames = cfg.frames}))
  self.text = models.TextEncoder(cfg.text)
  self.video_proj = models.Projection{in_dim = cfg.video.embed_dim, out_dim = cfg.embed}
  self.text_proj = models.Projection{in_dim = cfg.text.embed_dim, out_dim = cfg.embed}
  self.temperature = models.Temperature{init = cfg.temperature}
end

function OATrans:encode_video(video) return self.video_proj(self.video(video).pooled) end

-- anchor [B,3,H,W] (object-masked pixels); patch_mask [B,1,N] bool, true = kept patch.
function OATrans:encode_anchor(anchor, patch_mask)
  return self.video_proj(self.video(anchor, patch_mask).masked_mean)
end

function OATrans:encode_text(ids, mask) return self.text_proj(self.text(ids, mask).pooled) end

function OATrans:forward(batch)
  local out = {video = self:encode_video(batch.video), text = self:encode_text(batch.ids, batch.mask),
               tau = self.temperature()}
  if batch.anchor ~= nil then out.anchor = self:encode_anchor(batch.anchor, batch.patch_mask) end
  if batch.tag_ids ~= nil then out.tags = self:encode_text(batch.tag_ids, batch.tag_mask) end
  return out
end

function M.build(cfg) return OATrans(cfg) end

return M
