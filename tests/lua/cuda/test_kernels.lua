-- kinema's CUDA kernels against their CPU kernels (which the CPU suite checks
-- against torchvision, scipy and the definitions): roi_align values and
-- gradients, linear_assignment totals (scipy's semantics: the CPU solver's
-- optimal total, padding, counts), the pooled similarities, the bf16 autocast
-- kernels, and bad inputs giving the same named errors. Runs only with a CUDA
-- device (ctest label 'cuda'); otherwise one "skipped" line.
local T = require 'kinema.test'
local kinema = require 'kinema'
local ops = kinema.ops

if not torch.cuda.is_available() then
  print('skipped: no CUDA device')
  return
end
local cuda = 'cuda'
local long = {dtype = torch.int64}

-- Per sample, the sum of cost over the matched (non-padding) pairs.
local function total(cost, rows, cols)
  local valid = rows:ge(0):to(cost.dtype)
  local r, c = rows:clamp_min(0), cols:clamp_min(0)
  local picked = cost:gather(1, r:unsqueeze(2):expand({r:size(0), r:size(1), cost:size(2)}))
  return (picked:gather(2, c:unsqueeze(2)):squeeze(2) * valid):sum(1)
end

T.test('roi_align: CUDA equals CPU, forward and backward, float32 and float64', function()
  torch.manual_seed(1)
  for _, dtype in ipairs({torch.float32, torch.float64}) do
    local x = torch.randn(3, 5, 17, 23, {dtype = dtype})
    local boxes = torch.cat({torch.randint(0, 3, {40, 1}):to(dtype), torch.rand(40, 2, {dtype = dtype}) * 10,
                             torch.rand(40, 2, {dtype = dtype}) * 10 + 10}, 1)
    for _, aligned in ipairs({false, true}) do
      for _, ratio in ipairs({-1, 2}) do
        local xc = x:clone():requires_grad_(true)
        local xg = x:to(cuda):requires_grad_(true)
        local yc = ops.roi_align(xc, boxes, 7, 7, {spatial_scale = 0.5, sampling_ratio = ratio, aligned = aligned})
        local yg = ops.roi_align(xg, boxes:to(cuda), 7, 7, {spatial_scale = 0.5, sampling_ratio = ratio,
                                                             aligned = aligned})
        local tol = dtype == torch.float64 and 1e-10 or 1e-4
        T.close(yg:cpu(), yc, {atol = tol, rtol = tol})
        local w = torch.randn(yc:size(), {dtype = dtype})
        ;(yc * w):sum():backward()
        ;(yg * w:to(cuda)):sum():backward()
        T.close(xg.grad:cpu(), xc.grad, {atol = tol, rtol = tol})
      end
    end
  end
  -- the CUDA backward is deterministic (no atomics): two runs agree bit for bit
  local x = torch.randn(2, 4, 9, 9):to(cuda):requires_grad_(true)
  local boxes = torch.tensor({{0, 1, 1, 8, 8}, {0, 0, 0, 9, 9}, {1, 2, 2, 5, 7}}):to(cuda)
  local grads = {}
  for i = 1, 2 do
    x.grad = nil
    ops.roi_align(x, boxes, 3, 3):sum():backward()
    grads[i] = x.grad:clone()
  end
  T.eq(grads[1], grads[2])
end)

