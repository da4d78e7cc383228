-- kinema.nn: modules in the spirit of Torch7's nn, on autograd.
--
-- A module is a Lua object with forward(...). Child modules and parameters
-- assigned as fields are registered in order (self.fc = nn.Linear(4, 8);
-- self.scale = nn.Parameter(torch.ones(1))). C++ blocks (models/) are wrapped
-- by nn.Native and mix freely with Lua modules. Calling a module on graph
-- nodes builds a graph instead of computing (nn.Input / nn.Graph).
local torch = require 'torch'
local models = require 'kinema._models'
local help = require 'kinema.help'

local nn = {}

-- ---- parameters ---------------------------------------------------------------------
local parameter_set = setmetatable({}, {__mode = 'k'})

-- Marks a tensor as a trainable parameter (requires_grad = true) for registration.
function nn.Parameter(t, requires_grad)
  assert(torch.is_tensor(t), 'nn.Parameter expects a Tensor')
  t = t:detach()
  t.requires_grad = requires_grad ~= false
  parameter_set[t] = true
  return t
end

local function is_module(v) return type(v) == 'table' and rawget(v, '_kinema_module') == true end
nn.is_module = is_module

-- ---- graph nodes (callable syntax) -----------------------------------------------------
local Node = {}
Node.__index = Node
local function is_node(v) return getmetatable(v) == Node end

-- nn.Input(): a graph input placeholder; m(node, ...) returns a new node.
function nn.Input(name) return setmetatable({module = nil, inputs = {}, name = name}, Node) end

-- ---- Module ---------------------------------------------------------------------------
local Module = {}
nn.Module = Module

