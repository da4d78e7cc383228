-- The c10d NCCL backend: `kinema launch --nproc 2` trains the data-parallel
-- VTC experiment of tests/lua/test_dist.lua over NCCL, one GPU per rank, and
-- must equal the 1-process run on one GPU. Runs only with 2 CUDA devices
-- (ctest label 'cuda'); otherwise one "skipped" line.
local T = require 'kinema.test'
local kinema = require 'kinema'
local dist = require 'kinema.dist'

if not torch.cuda.is_available() then
  print('skipped: no CUDA device')
  return
end
if torch.cuda.device_count() < 2 or not dist.nccl_available() then
  print('skipped: the 2-rank NCCL run needs 2 CUDA devices and a LibTorch with NCCL')
  return
end

local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'

T.test('2 NCCL ranks x batch b == 1 GPU x batch 2b (VTC over gathered columns, 5 SGD steps)', function()
  local prefix = T.tmpname('-nccl')
  local log = prefix .. '.log'
  local ok = os.execute(string.format("timeout 300 '%s' launch --nproc 2 '%snccl_worker.lua' '%s' >'%s' 2>&1",
                                      kinema.executable(), here, prefix, log))
  local f = io.open(log)
  local output = f and f:read('*a') or ''
  if f then f:close() end
  T.is_true(ok == 0 or ok == true, 'kinema launch failed:\n' .. output)
  local R = {}
  for r = 0, 1 do
    local path = string.format('%s.rank%d.safetensors', prefix, r)
    local t, meta = torch.load_safetensors(path)
    R[r] = {t = t, meta = meta}
  end
  for r = 0, 1 do
    T.eq(R[r].meta.backend, 'nccl')
    T.eq(R[r].meta.device, 'cuda:' .. r)
    T.eq(R[r].t.all_reduce_sum, torch.tensor({3, 30}, {dtype = torch.float64}))
  end
  local S = dofile(here .. '../dist/vtc_setup.lua')
  local ref_losses, ref_model = S.train(0, 'cuda:0')
  local ref = torch.tensor(ref_losses, {dtype = torch.float64})
  T.close((R[0].t.losses + R[1].t.losses) / 2, ref, {atol = 1e-5, rtol = 0})
  for _, pair in ipairs(ref_model:named_parameters()) do
    local key = 'param.' .. pair[1]
    T.eq(R[1].t[key], R[0].t[key], 'replicas must stay bitwise equal: ' .. key)
    T.close(R[0].t[key], pair[2]:detach():to('cpu'), {atol = 1e-5, rtol = 0}, key)
  end
end)