T.test('linear_assignment 256 x 20x33 padded: CUDA totals equal the CPU solver\'s, padding identical', function()
  torch.manual_seed(2)
  for _, maximize in ipairs({false, true}) do
    local cost = torch.rand(256, 20, 33, {dtype = torch.float64})
    local rc = torch.randint(0, 21, {256}, long)
    local cc = torch.randint(0, 34, {256}, long)
    local rows_c, cols_c = ops.linear_assignment(cost, rc, cc, {maximize = maximize})
    local rows_g, cols_g = ops.linear_assignment(cost:to(cuda), rc:to(cuda), cc:to(cuda), {maximize = maximize})
    T.close(total(cost, rows_g:cpu(), cols_g:cpu()), total(cost, rows_c, cols_c), {atol = 1e-9})
    T.eq(rows_g:cpu():ge(0), rows_c:ge(0))  -- same number of pairs per sample
    -- a matching: no column used twice within a sample
    local used = torch.zeros(256, 34, long):scatter_add(1, cols_g:cpu():clamp_min(-1) + 1, rows_g:cpu():ge(0):to(torch.int64))
    T.is_true(used:narrow(1, 1, 33):le(1):all():item(), 'a column is matched twice')
  end
  -- float32 with many ties (integer costs)
  local ints = torch.randint(0, 4, {64, 8, 8}):to(torch.float32)
  local rc, ccl = ops.linear_assignment(ints)
  local rg, cg = ops.linear_assignment(ints:to(cuda))
  T.eq(total(ints, rg:cpu(), cg:cpu()), total(ints, rc, ccl))
end)

T.test('pooled similarities: CUDA equals CPU, forward and backward', function()
  torch.manual_seed(3)
  local r = torch.randn(4, 6, 16, {dtype = torch.float64})
  local t = torch.randn(5, 7, 16, {dtype = torch.float64})
  local mr, mt = torch.rand(4, 6):gt(0.2), torch.rand(5, 7):gt(0.2)
  local function run(device)
    local rr, tt = r:to(device):requires_grad_(true), t:to(device):requires_grad_(true)
    local s, s_t = ops.rwa_similarity(rr, mr:to(device), tt, mt:to(device), {lambda = 3.0})
    local g = ops.grounding_similarity(rr, tt, mt:to(device), {tau = 0.7})
    ;(s:sum() + 2 * s_t:sum() + 3 * g:sum()):backward()
    return {s:cpu(), s_t:cpu(), g:cpu(), rr.grad:cpu(), tt.grad:cpu()}
  end
  local c, g = run('cpu'), run(cuda)
  for i = 1, #c do T.close(g[i], c[i], {atol = 1e-10, rtol = 1e-10}) end
end)

T.test('bf16 autocast on CUDA: roi_align keeps bf16, similarities return float32', function()
  torch.manual_seed(4)
  local f32 = torch.float32
  local x = torch.randn(2, 3, 8, 8):to(cuda):to(torch.bfloat16)
  local boxes = torch.tensor({{0, 1, 1, 6, 6}, {1, 0, 2, 7, 5}}):to(cuda):to(torch.bfloat16)
  local y = torch.autocast{device_type = 'cuda'}(function() return ops.roi_align(x, boxes, 2, 2) end)
  T.eq(y.dtype, torch.bfloat16)
  T.close(y:to(f32), ops.roi_align(x:to(f32), boxes:to(f32), 2, 2):to(torch.bfloat16):to(f32), {atol = 0})
  local r = torch.randn(2, 3, 8):to(cuda):to(torch.bfloat16)
  local s = torch.autocast{device_type = 'cuda'}(function() return ops.grounding_similarity(r, r) end)
  T.eq(s.dtype, torch.float32)
  T.close(s, ops.grounding_similarity(r:to(f32), r:to(f32)), {atol = 0})
end)

T.test('bad inputs on CUDA give the CPU errors', function()
  local x = torch.randn(1, 2, 4, 4):to(cuda)
  T.raises(function() ops.roi_align(x, torch.tensor({{3, 0, 0, 1, 1}}):to(cuda), 2, 2) end,
           "kinema::roi_align: argument 'boxes' has a batch index outside [0, 1)")
  T.raises(function() ops.roi_align(x, torch.tensor({{0, 0, 0, 1, 1}}), 2, 2) end, "argument 'boxes' is on cpu")
  local bad = torch.rand(3, 4, 4)
  bad[2][1][1] = 0 / 0
  T.raises(function() ops.linear_assignment(bad:to(cuda)) end,
           "kinema::linear_assignment: argument 'cost' has a non-finite entry in sample 2")
  T.raises(function() ops.linear_assignment(torch.rand(2, 3, 3):to(cuda), torch.tensor({1, 4}, long):to(cuda)) end,
           "argument 'row_counts' is outside [0, R] in sample 1")
end)
