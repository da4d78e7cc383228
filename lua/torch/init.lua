-- The `torch` table: native tensor functions (kinema._torch), autograd
-- (kinema._autograd), file formats (kinema._io), plus the Lua-side pieces.
-- Every ATen operator not listed here is reached through torch.NAME / t:NAME
-- by the dispatcher bridge, with PyTorch's names, arguments and 0-based dims.
local torch = require 'kinema._torch'

-- Lua 5.2+ spelling, so code written for newer Luas runs on LuaJIT.
table.unpack = table.unpack or unpack
local autograd = require 'kinema._autograd'

torch.no_grad = autograd.no_grad
torch.enable_grad = autograd.enable_grad
torch.set_grad_enabled = autograd.set_grad_enabled
torch.is_grad_enabled = autograd.is_grad_enabled
torch.Tensor.backward = autograd.backward

torch.autograd = {grad = autograd.grad, backward = autograd.backward}

-- A custom autograd function written in Lua:
--   local Square = torch.autograd.Function{
--     forward = function(ctx, x) ctx:save_for_backward(x); return x * x end,
--     backward = function(ctx, g) local x = ctx:saved_tensors(); return g * 2 * x end }
--   local y = Square(x)          -- or Square:apply(x)
-- forward runs without grad recording; backward returns one gradient (or nil)
-- per Tensor argument of forward; ctx also carries arbitrary Lua fields.
-- Threads: the Lua state is only ever entered by its own thread. The autograd
-- engine may run a node's backward on another thread (its device threads for
-- CUDA inputs), so t:backward() and torch.autograd.grad run the engine on a
-- helper thread while this thread waits, and every Lua backward is handed back
-- here to run (a backward that a Lua backward starts runs on the engine thread
-- that waits for it, as a reentrant backward). A backward started elsewhere (a
-- C++ thread) that reaches a Lua Function fails with an error naming the rule
-- instead of entering Lua.
function torch.autograd.Function(def)
  assert(type(def) == 'table' and type(def.forward) == 'function' and type(def.backward) == 'function',
         'torch.autograd.Function{forward=fn, backward=fn} expects both functions')
  local fn = {forward = def.forward, backward = def.backward}
  function fn:apply(...)
    return autograd._apply(self.forward, self.backward, ...)
  end
  return setmetatable(fn, {__call = function(self, ...) return self:apply(...) end})
end

-- Mixed precision: torch.autocast{device_type = 'cuda', dtype = torch.bfloat16,
-- enabled = true}(fn, ...) runs fn(...) under ATen autocast and returns its
-- results (the previous autocast state comes back even when fn raises).
local amp = require 'kinema._amp'
function torch.autocast(opts)
  opts = opts or {}
  local device_type = opts.device_type or 'cuda'
  local dtype = opts.dtype or torch.bfloat16
  local enabled = opts.enabled ~= false
  return function(fn, ...) return amp.autocast(device_type, dtype, enabled, fn, ...) end
end
torch.is_autocast_enabled = amp.is_autocast_enabled
-- Per-device generator state ('cpu', 'cuda:0'); torch.get_rng_state() is the CPU one.
torch.get_device_rng_state = amp.get_rng_state
torch.set_device_rng_state = amp.set_rng_state
torch.synchronize = amp.cuda_synchronize
-- Bytes the CUDA caching allocator holds for tensors, as PyTorch's torch.cuda
-- functions of the same names (device index optional; raise without a device).
torch.cuda.memory_allocated = amp.cuda_memory_allocated
torch.cuda.max_memory_allocated = amp.cuda_max_memory_allocated
torch.cuda.reset_peak_memory_stats = amp.cuda_reset_peak_memory_stats

if package.preload['kinema._io'] then
  local io_ = require 'kinema._io'
  for name, f in pairs(io_) do torch[name] = f end
end

-- t:numpy-free conveniences kept in Lua.
function torch.Tensor:nelement() return self:numel() end
function torch.Tensor:float() return self:to(torch.float32) end
function torch.Tensor:double() return self:to(torch.float64) end
function torch.Tensor:long() return self:to(torch.int64) end
function torch.Tensor:int() return self:to(torch.int32) end
function torch.Tensor:bool() return self:to(torch.bool) end
function torch.Tensor:half() return self:to(torch.float16) end
function torch.Tensor:bfloat16() return self:to(torch.bfloat16) end
function torch.Tensor:cpu() return self:to('cpu') end
function torch.Tensor:cuda(index) return self:to(index and ('cuda:' .. index) or 'cuda') end

return torch
