-- The VTC-only baseline: the same video and text encoders as the STOA recipe
-- (CLIP-style ViT, causal text encoder, projections, learnable temperature),
-- trained with the global contrastive loss alone. It is the reference the
-- fine-grained recipes are compared against on the same data and budget.
local nn = require 'kinema.nn'
local models = require 'kinema.models'
local recipe = require 'kinema.recipe'
local normalize = require('kinema.eval.zero_shot').normalize
local stoa = require 'kinema.models.stoa'
local stoa_recipe = require 'kinema.recipes.stoa'

local spec = {name = 'baseline'}
spec.about = 'VTC-only baseline with the STOA video and text encoders'
spec.docs = stoa_recipe.docs  -- the tiny preset is STOA's (boxes included)
spec.model_defaults = {embed = stoa.defaults.embed, video = stoa.defaults.video, text = stoa.defaults.text,
                       temperature = stoa.defaults.temperature}

spec.defaults = {
  out_dir = 'runs/baseline', frames = 12, image_size = 224, text_len = 32,
  train = {batch_size = 128, max_steps = 100000, lr = 1e-5, warmup = 2000},
  weights = {vtc = 1},
  model = {},
}

-- The STOA tiny sizes, so the comparison changes only the objectives.
spec.presets = {tiny = recipe.merge(stoa_recipe.presets.tiny, {out_dir = 'runs/baseline-tiny'})}
spec.presets.tiny.model = {embed = stoa_recipe.presets.tiny.model.embed, video = stoa_recipe.presets.tiny.model.video,
                           text = stoa_recipe.presets.tiny.model.text}
spec.presets.tiny.weights = nil  -- STOA's objective weights are not the baseline's (VTC alone)

local DualEncoder = nn.Module:extend('DualEncoder')

function DualEncoder:init(cfg)
  cfg = models.merge(stoa.defaults, cfg)
  self.video = models.VideoEncoder(models.merge(cfg.video, {image_size = cfg.image_size, num_frames = cfg.frames,
                                                            proj_dim = cfg.embed}))
  self.text = models.TextEncoder(models.merge(cfg.text, {proj_dim = cfg.embed}))
  self.temperature = models.Temperature{init = cfg.temperature}
end

function DualEncoder:encode_video(video) return self.video(video).pooled_proj end
function DualEncoder:encode_text(ids, mask) return self.text(ids, mask).pooled_proj end

function spec.build(cfg, tok)
  return DualEncoder(recipe.merge(cfg.model, {frames = cfg.frames, image_size = cfg.image_size,
                                              text = {vocab_size = tok:vocab_size(),
                                                      max_len = math.max(cfg.text_len, 8)}}))
end

function spec.loader_options(cfg, tok)
  return {text = {tokenizer = tok, max_len = cfg.text_len}}
end

function spec.inputs(model, batch)
  return {video_emb = model:encode_video(batch.video), text_emb = model:encode_text(batch.ids, batch.mask),
          tau = model.temperature()}, {}
end

spec.embed = {
  video = function(model, batch) return normalize(model:encode_video(batch.video)) end,
  text = function(model, ids, mask) return normalize(model:encode_text(ids, mask)) end,
}

return spec
