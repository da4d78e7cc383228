-- One rank of tests/lua/test_dist.lua, started by `kinema launch --nproc 2`:
--   worker.lua OUT_PREFIX   writes OUT_PREFIX.rank<r>.safetensors with the
--                           results of the collectives, the error messages
--                           (metadata) and the trained model (vtc_setup.lua).
--   worker.lua --fail       rank 1 exits with code 3 at once, rank 0 spins
--                           until the launcher stops it (300 s at most:
--                           beyond the test's 120 s `timeout`).
local torch = require 'torch'
local dist = require 'kinema.dist'

local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'

if arg[1] == '--fail' then
  if os.getenv('RANK') == '1' then os.exit(3) end
  local start = os.time()
  while os.time() - start < 300 do end
  os.exit(0)
end

local prefix = assert(arg[1], 'usage: worker.lua OUT_PREFIX')
assert(dist.init({timeout_s = 60}) == true, 'dist.init did not start a group')
local rank, world = dist.rank(), dist.world_size()
assert(world == 2, 'expected 2 ranks, got ' .. world)

local out, meta = {}, {}
meta.rank, meta.world_size, meta.local_rank = tostring(rank), tostring(world), tostring(dist.local_rank())
meta.backend = dist.backend()
meta.is_main = tostring(dist.is_main())

-- (a) values of the collectives
local r1 = rank + 1
for _, op in ipairs({'sum', 'avg', 'max', 'min'}) do
  out['all_reduce_' .. op] = dist.all_reduce(torch.tensor({r1, 10 * r1}, {dtype = torch.float64}), op)
end
-- a non-contiguous tensor is reduced in place too
local nc = (torch.arange(6):reshape({2, 3}):to(torch.float32) * r1):t()
dist.all_reduce(nc, 'sum')
out.all_reduce_noncontiguous = nc
out.broadcast = dist.broadcast(torch.full({3}, rank + 7, {dtype = torch.float32}), 1)
out.all_gather = dist.all_gather(torch.tensor({{rank, rank + 0.5}}, {dtype = torch.float32}))
-- rank r has r+1 rows of value r
out.all_gather_uneven = dist.all_gather_uneven(torch.full({rank + 1, 2}, rank, {dtype = torch.int64}))
local numbers = dist.all_reduce_numbers({a = r1, b = 2}, 'sum')
out.numbers = torch.tensor({numbers.a, numbers.b}, {dtype = torch.float64})

-- (b) gradient of all_gather: loss_r = sum(gathered * w_r) with w_r = (r+1) * W
local x = torch.arange(6):reshape({3, 2}):to(torch.float64) * r1
x.requires_grad = true
local gathered = dist.all_gather(x)
local w = torch.arange(12):reshape({6, 2}):to(torch.float64) * r1
local loss = (gathered * w):sum()
loss:backward()
out.gather_value = gathered:detach()
out.gather_grad = x.grad

-- errors: every rank raises the same message and the group stays usable
local function message(fn)
  local ok, err = pcall(fn)
  return ok and 'no error' or tostring(err)
end
meta.err_shape = message(function() dist.all_gather(torch.zeros({2 + rank, 3})) end)
meta.err_avg_int = message(function() dist.all_reduce(torch.ones({2}, {dtype = torch.int64}), 'avg') end)
meta.err_op = message(function() dist.all_reduce(torch.ones({2}), 'prod') end)
meta.err_src = message(function() dist.broadcast(torch.ones({2}), 5) end)
meta.err_init_twice = message(function() require('kinema._dist').init({}) end)
dist.barrier()

-- (c) data-parallel training
local S = dofile(here .. 'vtc_setup.lua')
local losses, model = S.train(rank)
out.losses = torch.tensor(losses, {dtype = torch.float64})
for _, pair in ipairs(model:named_parameters()) do
  out['param.' .. pair[1]] = pair[2]:detach()
  if pair[1]:match('^unused') then meta['grad.' .. pair[1]] = tostring(pair[2].grad) end
end

dist.destroy()
meta.initialized_after_destroy = tostring(dist.is_initialized())
torch.save_safetensors(string.format('%s.rank%d.safetensors', prefix, rank), out, meta)
