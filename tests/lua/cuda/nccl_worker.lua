-- One rank of tests/lua/cuda/test_nccl.lua, started by `kinema launch --nproc 2`:
--   nccl_worker.lua OUT_PREFIX   NCCL group, rank r on cuda:r; writes
--   OUT_PREFIX.rank<r>.safetensors with a collective's value and the model
--   trained by tests/lua/dist/vtc_setup.lua.
local torch = require 'torch'
local dist = require 'kinema.dist'

local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local prefix = assert(arg[1], 'usage: nccl_worker.lua OUT_PREFIX')
assert(dist.init({backend = 'nccl', timeout_s = 60}) == true, 'dist.init did not start a group')
local rank = dist.rank()
local device = 'cuda:' .. dist.local_rank()

local out, meta = {}, {backend = dist.backend(), device = dist.device()}
out.all_reduce_sum = dist.all_reduce(torch.tensor({rank + 1, 10 * (rank + 1)}, {dtype = torch.float64}):to(device),
                                     'sum'):to('cpu')
local S = dofile(here .. '../dist/vtc_setup.lua')
local losses, model = S.train(rank, device)
out.losses = torch.tensor(losses, {dtype = torch.float64})
for _, pair in ipairs(model:named_parameters()) do out['param.' .. pair[1]] = pair[2]:detach():to('cpu') end
dist.destroy()
torch.save_safetensors(string.format('%s.rank%d.safetensors', prefix, rank), out, meta)