local function module_newindex(self, key, value)
  if is_module(value) then
    local names = rawget(self, '_child_names')
    names[#names + 1] = key
  elseif torch.is_tensor(value) and parameter_set[value] then
    local names = rawget(self, '_param_names')
    names[#names + 1] = key
  end
  rawset(self, key, value)
end

local function module_call(self, ...)
  for i = 1, select('#', ...) do
    if is_node((select(i, ...))) then
      return setmetatable({module = self, inputs = {...}}, Node)
    end
  end
  return self:forward(...)
end

local function module_tostring(self) return self:describe('') end

-- Creates a subclass: local Block = nn.Module:extend('Block');
-- function Block:init(cfg) ... end; function Block:forward(x) ... end; Block(cfg)
function Module:extend(name)
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == 'string' and k:match('^__') then cls[k] = v end
  end
  cls.__index = cls
  cls.__newindex = module_newindex
  cls.__call = module_call
  cls.__tostring = module_tostring
  cls.__name = name
  cls._class_parent = self
  return setmetatable(cls, {
    __index = self,
    __call = function(c, ...)
      local obj = setmetatable({_kinema_module = true, _child_names = {}, _param_names = {},
                                _buffer_names = {}, training = true}, c)
      obj:init(...)
      return obj
    end,
  })
end

function Module:init() end
function Module:forward() error(self.__name .. ':forward is not defined', 2) end

function Module:register_parameter(name, t)
  t = nn.Parameter(t)
  self[name] = t
  return t
end

-- Buffers are state that is saved but not trained (running statistics, masks).
function Module:register_buffer(name, t)
  local names = rawget(self, '_buffer_names')
  names[#names + 1] = name
  rawset(self, name, t)
  return t
end

function Module:add(name, module)
  assert(is_module(module), 'add(name, module): not a module')
  self[name] = module
  return module
end

-- Direct children in registration order: iterate `for name, m in self:named_children()`.
function Module:named_children()
  local list, seen = {}, {}
  for _, name in ipairs(rawget(self, '_child_names')) do
    local m = rawget(self, name)
    if is_module(m) and not seen[name] then
      seen[name] = true
      list[#list + 1] = {name, m}
    end
  end
  local i = 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

function Module:children()
  local out = {}
  for _, m in self:named_children() do out[#out + 1] = m end
  return out
end

-- The tensors registered under the names listed in self[list_key], as
-- {name, tensor} pairs (a name registered twice appears once).
local function own_tensors(self, list_key)
  local out, seen = {}, {}
  for _, name in ipairs(rawget(self, list_key)) do
    local t = rawget(self, name)
    if torch.is_tensor(t) and not seen[name] then
      seen[name] = true
      out[#out + 1] = {name, t}
    end
  end
  return out
end

-- This module's own parameters / buffers (not the children's).
function Module:_own_parameters() return own_tensors(self, '_param_names') end
function Module:_own_buffers() return own_tensors(self, '_buffer_names') end

local function collect(self, own, prefix, out, seen)
  for _, pair in ipairs(self[own](self)) do
    if not seen[pair[2]] then
      seen[pair[2]] = true
      out[#out + 1] = {prefix .. pair[1], pair[2]}
    end
  end
  for name, child in self:named_children() do collect(child, own, prefix .. name .. '.', out, seen) end
  return out
end

-- All parameters with dotted names ("encoder.layers.0.weight"), shared ones once.
function Module:named_parameters() return collect(self, '_own_parameters', '', {}, {}) end
function Module:named_buffers() return collect(self, '_own_buffers', '', {}, {}) end

function Module:parameters()
  local out = {}
  for i, pair in ipairs(self:named_parameters()) do out[i] = pair[2] end
  return out
end

function Module:modules()
  local out = {self}
  for _, child in self:named_children() do
    for _, m in ipairs(child:modules()) do out[#out + 1] = m end
  end
  return out
end

function Module:train(mode)
  if mode == nil then mode = true end
  rawset(self, 'training', mode)
  for _, child in self:named_children() do child:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

-- Moves parameters and buffers in place (identity and optimizer references kept).
function Module:to(...)
  local args = {...}
  torch.no_grad(function()
    for _, pair in ipairs(self:_own_parameters()) do pair[2].data = pair[2]:to(table.unpack(args)) end
    for _, pair in ipairs(self:_own_buffers()) do rawset(self, pair[1], pair[2]:to(table.unpack(args))) end
  end)
  for _, child in self:named_children() do child:to(...) end
  return self
end

-- Sets requires_grad = false on every parameter whose dotted name matches one
-- of the Lua patterns (e.g. '^text%.' or 'layers%.[0-5]%.'); returns the names.
function Module:freeze(patterns, requires_grad)
  if type(patterns) == 'string' then patterns = {patterns} end
  local changed = {}
  for _, pair in ipairs(self:named_parameters()) do
    for _, pat in ipairs(patterns) do
      if pair[1]:find(pat) then
        pair[2].requires_grad = requires_grad or false
        changed[#changed + 1] = pair[1]
        break
      end
    end
  end
  return changed
end

function Module:unfreeze(patterns) return self:freeze(patterns, true) end

-- name -> tensor (parameters and buffers, detached) plus the ordered names.
function Module:state_dict()
  local sd, order = {}, {}
  for _, list in ipairs({self:named_parameters(), self:named_buffers()}) do
    for _, pair in ipairs(list) do
      sd[pair[1]] = pair[2]:detach()
      order[#order + 1] = pair[1]
    end
  end
  return sd, order
end

-- Copies values in (no autograd). Returns {missing=, unexpected=, mismatched=};
-- with strict (the default) any of them is an error listing all three.
function Module:load_state_dict(sd, opts)
  local strict = not (opts and opts.strict == false)
  local report = {missing = {}, unexpected = {}, mismatched = {}, loaded = {}}
  local own = {}
  for _, list in ipairs({self:named_parameters(), self:named_buffers()}) do
    for _, pair in ipairs(list) do own[pair[1]] = pair[2] end
  end
  for name, target in pairs(own) do
    local src = sd[name]
    if src == nil then
      report.missing[#report.missing + 1] = name
    elseif tostring(src.shape) ~= tostring(target.shape) then
      report.mismatched[#report.mismatched + 1] =
        string.format('%s: checkpoint %s, model %s', name, tostring(src.shape), tostring(target.shape))
    else
      report.loaded[#report.loaded + 1] = name
    end
  end
  for name in pairs(sd) do
    if own[name] == nil then report.unexpected[#report.unexpected + 1] = name end
  end
  for _, l in pairs(report) do table.sort(l) end
  if strict and (#report.missing + #report.unexpected + #report.mismatched > 0) then
    local lines = {'load_state_dict: state dict does not match the model'}
    if #report.missing > 0 then lines[#lines + 1] = '  missing keys: ' .. table.concat(report.missing, ', ') end
    if #report.unexpected > 0 then lines[#lines + 1] = '  unexpected keys: ' .. table.concat(report.unexpected, ', ') end
    if #report.mismatched > 0 then lines[#lines + 1] = '  mismatched shapes: ' .. table.concat(report.mismatched, '; ') end
    error(table.concat(lines, '\n'), 2)
  end
  torch.no_grad(function()
    for _, name in ipairs(report.loaded) do own[name]:copy_(sd[name]) end
  end)
  return report
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:describe(indent)
  local lines = {(self.__name or 'Module') .. self:extra_repr()}
  for name, child in self:named_children() do
    lines[#lines + 1] = indent .. '  (' .. name .. '): ' .. child:describe(indent .. '  ')
  end
  return table.concat(lines, '\n')
end

function Module:extra_repr() return '' end

Module.__index = Module
Module.__newindex = module_newindex
Module.__call = module_call
Module.__tostring = module_tostring
Module.__name = 'Module'

-- ---- native (C++) blocks ---------------------------------------------------------------
local Native = Module:extend('Native')
nn.Native = Native

-- nn.Native(name, config): the registered C++ block `name` (see models/).
function Native:init(name, config)
  rawset(self, '_block', models.new(name, config or {}))
  rawset(self, '__name', name)
  rawset(self, '_config', config or {})
  self:_refresh()
end

function Native:_refresh()
  local names, tensors = self._block:named_parameters()
  local params = {}
  for i, n in ipairs(names) do params[i] = {n, tensors[i]} end
  rawset(self, '_native_params', params)
  local bnames, btensors = self._block:named_buffers()
  local buffers = {}
  for i, n in ipairs(bnames) do buffers[i] = {n, btensors[i]} end
  rawset(self, '_native_buffers', buffers)
end

function Native:_own_parameters() return self._native_params end
function Native:_own_buffers() return self._native_buffers end
function Native:forward(...) return self._block:forward(...) end

function Native:train(mode)
  if mode == nil then mode = true end
  rawset(self, 'training', mode)
  self._block:train(mode)
  return self
end

function Native:to(...)
  self._block:to(...)
  self:_refresh()
  return self
end

function Native:extra_repr()
  local parts = {}
  for k, v in pairs(self._config) do
    if type(v) ~= 'table' then parts[#parts + 1] = k .. '=' .. tostring(v) end
  end
  table.sort(parts)
  return '(' .. table.concat(parts, ', ') .. ')'
end

-- Constructors for the registered blocks, with Torch7-style positional sugar.
local positional = {
  Linear = {'in_features', 'out_features'},
  Embedding = {'num_embeddings', 'embedding_dim'},
  LayerNorm = {'normalized_shape'},
  Dropout = {'p'},
  MultiheadAttention = {'embed_dim', 'num_heads'},
  TransformerEncoderLayer = {'d_model', 'nhead'},
  Conv2d = {'in_channels', 'out_channels', 'kernel_size'},
  Conv3d = {'in_channels', 'out_channels', 'kernel_size'},
}

local function native_constructor(name)
  return function(first, ...)
    local config = first
    if type(first) ~= 'table' or torch.is_tensor(first) then
      config = {}
      local keys = positional[name] or {}
      local args = {first, ...}
      for i, key in ipairs(keys) do config[key] = args[i] end
      if type(args[#keys + 1]) == 'table' then
        for k, v in pairs(args[#keys + 1]) do config[k] = v end
      end
    end
    return Native(name, config)
  end
end

for _, name in ipairs(models.names()) do
  nn[name] = native_constructor(name)
  help.document('nn.' .. name, models.doc(name))
end

-- ---- Lua modules -------------------------------------------------------------------------
local function simple(name, fn)
  local cls = Module:extend(name)
  function cls:forward(x) return fn(x) end
  nn[name] = cls
end
simple('ReLU', function(x) return x:relu() end)
simple('Tanh', function(x) return x:tanh() end)
simple('Sigmoid', function(x) return x:sigmoid() end)
simple('Identity', function(x) return x end)
simple('QuickGELU', function(x) return x * (x * 1.702):sigmoid() end)

-- nn.Sequential(m1, m2, ...): children named "0", "1", ... as in PyTorch.
local Sequential = Module:extend('Sequential')
nn.Sequential = Sequential
function Sequential:init(...)
  for i, m in ipairs({...}) do self:add(tostring(i - 1), m) end
end
function Sequential:append(m)
  self:add(tostring(#rawget(self, '_child_names')), m)
  return self
end
function Sequential:forward(x)
  for _, m in self:named_children() do x = m(x) end
  return x
end
function Sequential:__len() return #rawget(self, '_child_names') end
function Sequential:get(i) return rawget(self, tostring(i)) end

-- nn.Graph(inputs, outputs): a module from nodes built with the callable syntax:
--   local x = nn.Input(); local h = nn.ReLU()(nn.Linear(4, 8)(x))
--   local net = nn.Graph({x}, {nn.Linear(8, 2)(h)}); local y = net(torch.randn(3, 4))
local Graph = Module:extend('Graph')
nn.Graph = Graph
function Graph:init(inputs, outputs)
  if is_node(inputs) then inputs = {inputs} end
  if is_node(outputs) then outputs = {outputs} end
  rawset(self, '_inputs', inputs)
  rawset(self, '_outputs', outputs)
  local order, visited = {}, {}
  local function visit(node)
    if visited[node] then return end
    visited[node] = true
    for _, inp in ipairs(node.inputs) do
      if is_node(inp) then visit(inp) end
    end
    order[#order + 1] = node
  end
  for _, out in ipairs(outputs) do visit(out) end
  rawset(self, '_order', order)
  local count = 0
  for _, node in ipairs(order) do
    if node.module and not visited[node.module] then
      visited[node.module] = true
      self:add(tostring(count), node.module)
      count = count + 1
    end
  end
end
function Graph:forward(...)
  local values = {}
  local args = {...}
  for i, inp in ipairs(self._inputs) do values[inp] = args[i] end
  for _, node in ipairs(self._order) do
    if node.module then
      local ins = {}
      for i, inp in ipairs(node.inputs) do
        if is_node(inp) then ins[i] = values[inp] else ins[i] = inp end
      end
      values[node] = node.module:forward(table.unpack(ins, 1, #node.inputs))
    elseif values[node] == nil then
      error('nn.Graph: input ' .. (node.name or '?') .. ' was not given', 2)
    end
  end
  local outs = {}
  for i, out in ipairs(self._outputs) do outs[i] = values[out] end
  return table.unpack(outs)
end

help.document('nn.Module', [[
nn.Module:extend(name) -> class; define init(self, ...) and forward(self, ...).
Fields assigned with modules or nn.Parameter(t) register in order.
Methods: parameters(), named_parameters() (dotted names), children(), named_children(),
modules(), train(mode)/eval(), to(device or dtype), zero_grad(), freeze(patterns)/unfreeze,
state_dict(), load_state_dict(sd, {strict=true}) -> {missing, unexpected, mismatched}.
m(x) calls forward; m(node) builds a graph (see nn.Graph).]])
help.document('nn.Graph', 'nn.Graph(inputs, outputs): nodes from nn.Input() and module(node) calls.')
help.document('nn.Sequential', 'nn.Sequential(m1, m2, ...): children "0", "1", ...; forward chains them.')

return nn
