-- The four papers' model definitions (lua/kinema/models/*.lua) at tiny sizes:
-- they build from a config table, run forward, and back-propagate into every
-- block; kinema.models.* constructors expose the C++ blocks.
local T = require 'kinema.test'
local torch = require 'torch'
local kinema = require 'kinema'
local models = kinema.models

local tiny_video = {embed_dim = 16, depth = 2, num_heads = 2}
local function long(data) return torch.tensor(data, {dtype = torch.int64}) end

local function grad_count(model)
  local with, total = 0, 0
  for _, p in ipairs(model:parameters()) do
    if p.requires_grad then
      total = total + 1
      if p.grad ~= nil and p.grad:abs():sum():item() > 0 then with = with + 1 end
    end
  end
  return with, total
end

T.test('kinema.models constructors build the C++ blocks with their parameter names', function()
  local enc = models.VideoEncoder{image_size = 32, num_frames = 2, embed_dim = 16, depth = 1, num_heads = 2,
                                  return_layers = {1}}
  local out = enc(torch.randn(2, 2, 3, 32, 32))
  T.eq(out.tokens:size(), {2, 2, 5, 16})
  T.eq(out.layer_1:size(), {2, 2, 5, 16})
  local names = {}
  for _, pair in ipairs(enc:_own_parameters()) do names[pair[1]] = true end
  T.eq(names['blocks.0.attn.qkv.weight'], true)
  T.eq(names['patch_embed.proj.weight'], true)
  T.raises(function() models.VideoEncoder{embed_dim = 16, num_heads = 2, dpeth = 2} end,
           "VideoEncoder: unknown config key 'dpeth' (did you mean 'depth'?)")
end)

T.test('kinema.models finds every registered C++ block by name, with no list to keep', function()
  local native = require 'kinema._models'
  local names = native.names()
  T.is_true(#names >= 11, 'registered blocks: ' .. #names)
  for _, name in ipairs(names) do
    T.eq(type(models[name]), 'function', name)
  end
  local proj = models.Projection{in_dim = 3, out_dim = 2}
  T.eq(proj(torch.randn(4, 3)):size(), {4, 2})
  T.eq(models.NoSuchBlock, nil)
end)

T.test('STOA-VLP: video, trajectories, actions, text, fusion, heads', function()
  torch.manual_seed(0)
  local m = models.stoa.build{frames = 2, image_size = 32, embed = 8, object_layer = 1, action_layer = 2,
                              video = tiny_video,
                              text = {vocab_size = 30, max_len = 8, embed_dim = 16, depth = 1, num_heads = 2},
                              trajectory = {num_trajectories = 3, embed_dim = 16, num_heads = 2, depth = 1},
                              action = {num_queries = 2, embed_dim = 16, num_heads = 2, depth = 1},
                              fusion = {depth = 1, embed_dim = 16, num_heads = 2}}
  local boxes = torch.rand(2, 2, 3, 2) * 0.5
  boxes = torch.cat({boxes, boxes + 0.4}, -1)
  local batch = {video = torch.randn(2, 2, 3, 32, 32), boxes = boxes,
                 classes = long({{{0, 1, 2}, {1, 2, -1}}, {{4, 4, 5}, {5, 6, 4}}}),
                 scores = torch.rand(2, 2, 3), ids = long({{1, 5, 7, 29}, {1, 6, 29, 0}}),
                 mask = torch.tensor({{true, true, true, true}, {true, true, true, false}})}
  local out = m(batch)
  T.eq(out.video.frames:size(), {2, 2, 8})
  T.eq(out.video.trajectories:size(), {2, 3, 8})
  T.eq(out.video.actions:size(), {2, 2, 8})
  T.eq(out.text.pooled:size(), {2, 8})
  local fused = m:fuse(out.video, out.text.tokens, batch.mask, long({1, 2}))
  T.eq(fused.video_cls:size(), {2, 16})
  local logits = m:lm_logits(fused)
  T.eq(logits:size(), {2, 4, 30})
  local loss = logits:pow(2):mean() + m:vtm_logits(fused):sum() + out.video.pooled:sum() + out.text.pooled:sum()
    + out.tau
  loss:backward()
  local with, total = grad_count(m)
  T.eq(with > total * 0.9, true)
end)

T.test('S-ViLM: tubelets, grouping blocks, projected groups', function()
  torch.manual_seed(1)
  local m = models.svilm.build{frames = 4, image_size = 32, embed = 8,
                               video = {embed_dim = 16, depth = 3, num_heads = 2, grouping_layers = {1, 3}, num_groups = 4},
                               text = {vocab_size = 30, max_len = 8, embed_dim = 16, depth = 1, num_heads = 2}}
  local out = m{video = torch.randn(2, 4, 3, 32, 32), ids = long({{1, 5, 7}, {1, 6, 2}}),
                noun_ids = long({{1, 9}, {1, 8}})}
  T.eq(out.video.groups:size(), {2, 4, 8})
  T.eq(out.video.embed:size(), {2, 8})
  T.eq(out.video.clips:size(), {2, 2, 16})  -- 4 frames / tubelet 2
  T.eq(out.nouns.embed:size(), {2, 8})
end)

T.test('OA-Trans: video, masked anchor frame, tags', function()
  torch.manual_seed(2)
  local m = models.oatrans.build{frames = 2, image_size = 32, embed = 8, video = tiny_video,
                                 text = {vocab_size = 30, max_len = 8, embed_dim = 16, depth = 1, num_heads = 2}}
  local keep = torch.tensor({{{true, false, true, false}}, {{false, false, false, true}}})
  local out = m{video = torch.randn(2, 2, 3, 32, 32), anchor = torch.randn(2, 3, 32, 32), patch_mask = keep,
                ids = long({{1, 5}, {1, 6}}), tag_ids = long({{1, 3}, {1, 4}})}
  T.eq(out.anchor:size(), {2, 8})
  T.eq(out.tags:size(), {2, 8})
end)

T.test('DemoVLP: region encoder and word outputs', function()
  torch.manual_seed(3)
  local m = models.demovlp.build{frames = 2, embed = 8, region = {feat_dim = 12, embed_dim = 16, depth = 1, num_heads = 2},
                                 text = {vocab_size = 30, max_len = 8, embed_dim = 16, depth = 1, num_heads = 2}}
  local out = m{features = torch.randn(2, 5, 12), locations = torch.rand(2, 5, 7),
                frame_index = long({{0, 0, 1, 1, 1}, {0, 1, 1, 0, 0}}),
                region_mask = torch.tensor({{true, true, true, true, true}, {true, true, true, false, false}}),
                ids = long({{1, 5, 2}, {1, 6, 2}})}
  T.eq(out.video.regions:size(), {2, 5, 8})
  T.eq(out.text.words:size(), {2, 3, 8})
  T.eq(out.text.embed:size(), {2, 8})
end)
