-- kinema.dist across real processes: `kinema launch --nproc 2` runs
-- tests/lua/dist/worker.lua on loopback (Gloo); the ranks write their results
-- to safetensors files that these tests compare with hand-computed values and
-- with a 1-process run of the same training (tests/lua/dist/vtc_setup.lua).
local T = require 'kinema.test'
local torch = require 'torch'
local kinema = require 'kinema'
local dist = require 'kinema.dist'

local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local exe = kinema.executable()

-- Runs a shell command (bounded by `timeout`); returns exit code, stdout+stderr, seconds.
local function sh(cmd)
  local log = T.tmpname('.log')
  local t0 = os.time()
  local r1, _, r3 = os.execute(string.format('timeout 120 %s >%s 2>&1', cmd, log))
  local code = type(r1) == 'number' and math.floor(r1 / 256) or r3
  local f = io.open(log)
  local text = f:read('*a')
  f:close()
  os.remove(log)
  return code, text, os.time() - t0
end

-- One launch for the whole file; each test reads its part.
local ranks
local function results()
  if ranks then return ranks end
  local prefix = T.tmpname('-dist')
  local code, output = sh(string.format("'%s' launch --nproc 2 '%sdist/worker.lua' '%s'", exe, here, prefix))
  T.is_true(code == 0, 'kinema launch failed (code ' .. tostring(code) .. '):\n' .. output)
  ranks = {}
  for r = 0, 1 do
    local path = string.format('%s.rank%d.safetensors', prefix, r)
    local tensors, meta = torch.load_safetensors(path)
    ranks[r] = {t = tensors, meta = meta}
  end
  return ranks
end

T.test('launch: environment and group', function()
  local R = results()
  for r = 0, 1 do
    local m = R[r].meta
    T.eq({m.rank, m.world_size, m.local_rank, m.backend, m.is_main, m.initialized_after_destroy},
         {tostring(r), '2', tostring(r), 'gloo', tostring(r == 0), 'false'})
  end
end)

T.test('all_reduce, broadcast, all_gather, all_reduce_numbers values', function()
  local R = results()
  for r = 0, 1 do
    local t = R[r].t
    T.eq(t.all_reduce_sum, torch.tensor({3, 30}, {dtype = torch.float64}))
    T.eq(t.all_reduce_avg, torch.tensor({1.5, 15}, {dtype = torch.float64}))
    T.eq(t.all_reduce_max, torch.tensor({2, 20}, {dtype = torch.float64}))
    T.eq(t.all_reduce_min, torch.tensor({1, 10}, {dtype = torch.float64}))
    T.eq(t.all_reduce_noncontiguous, (torch.arange(6):reshape({2, 3}):to(torch.float32) * 3):t():contiguous())
    T.eq(t.broadcast, torch.full({3}, 8, {dtype = torch.float32}))
    T.eq(t.all_gather, torch.tensor({{0, 0.5}, {1, 1.5}}, {dtype = torch.float32}))
    T.eq(t.all_gather_uneven, torch.tensor({{0, 0}, {1, 1}, {1, 1}}, {dtype = torch.int64}))
    T.eq(t.numbers, torch.tensor({3, 4}, {dtype = torch.float64}))
  end
end)

T.test('all_gather gradient: all-reduced incoming gradient, own block', function()
  local R = results()
  local W = torch.arange(12):reshape({6, 2}):to(torch.float64)
  local gathered = torch.cat({torch.arange(6):reshape({3, 2}), torch.arange(6):reshape({3, 2}) * 2}, 0)
  for r = 0, 1 do
    T.eq(R[r].t.gather_value, gathered:to(torch.float64))
    -- d(sum_q loss_q)/dx_r = sum_q (q+1) * W[block r] = 3 * W[block r]
    T.eq(R[r].t.gather_grad, W:narrow(0, 3 * r, 3) * 3)
  end
end)

T.test('errors name the function and argument, on every rank, group still usable', function()
  local R = results()
  for r = 0, 1 do
    local m = R[r].meta
    T.is_true(m.err_shape:find("kinema.dist.all_gather: argument 'tensor' must have the same shape and dtype on " ..
                               "every rank; rank 0 has [2, 3] Float, rank 1 has [3, 3] Float", 1, true), m.err_shape)
    T.is_true(m.err_avg_int:find("kinema.dist.all_reduce: op 'avg' needs a floating tensor", 1, true), m.err_avg_int)
    T.is_true(m.err_op:find("kinema.dist.all_reduce: argument 'op' must be", 1, true), m.err_op)
    T.is_true(m.err_src:find("kinema.dist.broadcast: argument 'src' = 5 must be in [0, 2)", 1, true), m.err_src)
    T.is_true(m.err_init_twice:find('kinema.dist.init: already initialized', 1, true), m.err_init_twice)
  end
end)

