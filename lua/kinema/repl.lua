-- The Lua half of the REPL (core/repl.cpp): printing results, completion and :help.
local torch = require 'torch'

local repl = {}

-- Help texts for Lua-level functions: the registry kinema modules document
-- themselves in when they load (kinema.help; the library never loads the REPL).
repl.docs = require('kinema.help').docs

local function short(v, depth, seen)
  depth, seen = depth or 0, seen or {}
  if torch.is_tensor(v) then
    return depth == 0 and tostring(v) or string.format('Tensor%s %s', tostring(v.shape):sub(11), tostring(v.dtype))
  end
  if type(v) == 'string' then return depth == 0 and v or string.format('%q', v) end
  if type(v) ~= 'table' or getmetatable(v) and getmetatable(v).__tostring then return tostring(v) end
  if seen[v] then return '<cycle>' end
  seen[v] = true
  if depth >= 2 then return '{...}' end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == 'number' or type(a) == 'string') then return a < b end
    return type(a) == 'number'
  end)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > 30 then parts[#parts + 1] = '... (' .. #keys .. ' entries)'; break end
    local val = short(v[k], depth + 1, seen)
    if type(k) == 'number' and k == i then
      parts[#parts + 1] = val
    else
      parts[#parts + 1] = tostring(k) .. ' = ' .. val
    end
  end
  local one_line = '{' .. table.concat(parts, ', ') .. '}'
  if #one_line <= 100 then return one_line end
  local pad = string.rep('  ', depth + 1)
  return '{\n' .. pad .. table.concat(parts, ',\n' .. pad) .. '\n' .. string.rep('  ', depth) .. '}'
end

function repl.show(...)
  local n = select('#', ...)
  for i = 1, n do print(short((select(i, ...)))) end
end

local tensor_op_names
local function add_keys(out, t, prefix, seen)
  seen = seen or {}
  while type(t) == 'table' and not seen[t] do
    seen[t] = true
    for k in pairs(t) do
      if type(k) == 'string' and k:sub(1, #prefix) == prefix and not k:match('^__') then out[k] = true end
    end
    local mt = getmetatable(t)
    t = mt and type(mt.__index) == 'table' and mt.__index or nil
  end
end

-- Candidates completing `text` such as "torch.ma", "t:so", "kinema.nn.Li".
function repl.complete(text)
  local base, sep, prefix = text:match('^(.-)([%.:])([%w_]*)$')
  local out = {}
  if not base then
    add_keys(out, _G, text)
    base, sep, prefix = '', '', text
  else
    local value = _G
    for part in base:gmatch('[^%.:]+') do
      if type(value) ~= 'table' and not torch.is_tensor(value) then value = nil; break end
      local ok, v = pcall(function() return value[part] end)
      value = ok and v or nil
    end
    if torch.is_tensor(value) then
      add_keys(out, torch.Tensor, prefix)
      if sep == ':' or sep == '.' then
        tensor_op_names = tensor_op_names or torch.op_names('aten')
        for _, name in ipairs(tensor_op_names) do
          if name:sub(1, #prefix) == prefix then out[name] = true end
        end
      end
    elseif value == torch then
      add_keys(out, torch, prefix)
      tensor_op_names = tensor_op_names or torch.op_names('aten')
      for _, name in ipairs(tensor_op_names) do
        if name:sub(1, #prefix) == prefix then out[name] = true end
      end
    elseif type(value) == 'table' then
      add_keys(out, value, prefix)
    end
  end
  local list = {}
  for k in pairs(out) do list[#list + 1] = base .. sep .. k end
  table.sort(list)
  return list
end

local function read_lines(path)
  local f = io.open(path)
  if not f then return nil end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

-- The comment that documents a Lua name under kinema: for a module
-- (kinema.train) its header comment; for a member (kinema.train.Trainer,
-- kinema.recipe.main) the comment block above its definition, or else the
-- module header when that mentions the member. nil when there is none.
function repl.source_doc(name)
  local path_name = name:match('^kinema%.') and name or ('kinema.' .. name)
  local parts = {}
  for p in path_name:gmatch('[^%.:]+') do parts[#parts + 1] = p end
  for cut = #parts, 2, -1 do
    local module = table.concat(parts, '.', 1, cut)
    local file = package.searchpath(module, package.path)
    if file then
      local lines = read_lines(file) or {}
      local header = {}
      for _, l in ipairs(lines) do
        local c = l:match('^%-%-%s?(.*)$')
        if not c then break end
        header[#header + 1] = c
      end
      if cut == #parts then return #header > 0 and (module .. '\n' .. table.concat(header, '\n')) or nil end
      local member = parts[#parts]
      for i, l in ipairs(lines) do
        local defines = l:match('^function [%w_%.:]*[%.:]' .. member .. '%(') or l:match('^local function ' .. member .. '%(')
                        or l:match('^[%w_]+%.' .. member .. '%s*=')
        if defines then
          local above = {}
          local j = i - 1
          while j >= 1 and lines[j]:match('^%-%-') do table.insert(above, 1, (lines[j]:gsub('^%-%-%s?', ''))); j = j - 1 end
          if #above > 0 then return l .. '\n' .. table.concat(above, '\n') end
          break
        end
      end
      local text = table.concat(header, '\n')
      if text:find(member, 1, true) then return module .. ' (' .. member .. ')\n' .. text end
      return nil
    end
  end
  return nil
end

-- :help NAME — a registered doc text, a block's doc, the comment documenting
-- a Lua name in its source, or an operator's schemas.
function repl.help(name)
  name = name:gsub('^%s+', ''):gsub('%s+$', '')
  if name == '' then
    return table.concat({
      'kinema REPL. Expressions print their value; errors do not end the session.',
      '  :help torch.matmul     operator signatures (any ATen or kinema op)',
      '  :help kinema.nn.Linear documentation of a kinema function or block',
      '  Tab completes names, fields and tensor methods; history in ~/.kinema_history.',
    }, '\n')
  end
  local short_name = name:gsub('^kinema%.', '')
  local function doc() return repl.docs[name] or repl.docs[short_name] end
  if doc() then return doc() end
  -- Submodules load on first use and register their docs then: walk the
  -- path from the kinema table (loading what it names) and look again.
  local node = require 'kinema'
  for key in short_name:gmatch('[^%.]+') do
    if type(node) ~= 'table' then break end
    local ok, value = pcall(function() return node[key] end)
    if not ok or value == nil then break end
    node = value
  end
  if doc() then return doc() end
  -- a model block by its path under kinema.models (documented as nn.NAME)
  local block = short_name:match('^models%.([%w_]+)$') or short_name:match('^nn%.([%w_]+)$')
  if block then
    local text = require('kinema._models').doc(block)
    if text then return block .. ': ' .. text end
  end
  local from_source = repl.source_doc(name)
  if from_source then return from_source end
  local op = name:match('^torch%.ops%.(%w+)%.([%w_]+)$')
  if op then
    local ns, opname = name:match('^torch%.ops%.(%w+)%.([%w_]+)$')
    return torch.op_signatures(ns .. '::' .. opname) or ('no operator ' .. ns .. '::' .. opname)
  end
  local kop = name:match('^kinema%.ops%.([%w_]+)$')
  if kop then return torch.op_signatures('kinema::' .. kop) or ('no operator kinema::' .. kop) end
  local aten = name:match('^torch%.([%w_]+)$') or name:match('^Tensor[:%.]([%w_]+)$') or name
  local sig = torch.op_signatures('aten::' .. aten)
  if sig then return 'aten::' .. aten .. ' overloads (0-based dims, keyword args by name in a trailing table):\n' .. sig end
  return 'no help for ' .. name
end

return repl
