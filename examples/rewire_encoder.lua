-- Rewiring an encoder from Lua: a C++ video encoder keeps its fast blocks,
-- while the way its frames become one clip vector is replaced by a module
-- written here, and its early layers are frozen by name.
--
--   build/kinema run examples/rewire_encoder.lua
--
-- The stock VideoEncoder averages its per-frame [CLS] vectors (pooled_proj).
-- Here a learned attention pooling over the frames takes its place, then a
-- few AdamW steps of VTC on random clips show what trains and what stays put.
local kinema = require 'kinema'
local nn, models, optim, losses = kinema.nn, kinema.models, kinema.optim, kinema.losses

torch.manual_seed(0)
local B, T, E = 4, 4, 32

-- A Lua module: one learned query attends over the T frame vectors.
local FramePool = nn.Module:extend('FramePool')
function FramePool:init(dim)
  self.query = nn.Linear(dim, 1)   -- a score per frame
  self.out = nn.Linear(dim, dim)
end
function FramePool:forward(frames)          -- [B, T, E] -> [B, E]
  local weights = self.query(frames):squeeze(-1):softmax(-1)        -- [B, T]
  return self.out((frames * weights:unsqueeze(-1)):sum(1))
end

-- The model: C++ encoders (models/) and the Lua pooling, composed as one module tree.
local Model = nn.Module:extend('Model')
function Model:init()
  self.video = models.VideoEncoder{image_size = 32, num_frames = T, patch_size = 16, embed_dim = 48,
                                   depth = 2, num_heads = 4, proj_dim = E}
  self.text = models.TextEncoder{vocab_size = 100, max_len = 8, embed_dim = 32, depth = 1, num_heads = 4,
                                 proj_dim = E}
  self.pool = FramePool(E)
  self.temperature = models.Temperature{init = 0.07}
end
function Model:forward(video, ids, mask)
  local frames = self.video(video).cls_proj                          -- [B, T, E], per-frame [CLS]
  return {video_emb = self.pool(frames), text_emb = self.text(ids, mask).pooled_proj, tau = self.temperature()}
end

local model = Model()
print(model)

-- Freeze the patch embedding and the first transformer block of the video encoder.
local frozen = model:freeze({'^video%.patch_embed%.', '^video%.blocks%.0%.'})
print(string.format('frozen %d tensors, e.g. %s', #frozen, frozen[1]))
local before = {}
for _, p in ipairs(model:named_parameters()) do before[p[1]] = p[2]:detach():clone() end

local opt = optim.AdamW(model, {lr = 1e-3})
local video = torch.randn(B, T, 3, 32, 32)
local ids = torch.randint(1, 100, {B, 8})
local mask = torch.ones({B, 8}, {dtype = torch.bool})
local first, last
for step = 1, 5 do
  opt:zero_grad()
  local loss = losses.vtc(model(video, ids, mask))
  loss:backward()
  opt:step()
  first = first or loss:item()
  last = loss:item()
end
print(string.format('VTC over 5 steps on one batch: %.4f -> %.4f', first, last))
assert(last < first, 'the loss goes down on a repeated batch')

-- What moved and what did not.
local moved, still = 0, 0
for _, p in ipairs(model:named_parameters()) do
  local same = torch.equal(p[2]:detach(), before[p[1]])
  if p[1]:find('^video%.patch_embed%.') or p[1]:find('^video%.blocks%.0%.') then
    assert(same, p[1] .. ' is frozen but changed')
    still = still + 1
  elseif p[1]:find('^pool%.') then
    assert(not same, p[1] .. ' should have trained')
    moved = moved + 1
  end
end
print(string.format('%d frozen tensors unchanged, %d pooling tensors trained', still, moved))
