-- The README's main job (for now): a short tour that trains a small model from
-- Lua on synthetic data and prints what it learned. Later issues turn this
-- into the synthetic video-language pre-training demo.
local kinema = require 'kinema'
local nn, optim = kinema.nn, kinema.optim

print(kinema.version)
torch.manual_seed(0)

-- Two Gaussian blobs per class in 8-D; a 2-layer MLP separates them.
local n, d, classes = 512, 8, 4
local centers = torch.randn(classes, d) * 3
local labels = torch.randint(0, classes, {n})
local x = centers:index_select(0, labels) + torch.randn(n, d)

local model = nn.Sequential(nn.Linear(d, 32), nn.GELU(), nn.Linear(32, classes))
local opt = optim.AdamW(model, {lr = 0.01, weight_decay = 0.01})
local sched = optim.lr_scheduler.WarmupCosine(opt, {warmup_steps = 10, total_steps = 200})
print(model)

for step = 1, 200 do
  local batch = torch.randint(0, n, {64})
  opt:zero_grad()
  local loss = torch.cross_entropy_loss(model(x:index_select(0, batch)), labels:index_select(0, batch))
  loss:backward()
  optim.clip_grad_norm(model, 1.0)
  opt:step()
  sched:step()
  if step % 50 == 0 then print(string.format('step %3d  loss %.4f  lr %.5f', step, loss:item(), opt.groups[1].lr)) end
end

local accuracy = torch.no_grad(function()
  return model(x):argmax(-1):eq(labels):to(torch.float32):mean():item()
end)
print(string.format('training accuracy %.1f%% (chance %.1f%%)', 100 * accuracy, 100 / classes))
