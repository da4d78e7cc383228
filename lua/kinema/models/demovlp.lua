-- DemoVLP (NeurIPS 2022): a ViT over pre-extracted region features (7-d
-- location embedding + temporal position embedding + [CLS]) and a DistilBERT
-- text encoder, projections into a 256-d space. RWA uses the projected region
-- and word outputs; VTC the projected [CLS] outputs.
local nn = require 'kinema.nn'
local models = require 'kinema.models'

local M = {}

M.defaults = {
  frames = 8, embed = 256,
  region = {feat_dim = 2048, embed_dim = 768, depth = 12, num_heads = 12},
  text = {style = 'bert', vocab_size = 30522, max_len = 512, embed_dim = 768, depth = 6, num_heads = 12,
          type_vocab_size = 0},
  temperature = 0.05,
}

local DemoVLP = nn.Module:extend('DemoVLP')
M.DemoVLP = DemoVLP

function DemoVLP:init(cfg)
  cfg = models.merge(M.defaults, cfg)
  rawset(self, 'cfg', cfg)
  self.video = models.RegionEncoder(models.merge(cfg.region, {num_frames = cfg.frames}))
  self.text = models.TextEncoder(cfg.text)
  self.video_proj = models.Projection{in_dim = cfg.region.embed_dim, out_dim = cfg.embed}
  self.text_proj = models.Projection{in_dim = cfg.text.embed_dim, out_dim = cfg.embed}
  self.temperature = models.Temperature{init = cfg.temperature}
end

-- features [B,N,2048]; locations [B,N,7]; frame_index [B,N] int64; mask [B,N] bool.
function DemoVLP:encode_video(features, locations, frame_index, mask)
  local r = self.video(features, locations, frame_index, mask)
  return {embed = self.video_proj(r.cls), regions = self.video_proj(r.regions)}
end

function DemoVLP:encode_text(ids, mask)
  local t = self.text(ids, mask)
  local words = self.text_proj(t.tokens)
  return {embed = words:select(1, 0), words = words}
end

function DemoVLP:forward(batch)
  return {video = self:encode_video(batch.features, batch.locations, batch.frame_index, batch.region_mask),
          text = self:encode_text(batch.ids, batch.mask), tau = self.temperature()}
end

function M.build(cfg) return DemoVLP(cfg) end

return M
