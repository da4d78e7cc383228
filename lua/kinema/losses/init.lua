-- kinema.losses: the objectives registry.
--
-- Every objective is a Lua function fn(inputs, opts) -> loss, parts[, extras]:
-- inputs a table of tensors (and callbacks), loss a 0-d tensor, parts a table
-- of named detached 0-d tensors / numbers for logging, extras (optional)
-- whatever a caller may want to inspect (sampled indices, logits, ...).
--
--   local losses = require('kinema').losses
--   losses.register('my_loss', function(inputs, opts) ... return loss, {} end)
--   local loss, parts = losses.vtc{video_emb = v, text_emb = t, tau = tau}
--   local total, parts = losses.combine({vtc = 1, ota = 0.5}, inputs, opts)
--
-- A name not registered yet is looked up as the file kinema/losses/<name>.lua
-- (on package.path), which must call losses.register(name, fn) when loaded.
-- The built-in objectives live one per file next to this one; each file's
-- header lists the input keys it reads. Exact definitions and options:
-- docs/objectives.md.
local torch = require 'torch'
local sys = require 'kinema.sys'
local util = require 'kinema.util'
local help = require 'kinema.help'

local losses = {}
local registry = {}   -- name -> fn
local docs = {}       -- name -> one-line description
local extra_exports = {rwa_retrieval_scores = 'rwa'}  -- non-objective helpers, by file

-- Registers (or replaces) an objective. fn(inputs, opts) -> loss, parts.
function losses.register(name, fn, doc)
  assert(type(name) == 'string' and name:match('^[%a_][%w_]*$'),
         'kinema.losses.register: name must be an identifier string, got ' .. tostring(name))
  assert(type(fn) == 'function', 'kinema.losses.register: fn must be a function for ' .. name)
  registry[name] = fn
  docs[name] = doc
  if doc and not help.docs['losses.' .. name] then help.document('losses.' .. name, doc) end
  return fn
end

local function losses_dir()
  local path = package.searchpath('kinema.losses.init', package.path)
  return path and path:match('^(.*)[/\\]init%.lua$')
end

-- Registered names plus the objective files present in this directory.
function losses.names()
  local seen, out = {}, {}
  for name in pairs(registry) do seen[name] = true end
  local dir = losses_dir()
  if dir and sys.is_dir(dir) then
    for _, file in ipairs(sys.list_dir(dir)) do
      local name = file:match('^([%a][%w_]*)%.lua$')
      if name and name ~= 'init' then seen[name] = true end
    end
  end
  for name in pairs(seen) do out[#out + 1] = name end
  table.sort(out)
  return out
end

function losses.doc(name) losses.get(name); return docs[name] end

-- The objective called name; loads kinema/losses/<name>.lua on first use.
function losses.get(name)
  if type(name) ~= 'string' then error('kinema.losses.get: name must be a string', 2) end
  local fn = registry[name]
  if fn then return fn end
  local module = 'kinema.losses.' .. name
  if name:match('^[%a][%w_]*$') and package.searchpath(module, package.path) then
    require(module)
    fn = registry[name]
    if fn then return fn end
    error(string.format("kinema.losses: file %s did not register an objective named '%s'",
                        package.searchpath(module, package.path), name), 2)
  end
  error(string.format("kinema.losses: unknown objective '%s'; known: %s", name,
                      table.concat(losses.names(), ', ')), 2)
end

-- Weighted sum of objectives chosen by name: weights {name = w} (w a number or
-- 0-d tensor; 0 skips the objective). Each objective gets inputs[name] when it
-- is a table (falling back to the shared inputs for keys it lacks), otherwise
-- the shared inputs, and opts[name] (or {}). Objectives run in sorted name
-- order, so random draws (VTM) are reproducible. parts holds, per objective,
-- name = its unweighted loss and name.part = each of its parts; terms (third)
-- holds each weighted loss with its graph (kinema.diagnostics measures the
-- gradient each one sends to the model).
function losses.combine(weights, inputs, opts)
  assert(type(weights) == 'table', 'kinema.losses.combine: weights must be a table {name = weight}')
  inputs, opts = inputs or {}, opts or {}
  local names = {}
  for name, w in pairs(weights) do
    if type(w) ~= 'number' and not torch.is_tensor(w) then
      error(string.format("kinema.losses.combine: weight of '%s' must be a number or tensor", tostring(name)), 2)
    end
    names[#names + 1] = name
  end
  table.sort(names)
  for name in pairs(opts) do
    if type(name) ~= 'string' or not (registry[name] or package.searchpath('kinema.losses.' .. name, package.path)) then
      error(util.unknown_option_message('kinema.losses.combine', name, losses.names()), 2)
    end
  end
  local total, parts, terms = nil, {}, {}
  for _, name in ipairs(names) do
    local w = weights[name]
    if not (type(w) == 'number' and w == 0) then
      local fn = losses.get(name)
      local own = inputs[name]
      local args = inputs
      if type(own) == 'table' and not torch.is_tensor(own) then
        args = setmetatable({}, {__index = function(_, k)
          local v = own[k]
          if v == nil then v = inputs[k] end
          return v
        end})
      end
      local loss, sub = fn(args, opts[name] or {})
      if not torch.is_tensor(loss) then
        error(string.format("kinema.losses.combine: objective '%s' returned %s, not a tensor", name, type(loss)), 2)
      end
      parts[name] = loss:detach()
      for k, v in pairs(sub or {}) do
        parts[name .. '.' .. k] = torch.is_tensor(v) and v:detach() or v
      end
      local term = loss * w
      terms[name] = term
      total = total and (total + term) or term
    end
  end
  if total == nil then error('kinema.losses.combine: no objective with a non-zero weight', 2) end
  return total, parts, terms
end

-- :help text (kinema.help): each built-in file's header comment (its input
-- keys), registered without loading the objective.
local builtin = {'vtc', 'weighted_vtc', 'vtm', 'mlm', 'plm', 'ota', 'asp', 'grouping', 'grounding', 'oac', 'rwa'}
do
  for _, name in ipairs(builtin) do
    local path = package.searchpath('kinema.losses.' .. name, package.path)
    local f = path and io.open(path)
    if f then
      local lines = {}
      for line in f:lines() do
        local text = line:match('^%-%- ?(.*)$')
        if not text then break end
        lines[#lines + 1] = text
      end
      f:close()
      help.document('losses.' .. name, table.concat(lines, '\n'))
    end
  end
  help.document('losses', 'kinema.losses: objectives by name. losses.register(name, fn), losses.get(name), '
                .. 'losses.combine({name = weight}, inputs, opts) -> total, parts, terms; losses.names(). '
                .. 'Built in: ' .. table.concat(builtin, ', ') .. ' (:help losses.NAME for the input keys).')
end

-- losses.vtc(...) etc.: registered objectives (loaded on demand) as fields.
return setmetatable(losses, {
  __index = function(_, key)
    if type(key) ~= 'string' then return nil end
    if extra_exports[key] then return require('kinema.losses.' .. extra_exports[key])[key] end
    if registry[key] then return registry[key] end
    if key:match('^[%a][%w_]*$') and package.searchpath('kinema.losses.' .. key, package.path) then
      return losses.get(key)
    end
    return nil
  end,
})
