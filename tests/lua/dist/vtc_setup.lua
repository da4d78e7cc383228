-- The data-parallel equivalence experiment of tests/lua/test_dist.lua, shared
-- by the 1-process reference (run inside the test) and the ranks of
-- `kinema launch --nproc 2` (dist/worker.lua): two linear encoders trained
-- with VTC over gathered columns, SGD with momentum, on a fixed global batch
-- that rank r reads rows r*b .. (r+1)*b-1 of.
local torch = require 'torch'
local kinema = require 'kinema'
local losses = require 'kinema.losses'
local dist = require 'kinema.dist'
local nn, optim = kinema.nn, kinema.optim

local S = {global_batch = 8, steps = 5}

local Pair = nn.Module:extend('DistTestPair')
function Pair:init()
  self.video = nn.Linear(16, 8)
  self.text = nn.Linear(12, 8)
  self.logit_scale = nn.Parameter(torch.tensor({math.log(1 / 0.07)}))
  self.unused = nn.Linear(2, 2)  -- never reaches the loss: no gradient on any rank
end

-- The global batch of a step: identical in every process.
function S.batch(step)
  torch.manual_seed(1000 + step)
  return torch.randn(S.global_batch, 16), torch.randn(S.global_batch, 12)
end

-- Trains as rank `rank` of dist.world_size() on `device` (default 'cpu');
-- returns this process's loss per step (a list of numbers) and the model.
function S.train(rank, device)
  device = device or 'cpu'
  local world = dist.world_size()
  -- Different initial weights per rank: broadcast_parameters must equalise them.
  torch.manual_seed(100 + rank)
  local model = Pair()
  model:to(device)
  dist.broadcast_parameters(model, 0)
  local opt = optim.SGD(model, {lr = 0.5, momentum = 0.9})
  local b = S.global_batch / world
  local vtc = losses.get('vtc')
  local out = {}
  for step = 1, S.steps do
    local video, text = S.batch(step)
    video, text = video:to(device), text:to(device)
    local v = model.video(video:narrow(0, rank * b, b))
    local t = model.text(text:narrow(0, rank * b, b))
    local loss = vtc({video_emb = v, text_emb = t, gather = dist.column_gatherer(), logit_scale = model.logit_scale})
    opt:zero_grad()
    loss:backward()
    -- ~0.5 KB buckets: several buckets, single- and multi-gradient ones
    dist.average_gradients(model, {bucket_mb = 0.0005})
    opt:step()
    out[step] = loss:item()
  end
  return out, model
end

return S
