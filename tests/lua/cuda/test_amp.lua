-- Mixed precision on CUDA: one training step of the tiny STOA and S-ViLM
-- recipes under bf16 autocast against the same step in float32 (same
-- weights, same batch): the loss and every part finite and within bf16
-- tolerance of float32, the updated weights finite. Runs only with a CUDA
-- device (ctest label 'cuda'); otherwise one "skipped" line.
local T = require 'kinema.test'
local kinema = require 'kinema'
local recipe = kinema.recipe

if not torch.cuda.is_available() then
  print('skipped: no CUDA device')
  return
end

local root = T.tmpdir()
local data_dir = root .. '/synth'
local ok, err = pcall(kinema.data.synth, {out_dir = data_dir, num_train = 8, num_test = 4, width = 64, height = 64,
                      min_duration_s = 2, max_duration_s = 3, region_frames = 4, region_dim = 32, threads = 2})
if not ok and tostring(err):find('without media support', 1, true) then
  -- A -DKINEMA_WITH_MEDIA=OFF build (the GPU bundle's) cannot write or decode the clips these steps train on.
  print('skipped: built without media support (KINEMA_WITH_MEDIA=OFF), no synthetic videos to train on')
  os.execute('rm -rf "' .. root .. '"')
  return
end
assert(ok, err)

-- Loss, parts and the updated parameters of one step of `name` on the first
-- batch, with autocast (bf16) or without.
local function one_step(name, bf16)
  local spec = require('kinema.recipes.' .. name)
  local cfg = recipe.parse_args({'--tiny', '--data.root', data_dir, '--train.batch_size', '4', '--image_size', '32',
                                 '--train.num_workers', '1', '--device', 'cuda'},
                                recipe.merge(recipe.common, spec.defaults or {}), spec.presets)
  torch.manual_seed(7)
  local tok = require('kinema.recipe_data').tokenizer_or_synth(cfg)
  local model = spec.build(cfg, tok)
  model:to('cuda')
  model:train()
  local parts = recipe.training_parts(spec, cfg, model, tok)
  local batch = kinema.train.to_device(parts.loader:iter(0, 0)(), 'cuda')
  parts.loader:close()
  torch.manual_seed(8)  -- the same masking / sampling noise in both runs
  local function loss_fn() return parts.loss(batch) end
  local total, terms
  if bf16 then
    total, terms = torch.autocast{device_type = 'cuda', dtype = torch.bfloat16}(loss_fn)
  else
    total, terms = loss_fn()
  end
  parts.optimizer:zero_grad()
  total:backward()
  parts.optimizer:step()
  local values = {}
  for k, v in pairs(terms or {}) do values[k] = torch.is_tensor(v) and v:item() or v end
  return total:item(), values, model
end

for _, name in ipairs({'stoa', 'svilm'}) do
  T.test(name .. ': a bf16 autocast step is finite and within tolerance of float32', function()
    local loss32, parts32 = one_step(name, false)
    local loss16, parts16, model = one_step(name, true)
    T.is_true(loss16 == loss16 and math.abs(loss16) < math.huge, name .. ': bf16 loss not finite')
    T.close(loss16, loss32, {atol = 0.05, rtol = 0.02}, name .. ': total loss')
    for k, v in pairs(parts32) do
      if type(v) == 'number' then T.close(parts16[k], v, {atol = 0.05, rtol = 0.03}, name .. ': part ' .. k) end
    end
    for _, pair in ipairs(model:named_parameters()) do
      T.is_true(torch.isfinite(pair[2]):all():item(), name .. ': parameter ' .. pair[1] .. ' not finite after the step')
    end
  end)
end

T.test('cleanup', function() os.execute('rm -rf "' .. root .. '"') end)