T.test('2 ranks x batch b == 1 rank x batch 2b (VTC over gathered columns, 5 SGD steps)', function()
  local R = results()
  local S = dofile(here .. 'dist/vtc_setup.lua')
  T.is_true(not dist.is_initialized() and dist.world_size() == 1, 'the test process itself is a single process')
  local ref_losses, ref_model = S.train(0)
  local ref = torch.tensor(ref_losses, {dtype = torch.float64})
  T.is_true(ref_losses[S.steps] < ref_losses[1] - 1e-3, 'training must move the loss: ' .. tostring(ref))
  local mean = (R[0].t.losses + R[1].t.losses) / 2
  local loss_diff = (mean - ref):abs():max():item()
  T.close(mean, ref, {atol = 1e-5, rtol = 0})
  local weight_diff = 0
  for _, pair in ipairs(ref_model:named_parameters()) do
    local key = 'param.' .. pair[1]
    T.eq(R[1].t[key], R[0].t[key], 'replicas must stay bitwise equal: ' .. key)
    T.close(R[0].t[key], pair[2]:detach(), {atol = 1e-5, rtol = 0}, key)
    weight_diff = math.max(weight_diff, (R[0].t[key] - pair[2]:detach()):abs():max():item())
  end
  -- the unused branch got no gradient anywhere and kept rank 0's initial weights
  T.eq(R[0].meta['grad.unused.weight'], 'nil')
  print(string.format('    2 ranks vs 1 rank: max |loss diff| %.3g, max |weight diff| %.3g (losses %s)', loss_diff,
                      weight_diff, torch.format(ref, {precision = 5})))
end)

T.test('launch: a failing rank stops the others and sets the exit code', function()
  local code, output, seconds = sh(string.format("'%s' launch --nproc 2 '%sdist/worker.lua' --fail", exe, here))
  -- Rank 0 spins for 300 s unless stopped: awaiting it would end in sh's
  -- 120 s `timeout` (code 124). The wall-clock bound is wide because two
  -- LibTorch processes can take tens of seconds to start on a loaded machine.
  T.eq(code, 3, output)
  T.is_true(output:find('kinema launch: rank 1 (local rank 1', 1, true) and output:find('exited with code 3', 1, true),
            output)
  T.is_true(seconds < 100, 'rank 0 must be stopped, not awaited: ' .. seconds .. ' s')
end)

T.test('launch: bad options', function()
  local code, output = sh(string.format("'%s' launch --nproc 0 x.lua", exe))
  T.eq(code, 2)
  T.is_true(output:find("option '--nproc' must be an integer in [1, 1024], got '0'", 1, true), output)
  code, output = sh(string.format("'%s' launch --nnodes 2 x.lua", exe))
  T.eq(code, 2)
  T.is_true(output:find("'--master-port' is required with --nnodes > 1", 1, true), output)
end)

T.test('single process: identities and init without WORLD_SIZE', function()
  local x = torch.randn(3, 2)
  T.is_true(rawequal(dist.all_gather(x), x) and rawequal(dist.all_gather_uneven(x), x))
  T.eq(dist.all_reduce_numbers({a = 2, b = 5}), {a = 2, b = 5})
  T.eq({dist.rank(), dist.world_size(), dist.local_rank(), dist.rank_offset(4), dist.is_main()}, {0, 1, 0, 0, true})
  T.eq(dist.loader_options({batch_size = 4}), {batch_size = 4, rank = 0, world_size = 1})
  if (tonumber(os.getenv('WORLD_SIZE') or '1') or 1) <= 1 then T.eq(dist.init(), false) end
  T.raises(function() dist.init({world_size = 2, rank = 2, master_port = 1}) end,
           "kinema.dist.init: option 'rank' = 2 must be in [0, 2)")
  T.raises(function() dist.init({world_size = 1, rank = 0, master_port = 1, bogus = 1}) end,
           "kinema.dist.init: unknown option 'bogus'")
  T.raises(function() dist.init({world_size = 1, rank = 0, master_port = 1, backend = 'mpi'}) end,
           "kinema.dist.init: option 'backend' must be 'gloo' or 'nccl', got 'mpi'")
  T.raises(function() dist.average_gradients({1}) end,
           "kinema.dist.average_gradients: argument 'params' element 1 is a number, not a Tensor")
  T.raises(function() require('kinema._dist').barrier() end, 'kinema.dist.barrier: the process group is not initialized')
end)
