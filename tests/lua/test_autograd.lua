-- Autograd through the bridge: backward, .grad, detach, no_grad, autograd.grad,
-- custom functions written in Lua, and a numerical gradient check.
local T = require 'kinema.test'

T.test('backward accumulates .grad', function()
  local x = torch.tensor({1., 2., 3.}, {requires_grad = true})
  local y = (x * x):sum()
  y:backward()
  T.eq(x.grad, torch.tensor({2., 4., 6.}))
  T.is_true(x.is_leaf and not y.is_leaf)
  T.eq(y.grad_fn, 'SumBackward0')
  ;(x * 3):sum():backward()
  T.eq(x.grad, torch.tensor({5., 7., 9.}))
  x.grad = nil
  T.eq(x.grad, nil)
end)

T.test('backward with a gradient argument and retain_graph', function()
  local x = torch.ones(2, {requires_grad = true})
  local y = x * torch.tensor({2., 3.})
  y:backward(torch.tensor({1., 10.}), {retain_graph = true})
  T.eq(x.grad, torch.tensor({2., 30.}))
  y:backward(torch.tensor({1., 1.}))
  T.eq(x.grad, torch.tensor({4., 33.}))
  T.raises(function() (x * 2):backward() end, 'grad can be implicitly created only for scalar outputs')
end)

T.test('detach and no_grad stop recording', function()
  local x = torch.ones(2, {requires_grad = true})
  T.is_true(not x:detach().requires_grad)
  local y = torch.no_grad(function() return x * 2 end)
  T.is_true(not y.requires_grad)
  T.is_true(torch.is_grad_enabled())
  -- an error inside no_grad restores the mode
  pcall(torch.no_grad, function() error('boom') end)
  T.is_true(torch.is_grad_enabled())
  T.is_true((x * 2).requires_grad)
end)

T.test('autograd.grad with create_graph gives second derivatives', function()
  local x = torch.tensor(3., {requires_grad = true})
  local y = x ^ 3
  local g = torch.autograd.grad(y, x, {create_graph = true})
  T.close(g:item(), 27)
  local g2 = torch.autograd.grad(g, x)
  T.close(g2:item(), 18)
end)

T.test('custom autograd function with a hand-written backward', function()
  -- f(x, w) = sum(w * x^2) with its gradient written by hand
  local F = torch.autograd.Function{
    forward = function(ctx, x, w, scale)
      ctx:save_for_backward(x, w)
      ctx.scale = scale
      return (w * x * x):sum() * scale
    end,
    backward = function(ctx, g)
      local x, w = ctx:saved_tensors()
      return g * 2 * w * x * ctx.scale, g * x * x * ctx.scale
    end,
  }
  local x = torch.tensor({1., 2.}, {requires_grad = true})
  local w = torch.tensor({3., 4.}, {requires_grad = true})
  local y = F(x, w, 0.5)
  T.close(y:item(), 0.5 * (3 + 16))
  y:backward()
  T.close(x.grad, torch.tensor({3., 8.}))
  T.close(w.grad, torch.tensor({0.5, 2.}))
  T.gradcheck(function(a, b) return F(a, b, 0.5) end, {torch.randn(3), torch.randn(3)})
end)

T.test('errors inside custom forward/backward reach Lua', function()
  local Bad = torch.autograd.Function{
    forward = function(ctx, x) return x * 2 end,
    backward = function(ctx, g) error('backward exploded') end,
  }
  local x = torch.ones(1, {requires_grad = true})
  T.raises(function() Bad(x):sum():backward() end, 'backward exploded')
  local BadForward = torch.autograd.Function{
    forward = function(ctx, x) return 'not a tensor' end,
    backward = function(ctx, g) return g end,
  }
  T.raises(function() BadForward(x) end, 'must return Tensors')
end)

T.test('a Lua backward may start backward itself (nested engine runs serve the Lua thread too)', function()
  -- backward computes its gradient with torch.autograd.grad, and the outer
  -- backward comes from torch.autograd.grad: each engine run hands the Lua
  -- backward to this thread; none waits on the other
  local Cube = torch.autograd.Function{
    forward = function(ctx, x) ctx:save_for_backward(x); return x * x * x end,
    backward = function(ctx, g)
      local x = ctx:saved_tensors()
      local inner = x:detach()
      inner.requires_grad = true
      local d = torch.autograd.grad((inner * inner * inner):sum(), inner)
      return g * d
    end,
  }
  local x = torch.tensor({1., 2., -3.}, {requires_grad = true})
  local gx = torch.autograd.grad(Cube(Cube(x)):sum(), x)
  -- d/dx (x^3)^3 = 9 x^8
  T.close(gx, torch.tensor({9., 9 * 256, 9 * 6561}))
  Cube(x):sum():backward()
  T.close(x.grad, torch.tensor({3., 12., 27.}))
end)

T.test('gradcheck of composed ATen ops', function()
  T.gradcheck(function(a, b) return torch.matmul(a, b):softmax(-1):log() end,
              {torch.randn(2, 3), torch.randn(3, 4)})
  T.gradcheck(function(a) return (a:sigmoid() * a:tanh()):cumsum(0) end, {torch.randn(5)})
end)

T.test('gradcheck detects a wrong gradient', function()
  local Wrong = torch.autograd.Function{
    forward = function(ctx, x) ctx:save_for_backward(x); return x * x end,
    backward = function(ctx, g) local x = ctx:saved_tensors(); return g * 3 * x end,
  }
  T.raises(function() T.gradcheck(function(a) return Wrong(a) end, {torch.randn(3)}) end, 'not close')
end)
