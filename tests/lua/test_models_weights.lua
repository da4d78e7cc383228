-- kinema.models.weights: the shipped mappings load the reduced-width
-- checkpoints written by the real packages (tests/fixtures/make_models_weights.py:
-- open_clip, timm, transformers; random weights, reduced width) and the blocks
-- then reproduce those packages' outputs to 1e-4.
local T = require 'kinema.test'
local torch = require 'torch'
local models = require 'kinema.models'
local W = require 'kinema.models.weights'

local fixtures = 'tests/fixtures/'
local expected = W.read(fixtures .. 'models_weights_expected.pt')

local function max_diff(a, b) return (a - b):abs():max():item() end

T.test('timm ViT-B/16 -> VideoEncoder', function()
  local enc = models.VideoEncoder{num_frames = 1, embed_dim = 32, depth = 2, num_heads = 4}
  local report = W.load(enc, fixtures .. 'models_timm_vitb16.pt', 'timm_vit')
  T.eq(report.missing, {'time_embed'})
  T.eq(report.unused, {'head.bias', 'head.weight'})
  for _, pair in ipairs(enc:named_parameters()) do
    if pair[1] == 'time_embed' then torch.no_grad(function() pair[2]:zero_() end) end
  end
  enc:eval()
  local out = enc(expected['timm.image'])
  T.eq(max_diff(out.tokens:select(0, 0):select(0, 0), expected['timm.tokens']:select(0, 0)) < 1e-4, true)
end)

T.test('OpenAI CLIP ViT-B/16 -> VideoEncoder and TextEncoder', function()
  local visual = models.VideoEncoder{num_frames = 1, embed_dim = 32, depth = 2, num_heads = 4, patch_bias = false,
                                     norm_pre = true, proj_dim = 16, act = 'quick_gelu', layer_norm_eps = 1e-5}
  local report = W.load(visual, fixtures .. 'models_clip_vitb16.pt', 'clip_visual')
  T.eq(report.missing, {'time_embed'})
  T.eq(#report.mismatched, 0)
  T.eq(report.adapted, {'visual.class_embedding -> cls_token', 'visual.positional_embedding -> pos_embed'})
  for _, pair in ipairs(visual:named_parameters()) do
    if pair[1] == 'time_embed' then torch.no_grad(function() pair[2]:zero_() end) end
  end
  visual:eval()
  T.eq(max_diff(visual(expected['clip.image']).pooled_proj, expected['clip.image_embed']) < 1e-4, true)

  local text = models.TextEncoder{style = 'clip', vocab_size = 512, embed_dim = 32, depth = 2, num_heads = 4, proj_dim = 16}
  report = W.load(text, fixtures .. 'models_clip_vitb16.pt', 'clip_text')
  T.eq(report.missing, {})
  text:eval()
  T.eq(max_diff(text(expected['clip.ids']).pooled_proj, expected['clip.text_embed']) < 1e-4, true)
end)

T.test('CLIP resized: a 32x32 model gets the 14x14 grid resampled, top layers renumbered', function()
  local visual = models.VideoEncoder{image_size = 32, num_frames = 1, embed_dim = 32, depth = 1, num_heads = 4,
                                     patch_bias = false, norm_pre = true, act = 'quick_gelu'}
  local report = W.load(visual, fixtures .. 'models_clip_vitb16.pt', 'clip_visual', {layers = {[1] = 0}})
  T.eq(#report.mismatched, 0)
  T.eq(report.missing, {'time_embed'})
  T.eq(report.adapted, {'visual.class_embedding -> cls_token', 'visual.positional_embedding -> pos_embed'})
  local pos
  for _, pair in ipairs(visual:named_parameters()) do if pair[1] == 'pos_embed' then pos = pair[2] end end
  T.eq(pos:size(), {1, 5, 32})
  local source = W.read(fixtures .. 'models_clip_vitb16.pt')['visual.positional_embedding']
  T.eq(max_diff(pos:select(1, 0):select(0, 0), source:select(0, 0)) == 0, true)  -- [CLS] row kept
  -- blocks.0 of the model came from resblocks.1 of the checkpoint.
  local qkv
  for _, pair in ipairs(visual:named_parameters()) do if pair[1] == 'blocks.0.attn.qkv.weight' then qkv = pair[2] end end
  T.eq(max_diff(qkv, W.read(fixtures .. 'models_clip_vitb16.pt')['visual.transformer.resblocks.1.attn.in_proj_weight']) == 0, true)
end)

T.test('HF BERT and DistilBERT -> TextEncoder', function()
  for _, case in ipairs({{'bert', 'models_bert_base.pt', {}}, {'distilbert', 'models_distilbert.pt', {type_vocab_size = 0}}}) do
    local cfg = {style = 'bert', vocab_size = 100, embed_dim = 32, depth = 2, num_heads = 4}
    for k, v in pairs(case[3]) do cfg[k] = v end
    local enc = models.TextEncoder(cfg)
    local report = W.load(enc, fixtures .. case[2], case[1])
    T.eq(report.missing, {})
    enc:eval()
    local out = enc(expected[case[1] .. '.ids'], expected[case[1] .. '.attention_mask'])
    T.eq(max_diff(out.tokens, expected[case[1] .. '.tokens']) < 1e-4, true)
  end
end)
