-- kinema.dist: data-parallel training across processes on c10d (Gloo on CPU,
-- NCCL on CUDA), started by `kinema launch --nproc N script.lua`, torchrun, or
-- any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
--
--   local dist = require 'kinema.dist'
--   dist.init()                                   -- false when WORLD_SIZE is unset or 1
--   dist.broadcast_parameters(model)              -- every rank starts from rank 0's weights
--   local v_all = dist.all_gather(v)              -- differentiable: global columns
--   loss:backward(); dist.average_gradients(model); opt:step()
--
-- Without an initialized group every function acts as the single process it
-- is (rank 0 of 1): all_gather returns its argument, reductions are identities.
-- Collectives must be called by every rank in the same order (including the
-- backward of all_gather, which all-reduces).
local torch = require 'torch'
local help = require 'kinema.help'
local util = require 'kinema.util'
local native = require 'kinema._dist'

local dist = {}

local function active() return native.is_initialized() and native.world_size() > 1 end

local function is_module(v) return type(v) == 'table' and rawget(v, '_kinema_module') == true end

-- Initializes the process group. opts (all optional): backend ('gloo' | 'nccl'),
-- rank, world_size, local_rank, master_addr, master_port, timeout_s; absent
-- ones come from the environment. Returns true when a group is up, false when
-- this is a single process (WORLD_SIZE unset or 1 and opts.world_size not given).
function dist.init(opts)
  -- checked here too: a single process returns before the native init reads them
  util.check_options('kinema.dist.init', opts, {'backend', 'rank', 'world_size', 'local_rank', 'master_addr',
                                                'master_port', 'timeout_s'})
  if native.is_initialized() then return true end
  local forced = type(opts) == 'table' and opts.world_size ~= nil
  local env_world = tonumber(os.getenv('WORLD_SIZE') or '')
  if not forced and (env_world == nil or env_world <= 1) then return false end
  native.init(opts)
  return true
end

dist.is_initialized = native.is_initialized
function dist.rank() return native.rank() end              -- 0 when not initialized
function dist.world_size() return native.world_size() end  -- 1 when not initialized
function dist.local_rank() return native.local_rank() end  -- 0 when not initialized
function dist.is_main() return native.rank() == 0 end
dist.backend = native.backend              -- 'gloo' | 'nccl' | nil
dist.nccl_available = native.nccl_available
dist.executable = native.executable

-- Releases the group (a later init starts afresh). Closing the host does it too.
function dist.destroy() native.destroy() end

function dist.barrier()
  if active() then native.barrier() end
end

-- The device collectives of this group run on: 'cuda:<local_rank>' for NCCL, else 'cpu'.
function dist.device()
  if native.backend() == 'nccl' then return 'cuda:' .. native.local_rank() end
  return 'cpu'
end

-- In place, no gradient: t becomes the reduction over ranks ('sum' | 'avg' | 'max' | 'min').
function dist.all_reduce(t, op)
  if active() then native.all_reduce(t, op or 'sum') end
  return t
end

-- In place, no gradient: t becomes rank src's t.
function dist.broadcast(t, src)
  if active() then native.broadcast(t, src or 0) end
  return t
end

-- The tensors of a module (parameters, then buffers) or of a list.
local function tensor_list(x, fn, with_buffers)
  if is_module(x) then
    local out = x:parameters()
    if with_buffers then
      for _, pair in ipairs(x:named_buffers()) do out[#out + 1] = pair[2] end
    end
    return out
  end
  if torch.is_tensor(x) then return {x} end
  if type(x) ~= 'table' then
    error(string.format("kinema.dist.%s: argument 'params' must be a module or a list of tensors, got %s", fn,
                        type(x)), 3)
  end
  for i, t in ipairs(x) do
    if not torch.is_tensor(t) then
      error(string.format("kinema.dist.%s: argument 'params' element %d is a %s, not a Tensor", fn, i, type(t)), 3)
    end
  end
  return x
end

-- Copies rank src's parameters (and a module's buffers) to every rank, so
-- that all replicas start equal.
function dist.broadcast_parameters(params, src)
  local list = tensor_list(params, 'broadcast_parameters', true)
  if not active() then return end
  src = src or 0
  torch.no_grad(function()
    for _, t in ipairs(list) do native.broadcast(t, src) end
  end)
end

local BYTES = {
  [tostring(torch.float64)] = 8, [tostring(torch.int64)] = 8, [tostring(torch.float32)] = 4,
  [tostring(torch.int32)] = 4, [tostring(torch.float16)] = 2, [tostring(torch.bfloat16)] = 2,
}
local function nbytes(t) return t:numel() * (BYTES[tostring(t.dtype)] or 4) end

