-- Pretrained initialisation through a recipe's --init: a CLIP-layout checkpoint
-- (tests/fixtures/models_clip_vitb16.pt: open_clip's CLIP at width 32 with random
-- weights, saved with its outputs by tests/fixtures/make_models_weights.py) lands on
-- the recipe model's video, text and temperature sub-modules, the frame
-- embedding equals the reference image tower's output, and a load that leaves
-- gaps stops naming them.
local T = require 'kinema.test'
local torch = require 'torch'
local recipe = require 'kinema.recipe'
local W = require 'kinema.models.weights'

local fixtures = 'tests/fixtures/'
local clip_path = fixtures .. 'models_clip_vitb16.pt'
local expected = W.read(fixtures .. 'models_weights_expected.pt')
local baseline = require 'kinema.recipes.baseline'

-- The tokenizer only tells the recipe its vocabulary size (the fixture's CLIP vocabulary).
local tok = {vocab_size = function() return 512 end}

-- The CLIP ViT-B/16 preset at the fixture's reduced width and depth.
local small_clip = {'--tiny', '--model.preset', 'clip-vit-b16', '--model.embed', '16',
                    '--model.video.embed_dim', '32', '--model.video.depth', '2', '--model.video.num_heads', '4',
                    '--model.text.embed_dim', '32', '--model.text.depth', '2', '--model.text.num_heads', '4',
                    '--image_size', '224', '--frames', '2', '--text_len', '77'}

local function config(extra)
  local argv = {}
  for _, a in ipairs(small_clip) do argv[#argv + 1] = a end
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  return recipe.parse_args(argv, recipe.merge(recipe.common, baseline.defaults), baseline.presets)
end

local function max_diff(a, b) return (a - b):abs():max():item() end

local function param(module, name)
  for _, pair in ipairs(module:named_parameters()) do if pair[1] == name then return pair[2] end end
end

T.test('--model.preset clip-vit-b16 sets the published tower options, later flags override sizes', function()
  local cfg = recipe.parse_args({'--model.preset', 'clip-vit-b16'}, recipe.merge(recipe.common, baseline.defaults),
                                baseline.presets)
  T.eq(cfg.model.video.patch_size, 16)
  T.eq(cfg.model.video.embed_dim, 768)
  T.eq(cfg.model.video.act, 'quick_gelu')
  T.eq(cfg.model.video.norm_pre, true)
  T.eq(cfg.model.video.patch_bias, false)
  T.eq(cfg.model.text.style, 'clip')
  T.eq(cfg.model.embed, 512)
  T.eq(config().model.video.embed_dim, 32)
  local b32 = recipe.parse_args({'--model.preset=clip-vit-b32'}, recipe.merge(recipe.common, baseline.defaults))
  T.eq(b32.model.video.patch_size, 32)
  local timm = recipe.parse_args({'--model.preset', 'vit-b16-bert-base'}, recipe.merge(recipe.common, baseline.defaults))
  T.eq(timm.model.video.act, 'gelu')
  T.eq(timm.model.text.style, 'bert')
  T.raises(function() recipe.parse_args({'--model.preset', 'clip-vit-l14'}, recipe.merge(recipe.common, baseline.defaults)) end,
           "--model.preset 'clip-vit-l14' is not a preset (known: clip-vit-b16, clip-vit-b32, vit-b16-bert-base)")
end)

T.test('--init with the clip layout: frame embeddings equal the reference image tower (<= 1e-4)', function()
  local cfg = config({'--init', clip_path})  -- the layout comes from the preset
  torch.manual_seed(3)
  local model = baseline.build(cfg, tok)
  recipe.init_model(model, cfg, baseline)
  T.eq(param(model.video, 'time_embed'):abs():max():item(), 0)
  model:eval()
  local image = expected['clip.image']                       -- [1,3,224,224]
  local video = torch.stack({image, image}, 1)              -- [1,2,3,224,224]: the image as both frames
  local out = model.video(video)
  T.eq(out.cls_proj:size(), {1, 2, 16})
  for t = 0, 1 do
    T.is_true(max_diff(out.cls_proj:select(1, t), expected['clip.image_embed']) <= 1e-4, 'frame ' .. t)
  end
  T.is_true(max_diff(model:encode_video(video), expected['clip.image_embed']) <= 1e-4, 'pooled video embedding')
  -- the text tower (positions narrowed to the model's 77) and the temperature
  -- (CLIP pools at the highest token id, the end-of-text token: no mask given)
  local text = model.text(expected['clip.ids']).pooled_proj
  T.is_true(max_diff(text, expected['clip.text_embed']) <= 1e-4, 'text embedding')
  local scale = W.read(clip_path)['logit_scale']
  T.is_true(math.abs(param(model.temperature, 'logit_scale'):item() - scale:item()) < 1e-6, 'logit_scale')
end)

T.test('--init_layout clip_visual fills only the video tower (no prefix to write by hand)', function()
  local cfg = config({'--init', clip_path, '--init_layout', 'clip_visual'})
  local model = baseline.build(cfg, tok)
  local text_before = param(model.text, 'word_embed.weight'):clone()
  recipe.init_model(model, cfg, baseline)
  T.is_true(max_diff(param(model.video, 'blocks.1.attn.qkv.weight'),
                     W.read(clip_path)['visual.transformer.resblocks.1.attn.in_proj_weight']) == 0, 'qkv copied')
  T.is_true(max_diff(param(model.text, 'word_embed.weight'), text_before) == 0, 'text untouched')
end)

T.test('a load with gaps stops and lists them; --init_strict false proceeds', function()
  -- a 3-layer video tower: blocks.2 has nothing in the 2-layer checkpoint
  local cfg = config({'--init', clip_path, '--model.video.depth', '3'})
  local model = baseline.build(cfg, tok)
  T.raises(function() recipe.init_model(model, cfg, baseline) end,
           'model parameter(s) not in the checkpoint: video.blocks.2.attn.proj.bias')
  -- a checkpoint of another layout: its tensors would go unused
  cfg = config({'--init', fixtures .. 'models_timm_vitb16.pt'})
  model = baseline.build(cfg, tok)
  T.raises(function() recipe.init_model(model, cfg, baseline) end, 'checkpoint tensor(s) unused: blocks.0.attn.proj.bias')
  -- a shape that does not fit: another width
  cfg = config({'--init', clip_path, '--init_layout', 'clip_visual', '--model.video.embed_dim', '48'})
  model = baseline.build(cfg, tok)
  T.raises(function() recipe.init_model(model, cfg, baseline) end, 'shape mismatch')
  -- strict off: what fits is loaded, the rest reported
  cfg = config({'--init', clip_path, '--model.video.depth', '3', '--init_strict', 'false'})
  model = baseline.build(cfg, tok)
  recipe.init_model(model, cfg, baseline)
  T.is_true(max_diff(param(model.video, 'blocks.0.attn.qkv.weight'),
                     W.read(clip_path)['visual.transformer.resblocks.0.attn.in_proj_weight']) == 0, 'loaded anyway')
end)

T.test('timm ViT + BERT: two files, two layouts, allow-listed heads', function()
  local cfg = recipe.parse_args({'--tiny', '--model.preset', 'vit-b16-bert-base', '--model.embed', '16',
                                 '--model.video.embed_dim', '32', '--model.video.depth', '2', '--model.video.num_heads', '4',
                                 '--model.text.embed_dim', '32', '--model.text.depth', '2', '--model.text.num_heads', '4',
                                 '--image_size', '224', '--frames', '1', '--text_len', '77',
                                 '--init', fixtures .. 'models_timm_vitb16.pt,' .. fixtures .. 'models_bert_base.pt'},
                                recipe.merge(recipe.common, baseline.defaults), baseline.presets)
  local model = baseline.build(cfg, {vocab_size = function() return 100 end})
  recipe.init_model(model, cfg, baseline)
  model:eval()
  local out = model.video(expected['timm.image'])
  T.is_true(max_diff(out.tokens:select(0, 0):select(0, 0), expected['timm.tokens']:select(0, 0)) < 1e-4, 'timm tokens')
  local t = model.text(expected['bert.ids'], expected['bert.attention_mask'])
  T.is_true(max_diff(t.tokens, expected['bert.tokens']) < 1e-4, 'bert tokens')
  T.raises(function()
    require('kinema.checkpoint').load_init(model, fixtures .. 'models_bert_base.pt', 'timm_vit,bert')
  end, "--init names 1 file(s) but --init_layout 2 layout(s)")
end)

T.test('STOA with CLIP weights: the towers it shares are CLIP, its own modules are named as kept fresh', function()
  local stoa = require 'kinema.recipes.stoa'
  local argv = {}
  for _, a in ipairs(small_clip) do argv[#argv + 1] = a end
  for _, a in ipairs({'--model.object_layer', '1', '--model.action_layer', '2', '--model.trajectory.embed_dim', '32',
                      '--model.action.embed_dim', '32', '--model.fusion.embed_dim', '16', '--init', clip_path}) do
    argv[#argv + 1] = a
  end
  local cfg = recipe.parse_args(argv, recipe.merge(recipe.common, stoa.defaults), stoa.presets)
  torch.manual_seed(5)
  local model = stoa.build(cfg, tok)
  local fusion_before = param(model.fusion, 'blocks.0.attn.proj.weight'):clone()
  local info = recipe.init_model(model, cfg, stoa)
  model:eval()
  local image = expected['clip.image']
  local v = model:encode_video(torch.stack({image, image}, 1))
  for t = 0, 1 do
    T.is_true(max_diff(v.frames:select(1, t), expected['clip.image_embed']) <= 1e-4, 'frame ' .. t)
  end
  local ids = expected['clip.ids']
  local text = model:encode_text(ids, ids:ne(0))  -- CLIP pads with id 0 after the end-of-text token
  T.is_true(max_diff(text.pooled, expected['clip.text_embed']) <= 1e-4, 'text embedding')
  -- what stays at its initialisation is exactly STOA's own modules, each with its reason
  local fresh = {}
  for _, f in ipairs(info.fresh) do fresh[f[1]] = f[2] end
  T.eq(fresh, stoa.init_fresh)
  T.eq(fresh.fusion, 'fusion encoder')
  T.is_true(max_diff(param(model.fusion, 'blocks.0.attn.proj.weight'), fusion_before) == 0, 'fusion untouched')
  -- the video tower alone: the text tower and temperature are named too
  cfg = recipe.parse_args(recipe.merge(argv, {}), recipe.merge(recipe.common, stoa.defaults), stoa.presets)
  cfg.init_layout = 'clip_visual'
  info = recipe.init_model(stoa.build(cfg, tok), cfg, stoa)
  fresh = {}
  for _, f in ipairs(info.fresh) do fresh[f[1]] = f[2] end
  T.eq(fresh.text, 'no --init layout fills it')
  T.eq(fresh.temperature, 'no --init layout fills it')
  T.eq(fresh.trajectory, 'object trajectory encoder (eq 1)')
end)

-- A recipe config over the small CLIP for another recipe (its own sub-module sizes follow).
local function recipe_config(spec, extra)
  local argv = {}
  for _, a in ipairs(small_clip) do argv[#argv + 1] = a end
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = '--init'
  argv[#argv + 1] = clip_path
  return recipe.parse_args(argv, recipe.merge(recipe.common, spec.defaults), spec.presets)
end

local clip_state = W.read(clip_path)

T.test('a transposing weight rule transposes (a same-numel reshape would scramble a square matrix)', function()
  local square = torch.arange(0, 9, {dtype = torch.float32}):reshape({3, 3})
  local mapped = W.map({['visual.proj'] = square}, W.rules.clip_visual_projection)
  T.eq(mapped['proj.weight']:totable(), square:t():totable())
  T.raises(function() W.map({['visual.proj'] = torch.zeros({3})}, W.rules.clip_visual_projection) end,
           'a 1-d tensor cannot be transposed')
end)

T.test('S-ViLM with CLIP weights: towers and projections load, the grouping is named as its own', function()
  local svilm = require 'kinema.recipes.svilm'
  local cfg = recipe_config(svilm, {'--model.video.grouping_layers', '1,2'})
  local model = svilm.build(cfg, tok)
  local info = recipe.init_model(model, cfg, svilm)  -- strict: stops on any gap
  T.eq(#info.own, 1)
  T.eq(info.own[1][1], svilm.init_fresh['^video%.group'])
  for _, name in ipairs(info.own[1][2]) do T.is_true(name:match('^video%.group') ~= nil, name) end
  T.is_true(#info.own[1][2] > 10, 'grouping parameters named: ' .. #info.own[1][2])
  -- CLIP's projections [D, E] become the Projection blocks' Linear weights [E, D], bias zero
  T.eq(param(model.video_proj, 'proj.weight'):totable(), clip_state['visual.proj']:t():totable())
  T.eq(param(model.text_proj, 'proj.weight'):totable(), clip_state['text_projection']:t():totable())
  T.eq(param(model.video_proj, 'proj.bias'):abs():max():item(), 0)
  T.eq(param(model.text_proj, 'proj.bias'):abs():max():item(), 0)
  local fresh = {}
  for _, f in ipairs(info.fresh) do fresh[f[1]] = f[2] end
  T.eq(fresh, {})
end)

T.test('OA-Trans (divided space-time attention) with CLIP weights: a still clip embeds as the image does', function()
  local oatrans = require 'kinema.recipes.oatrans'
  local cfg = recipe_config(oatrans, {'--model.video.attention', 'divided'})
  local model = oatrans.build(cfg, tok)
  recipe.init_model(model, cfg, oatrans)  -- strict: the temporal branch is allowed, CLIP's projections used
  model:eval()
  local image = expected['clip.image']
  local v = model:encode_video(torch.stack({image, image}, 1))
  T.is_true(max_diff(v, expected['clip.image_embed']) <= 1e-4, 'video embedding vs the image tower')
  local ids = expected['clip.ids']
  T.is_true(max_diff(model:encode_text(ids, ids:ne(0)), expected['clip.text_embed']) <= 1e-4, 'text embedding')
end)