-- Replaces every gradient by its mean over ranks, one all_reduce per bucket of
-- about opts.bucket_mb (25) MB of same dtype and device gradients (few large
-- messages instead of one per parameter). A parameter whose gradient is
-- missing on some ranks but not others takes zeros there, so every rank
-- reduces the same buckets; parameters without a gradient anywhere are skipped.
function dist.average_gradients(params, opts)
  opts = opts or {}
  local list = tensor_list(params, 'average_gradients', false)
  local bucket_mb = opts.bucket_mb or 25
  if type(bucket_mb) ~= 'number' or bucket_mb <= 0 then
    error("kinema.dist.average_gradients: option 'bucket_mb' must be a positive number, got " .. tostring(bucket_mb), 2)
  end
  if not active() or #list == 0 then return end
  local world = native.world_size()
  local flags = {}
  for i, p in ipairs(list) do flags[i] = p.grad ~= nil and 1 or 0 end
  local has = torch.tensor(flags, {dtype = torch.float32}):to(list[1].device)
  native.all_reduce(has, 'max')
  has = has:to('cpu'):totable()

  local limit = bucket_mb * 1024 * 1024
  local open = {}  -- dtype/device key -> {grads = {}, bytes = n}
  local order = {}
  local function flush(key)
    local b = open[key]
    if b == nil or #b.grads == 0 then return end
    open[key] = nil
    if #b.grads == 1 and b.grads[1]:is_contiguous() then  -- one large gradient: reduce it in place
      native.all_reduce(b.grads[1], 'sum')
      b.grads[1]:div_(world)
      return
    end
    local flat_parts = {}
    for i, g in ipairs(b.grads) do flat_parts[i] = g:reshape(-1) end
    local flat = torch.cat(flat_parts, 0)
    native.all_reduce(flat, 'sum')
    flat:div_(world)
    local offset = 0
    for _, g in ipairs(b.grads) do
      local n = g:numel()
      g:copy_(flat:narrow(0, offset, n):view_as(g))
      offset = offset + n
    end
  end
  torch.no_grad(function()
    for i, p in ipairs(list) do
      if has[i] > 0 then
        if p.grad == nil then p.grad = torch.zeros_like(p) end
        local g = p.grad
        local key = tostring(g.dtype) .. '@' .. tostring(g.device)
        local b = open[key]
        if b == nil then
          b = {grads = {}, bytes = 0}
          open[key] = b
          order[#order + 1] = key
        end
        b.grads[#b.grads + 1] = g
        b.bytes = b.bytes + nbytes(g)
        if b.bytes >= limit then flush(key) end
      end
    end
    -- the remaining partial buckets, in first-seen order (the same on every rank)
    for _, key in ipairs(order) do flush(key) end
  end)
end

-- all_gather with a gradient. Rank r's loss L_r reads its own rows x_r and,
-- through the gathered columns, the rows of every rank. The gradient of the
-- global loss with respect to x_s therefore sums dL_r/d(block s of the
-- gathered tensor) over all ranks r: backward all-reduces (SUM) the incoming
-- gradient and keeps this rank's block. Each rank's parameter gradients are
-- then d(sum_r L_r)/dtheta through its own rows; average_gradients sums them
-- over ranks and divides by the world size, giving d(mean_r L_r)/dtheta --
-- the 1-process gradient of the mean loss over the global batch when every
-- L_r is a mean over equally many local rows (tests/lua/test_dist.lua checks
-- this to 1e-5 on VTC). Losses that splice the local rows back into the
-- gathered columns (kinema.losses' default) send their own block's gradient
-- directly; the sum is the same.
local Gather = torch.autograd.Function{
  forward = function(ctx, x)
    ctx.rows = x:size(0)
    return native.all_gather(x)
  end,
  backward = function(ctx, g)
    if g == nil then return nil end
    local total = g:contiguous():clone()
    native.all_reduce(total, 'sum')
    return total:narrow(0, native.rank() * ctx.rows, ctx.rows)
  end,
}

-- [world*B, ...]: the ranks' tensors (equal shapes) concatenated on dim 0 in
-- rank order; differentiable (see above). Without a group: t itself.
function dist.all_gather(t)
  if not torch.is_tensor(t) then
    error("kinema.dist.all_gather: argument 'tensor' must be a Tensor, got " .. type(t), 2)
  end
  if t:dim() == 0 then error("kinema.dist.all_gather: argument 'tensor' must have a batch dimension (0-d given)", 2) end
  if not active() then return t end
  return Gather(t)
end

-- No gradient: the ranks' tensors concatenated on dim 0 when their row counts
-- differ (evaluation shards with drop_last = false); the other dims and the
-- dtype must agree. Rows are padded to the largest count for the collective
-- and trimmed after. Without a group: t itself.
function dist.all_gather_uneven(t)
  if not torch.is_tensor(t) or t:dim() == 0 then
    error("kinema.dist.all_gather_uneven: argument 'tensor' must be a Tensor with a batch dimension", 2)
  end
  if not active() then return t end
  local counts = native.all_gather(torch.tensor({t:size(0)}, {dtype = torch.int64}):to(t.device)):to('cpu'):totable()
  local most = math.max(unpack(counts))
  local x = t:detach()
  if x:size(0) < most then
    local shape = x:size()
    shape[1] = most - x:size(0)
    x = torch.cat({x, torch.zeros(shape, {dtype = x.dtype, device = x.device})}, 0)
  end
  local all = native.all_gather(x)
  local pieces = {}
  for r, n in ipairs(counts) do
    if n > 0 then pieces[#pieces + 1] = all:narrow(0, (r - 1) * most, n) end
  end
  if #pieces == 0 then return all:narrow(0, 0, 0) end
  return torch.cat(pieces, 0)
end

-- A table of numbers reduced over ranks ('sum' | 'avg' | 'max' | 'min'), e.g.
-- eval counts: dist.all_reduce_numbers({hits = 3, total = 10}) -> {hits = 7, total = 20}.
-- Every rank must pass the same keys. Returns a new table.
function dist.all_reduce_numbers(values, op)
  if type(values) ~= 'table' then
    error("kinema.dist.all_reduce_numbers: argument 'values' must be a table, got " .. type(values), 2)
  end
  local keys = {}
  for k, v in pairs(values) do
    if type(v) ~= 'number' then
      error(string.format("kinema.dist.all_reduce_numbers: value '%s' is a %s, not a number", tostring(k), type(v)), 2)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    return a < b
  end)
  local out = {}
  for _, k in ipairs(keys) do out[k] = values[k] end
  if not active() or #keys == 0 then return out end
  local flat = {}
  for i, k in ipairs(keys) do flat[i] = values[k] end
  local t = torch.tensor(flat, {dtype = torch.float64}):to(dist.device())
  native.all_reduce(t, op or 'sum')
  local reduced = t:to('cpu'):totable()
  for i, k in ipairs(keys) do out[k] = reduced[i] end
  return out
end

-- Row offset of this rank's local batch in gathered columns (the contrastive
-- column gatherer's offset); assumes every rank has local_batch rows.
function dist.rank_offset(local_batch) return native.rank() * local_batch end

-- The column gatherer the contrastive objectives take as inputs.gather
-- (kinema.losses: gather(key, x) -> every rank's rows of x, this rank's
-- offset), or nil for a single process. Differentiable (dist.all_gather);
-- bool masks travel as uint8 (Gloo has no bool all_gather). One gatherer per
-- step: a tensor asked for twice (objectives sharing columns) is gathered
-- once. Every rank must run the same objectives on the same keys, so the
-- collectives come in the same order.
function dist.column_gatherer()
  if not active() or native.world_size() == 1 then return nil end
  local done = {}
  return function(_, x)
    local all = done[x]
    if all == nil then
      if x.dtype == torch.bool then all = dist.all_gather(x:to(torch.uint8)):to(torch.bool)
      else all = dist.all_gather(x) end
      done[x] = all
    end
    return all, dist.rank_offset(x:size(0))
  end
end

-- A copy of data.Loader options with rank/world_size filled from the group
-- (explicit values kept), so each rank reads its own shard.
function dist.loader_options(opts)
  local out = {}
  for k, v in pairs(opts or {}) do out[k] = v end
  if out.rank == nil then out.rank = native.rank() end
  if out.world_size == nil then out.world_size = native.world_size() end
  return out
end

help.document('dist.init', "dist.init{backend='gloo'|'nccl', rank=, world_size=, local_rank=, master_addr=, master_port=, " ..
  "timeout_s=1800} -> true, or false for a single process (WORLD_SIZE unset or 1); absent options come from " ..
  "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Start ranks with `kinema launch --nproc N script.lua`.")
help.document('dist.broadcast_parameters', 'dist.broadcast_parameters(module_or_tensors, src=0): every rank takes ' ..
  "src's parameters (and a module's buffers).")
help.document('dist.average_gradients', 'dist.average_gradients(module_or_tensors, {bucket_mb=25}): gradients ' ..
  'replaced by their mean over ranks (bucketed all_reduce); call after backward, before clipping and opt:step().')
help.document('dist.all_gather', 'dist.all_gather(t) -> [world*B, ...] in rank order, differentiable (backward: ' ..
  "all_reduce SUM of the incoming gradient, this rank's block); use with rank_offset = dist.rank_offset(B).")
help.document('dist.column_gatherer', 'dist.column_gatherer() -> gather(key, x) -> [world*B, ...], rank offset, ' ..
  "for the contrastive objectives' inputs.gather (nil for a single process); one per step.")
help.document('dist.all_gather_uneven', 'dist.all_gather_uneven(t) -> rows of every rank concatenated (counts may ' ..
  'differ), no gradient: evaluation embeddings.')
help.document('dist.all_reduce_numbers', "dist.all_reduce_numbers({k = number...}, op='sum'|'avg'|'max'|'min') -> " ..
  'reduced copy (same keys on every rank).')

return dist
