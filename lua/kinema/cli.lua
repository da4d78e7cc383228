-- kinema.cli: what the command-line tools share.
--   cli.usage_error(fmt, ...)   a user mistake: the host prints the one line and exits 2,
--                               without a traceback (script errors keep theirs)
--   cli.as_usage(fn, ...)       runs fn; a string error it raises becomes a usage error
--   cli.wants_help(argv)        --help or -h among the arguments
--   cli.help_text{...}          the option listing of a recipe (every key, default, type, meaning)
--   cli.read_config(path)       a configuration file (.json, or .lua holding one table
--                               constructor, read as data: nothing in it runs)
--   cli.inspect(path)           the tensors and metadata of a checkpoint or weight file
--   cli.parse_flags(script, argv, opts)   a benchmark driver's --key value flags
local cli = {}

-- ---- usage errors ---------------------------------------------------------------------

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.usage_error end

function cli.usage_error(fmt, ...)
  error(setmetatable({usage_error = string.format(fmt, ...)}, UsageError), 0)
end

-- The same one-line exit with another status (e.g. 130 after SIGINT, 143 after SIGTERM).
function cli.exit_error(status, fmt, ...)
  error(setmetatable({usage_error = string.format(fmt, ...), status = status}, UsageError), 0)
end

function cli.is_usage_error(e) return getmetatable(e) == UsageError end

-- The command that resumes this script's run: its arguments without
-- --resume / --overwrite, plus --resume true.
function cli.resume_command()
  local parts, i = {'kinema run', arg and arg[0] or 'SCRIPT.lua'}, 1
  local argv = arg or {}
  while i <= #argv do
    local a = argv[i]
    if a == '--resume' or a == '--overwrite' then i = i + 1
    elseif not (a:match('^%-%-resume=') or a:match('^%-%-overwrite=')) then
      parts[#parts + 1] = a:match('^[%w_%./:,=%-]+$') and a or string.format("'%s'", a:gsub("'", "'\\''"))
    end
    i = i + 1
  end
  parts[#parts + 1] = '--resume true'
  return table.concat(parts, ' ')
end

function cli.as_usage(fn, ...)
  local results = {pcall(fn, ...)}
  if results[1] then return unpack(results, 2, table.maxn(results)) end
  local err = results[2]
  if type(err) == 'string' then cli.usage_error('%s', err) end
  error(err, 0)
end

function cli.wants_help(argv)
  for _, a in ipairs(argv or {}) do
    if a == '--help' or a == '-h' then return true end
  end
  return false
end

-- ---- --help -------------------------------------------------------------------------------

local function type_name(v)
  if type(v) == 'boolean' then return 'bool' end
  if type(v) == 'table' then return 'list' end
  return type(v)
end

local function show(v)
  if type(v) == 'table' then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return table.concat(parts, ',')
  end
  if v == '' then return "''" end
  return tostring(v)
end

-- Leaves of a config table as {dotted key, value} (records descend, lists are leaves).
function cli.flatten(t, prefix, out)
  out = out or {}
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, key = t[k], (prefix and (prefix .. '.') or '') .. tostring(k)
    if type(v) == 'table' and #v == 0 and next(v) ~= nil then cli.flatten(v, key, out)
    else out[#out + 1] = {key, v} end
  end
  return out
end

-- opts: usage (first line), about (lines), cfg (resolved defaults), docs
-- ({key = {group, text}}; a pattern key like 'model.*.depth' matches any
-- block), groups (order of the group names), skip ({key = true}),
-- presets ({name}), model_presets ({name}). Keys without a doc line are
-- listed under their group with '(undocumented)' so a test can find them.
function cli.help_text(opts)
  local lines = {opts.usage, ''}
  for _, l in ipairs(opts.about or {}) do lines[#lines + 1] = l end
  if opts.about then lines[#lines + 1] = '' end
  local by_group = {}
  for _, kv in ipairs(cli.flatten(opts.cfg)) do
    local key, v = kv[1], kv[2]
    if not (opts.skip or {})[key] then
      local doc = cli.doc_of(opts.docs, key)
      local group = doc and doc[1] or key:match('^([^%.]+)%.') or 'train'
      by_group[group] = by_group[group] or {}
      table.insert(by_group[group], {key, v, doc and doc[2] or '(undocumented)'})
    end
  end
  for _, group in ipairs(opts.groups) do
    local rows = by_group[group]
    if rows then
      lines[#lines + 1] = group .. ':'
      for _, r in ipairs(rows) do
        lines[#lines + 1] = string.format('  --%-28s %-6s %-14s %s', r[1], type_name(r[2]), show(r[2]), r[3])
      end
      lines[#lines + 1] = ''
      by_group[group] = nil
    end
  end
  for group, rows in pairs(by_group) do
    lines[#lines + 1] = group .. ':'
    for _, r in ipairs(rows) do
      lines[#lines + 1] = string.format('  --%-28s %-6s %-14s %s', r[1], type_name(r[2]), show(r[2]), r[3])
    end
  end
  return table.concat(lines, '\n')
end

-- The doc entry of a dotted key: exact, else the block-option pattern
-- 'model.*.LEAF', else 'model.LEAF'.
function cli.doc_of(docs, key)
  if docs[key] then return docs[key] end
  local leaf = key:match('^model%.[^%.]+%.([^%.]+)$')
  if leaf and docs['model.*.' .. leaf] then return docs['model.*.' .. leaf] end
  return nil
end

-- ---- configuration files ------------------------------------------------------------------

-- A reader for one Lua table constructor of plain data (strings, numbers,
-- booleans, nested tables; comments allowed). Nothing is evaluated: names,
-- calls and operators are errors naming the line.
local LuaData = {}
LuaData.__index = LuaData

function LuaData:fail(msg)
  local line = 1
  for _ in self.text:sub(1, self.pos - 1):gmatch('\n') do line = line + 1 end
  error(string.format('%s:%d: %s (a config file holds one table of plain values)', self.path, line, msg), 0)
end

function LuaData:skip()
  while true do
    local s = self.pos
    self.pos = self.text:match('^[ \t\r\n]*()', self.pos)
    if self.text:sub(self.pos, self.pos + 3) == '--[[' then
      local close = self.text:find(']]', self.pos + 4, true)
      if not close then self:fail('unfinished comment') end
      self.pos = close + 2
    elseif self.text:sub(self.pos, self.pos + 1) == '--' then
      self.pos = (self.text:find('\n', self.pos, true) or #self.text) + 1
    end
    if self.pos == s then return end
  end
end

local escapes = {n = '\n', t = '\t', r = '\r', ['\\'] = '\\', ['"'] = '"', ["'"] = "'", ['\n'] = '\n', a = '\a',
                 b = '\b', f = '\f', v = '\v'}

function LuaData:string()
  local q = self.text:sub(self.pos, self.pos)
  if q == '[' then
    local level = self.text:match('^%[(=*)%[', self.pos)
    if not level then self:fail("unexpected '['") end
    local open_len = #level + 2
    local close = self.text:find(']' .. level .. ']', self.pos + open_len, true)
    if not close then self:fail('unfinished long string') end
    local s = self.text:sub(self.pos + open_len, close - 1):gsub('^\r?\n', '')
    self.pos = close + open_len
    return s
  end
  local out, i = {}, self.pos + 1
  while true do
    local c = self.text:sub(i, i)
    if c == '' or c == '\n' then self:fail('unfinished string') end
    if c == q then break end
    if c == '\\' then
      local e = self.text:sub(i + 1, i + 1)
      local digits = self.text:match('^%d%d?%d?', i + 1)
      if digits then out[#out + 1] = string.char(tonumber(digits)); i = i + 1 + #digits
      elseif escapes[e] then out[#out + 1] = escapes[e]; i = i + 2
      else self.pos = i; self:fail('unknown escape \\' .. e) end
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  self.pos = i + 1
  return table.concat(out)
end

function LuaData:value(depth)
  if depth > 32 then self:fail('tables nested too deeply') end
  self:skip()
  local c = self.text:sub(self.pos, self.pos)
  if c == '{' then return self:table(depth + 1) end
  if c == '"' or c == "'" or self.text:match('^%[=*%[', self.pos) then return self:string() end
  local num = self.text:match('^%-?0[xX]%x+', self.pos) or self.text:match('^%-?%d*%.?%d+[eE][%+%-]?%d+', self.pos)
              or self.text:match('^%-?%d+%.?%d*', self.pos) or self.text:match('^%-?%.%d+', self.pos)
  if num then
    self.pos = self.pos + #num
    return tonumber(num) or self:fail("bad number '" .. num .. "'")
  end
  local word = self.text:match('^[%a_][%w_]*', self.pos)
  if word == 'true' or word == 'false' then self.pos = self.pos + #word; return word == 'true' end
  if word then self:fail("'" .. word .. "' is not a value") end
  self:fail(c == '' and 'unexpected end of file' or ("unexpected '" .. c .. "'"))
end

function LuaData:table(depth)
  self.pos = self.pos + 1
  local t, n = {}, 0
  while true do
    self:skip()
    if self.text:sub(self.pos, self.pos) == '}' then self.pos = self.pos + 1; return t end
    local key
    local name = self.text:match('^([%a_][%w_]*)%s*=[^=]', self.pos)
    if name then
      key = name
      self.pos = self.text:find('=', self.pos, true) + 1
    elseif self.text:sub(self.pos, self.pos) == '[' and not self.text:match('^%[=*%[', self.pos) then
      self.pos = self.pos + 1
      key = self:value(depth)
      self:skip()
      if self.text:sub(self.pos, self.pos) ~= ']' then self:fail("']' expected") end
      self.pos = self.pos + 1
      self:skip()
      if self.text:sub(self.pos, self.pos) ~= '=' then self:fail("'=' expected") end
      self.pos = self.pos + 1
    end
    local v = self:value(depth)
    if key == nil then n = n + 1; key = n end
    if t[key] ~= nil then self:fail("key '" .. tostring(key) .. "' given twice") end
    t[key] = v
    self:skip()
    local sep = self.text:sub(self.pos, self.pos)
    if sep == ',' or sep == ';' then self.pos = self.pos + 1
    elseif sep ~= '}' then self:fail("',' or '}' expected") end
  end
end

-- The table of a .lua config file: `return { ... }` or `{ ... }`.
function cli.read_lua_data(text, path)
  local d = setmetatable({text = text, pos = 1, path = path or '(config)'}, LuaData)
  d:skip()
  if d.text:match('^return[^%w_]', d.pos) then d.pos = d.pos + 6 end
  d:skip()
  if d.text:sub(d.pos, d.pos) ~= '{' then d:fail("'{' expected") end
  local t = d:table(1)
  d:skip()
  if d.pos <= #d.text then d:fail('text after the table') end
  return t
end

-- The `--key value` flags of a script (the benchmark drivers): each value
-- replaces opts[key] (converted to a number where the default is one); an
-- unknown key or a missing value raises naming the script. Returns opts.
function cli.parse_flags(script, argv, opts)
  local i = 1
  while i <= #argv do
    local key = argv[i]:match('^%-%-([%w_]+)$')
    if not key or opts[key] == nil then error(script .. ': unknown argument ' .. tostring(argv[i]), 0) end
    local value = argv[i + 1]
    if value == nil then error(script .. ': --' .. key .. ' needs a value', 0) end
    opts[key] = type(opts[key]) == 'number' and assert(tonumber(value), '--' .. key .. ' expects a number') or value
    i = i + 2
  end
  return opts
end

function cli.read_config(path)
  local f, err = io.open(path, 'rb')
  if not f then error(string.format("--config: cannot open '%s': %s", path, tostring(err)), 0) end
  local text = f:read('*a')
  f:close()
  local t
  if path:match('%.json$') then t = require('kinema.json').decode(text, path)
  elseif path:match('%.lua$') then t = cli.read_lua_data(text, path)
  else error(string.format("--config %s: give a .lua or .json file", path), 0) end
  if type(t) ~= 'table' then error(string.format('--config %s: the file must hold a table of config keys', path), 0) end
  return t
end

-- ---- kinema inspect -----------------------------------------------------------------------

local function shape_text(t)
  local s = t:size()
  local parts = {}
  for i, n in ipairs(s) do parts[i] = tostring(n) end
  return '[' .. table.concat(parts, ', ') .. ']'
end

local function dtype_text(t) return (tostring(t.dtype):gsub('^torch%.', '')) end

local function count_text(n)
  if n >= 1e9 then return string.format('%.2fG', n / 1e9) end
  if n >= 1e6 then return string.format('%.2fM', n / 1e6) end
  if n >= 1e3 then return string.format('%.1fK', n / 1e3) end
  return tostring(n)
end

-- Reads a .safetensors, .pt/.pth/.bin state dict or .npz: tensors, metadata.
function cli.read_tensors(path)
  local torch = require 'torch'
  local f = io.open(path, 'rb')
  if not f then cli.usage_error("inspect: cannot open '%s'", path) end
  f:close()
  if path:match('%.safetensors$') then return torch.load_safetensors(path) end
  if path:match('%.npz$') then return torch.load_npz(path), {} end
  if path:match('%.pt$') or path:match('%.pth$') or path:match('%.bin$') then return torch.load(path), {} end
  cli.usage_error('inspect: %s: expected .safetensors, .pt, .pth, .bin or .npz', path)
end

-- The listing of a checkpoint or weight file (a string): tensors grouped by
-- their first name component (count, elements) and listed with shape, dtype
-- and numel; the metadata (a kinema checkpoint: recipe, step, config,
-- scheduler); the optimizer state summary.
function cli.inspect(path)
  local tensors, meta = cli.read_tensors(path)
  meta = meta or {}
  local json = require 'kinema.json'
  local names = {}
  for k in pairs(tensors) do names[#names + 1] = k end
  table.sort(names)
  local lines = {path}
  local total, groups, order = 0, {}, {}
  for _, k in ipairs(names) do
    local g = k:match('^([^%.]+)%.') or k
    if not groups[g] then groups[g] = {count = 0, numel = 0}; order[#order + 1] = g end
    groups[g].count = groups[g].count + 1
    groups[g].numel = groups[g].numel + tensors[k]:numel()
    total = total + tensors[k]:numel()
  end
  lines[#lines + 1] = string.format('%d tensors, %s elements', #names, count_text(total))
  for _, g in ipairs(order) do
    lines[#lines + 1] = string.format('  %-24s %5d tensors %12s elements', g, groups[g].count, count_text(groups[g].numel))
  end
  if meta['kinema.checkpoint'] == '1' then
    lines[#lines + 1] = ''
    lines[#lines + 1] = 'kinema training checkpoint'
    local pos = meta.position and json.decode(meta.position, path) or {}
    lines[#lines + 1] = string.format('  recipe: %s', meta.recipe or '(not recorded)')
    lines[#lines + 1] = string.format('  step: %s  epoch: %s  samples seen: %s', tostring(pos.step), tostring(pos.epoch),
                                      tostring(pos.samples_seen))
    if meta.scheduler then lines[#lines + 1] = '  scheduler: ' .. meta.scheduler end
    local optim_keys, optim_numel, optim_count = {}, 0, 0
    for k, v in pairs(meta) do if k:match('^optim%.') then optim_keys[#optim_keys + 1] = k .. ' = ' .. v end end
    for _, k in ipairs(names) do
      if k:match('^optim%.') then optim_count = optim_count + 1; optim_numel = optim_numel + tensors[k]:numel() end
    end
    table.sort(optim_keys)
    lines[#lines + 1] = string.format('  optimizer state: %d tensors, %s elements', optim_count, count_text(optim_numel))
    for _, k in ipairs(optim_keys) do lines[#lines + 1] = '    ' .. k end
    if meta.config then
      lines[#lines + 1] = '  config:'
      for _, kv in ipairs(cli.flatten(json.decode(meta.config, path))) do
        lines[#lines + 1] = string.format('    %s = %s', kv[1], show(kv[2]))
      end
    end
  end
  local other = {}
  for k, v in pairs(meta) do
    if not (meta['kinema.checkpoint'] == '1' and (k:match('^optim%.') or k == 'config' or k == 'position'
                                                   or k == 'scheduler' or k == 'recipe' or k == 'kinema.checkpoint')) then
      other[#other + 1] = string.format('  %s = %s', k, #v > 200 and (v:sub(1, 200) .. '...') or v)
    end
  end
  if #other > 0 then
    table.sort(other)
    lines[#lines + 1] = ''
    lines[#lines + 1] = 'metadata:'
    for _, l in ipairs(other) do lines[#lines + 1] = l end
  end
  lines[#lines + 1] = ''
  lines[#lines + 1] = 'tensors:'
  for _, k in ipairs(names) do
    local t = tensors[k]
    lines[#lines + 1] = string.format('  %-56s %-20s %-9s %d', k, shape_text(t), dtype_text(t), t:numel())
  end
  return table.concat(lines, '\n')
end

-- `kinema inspect FILE...`
function cli.inspect_main(argv)
  if #argv == 0 or cli.wants_help(argv) then
    print('usage: kinema inspect FILE...   tensors (name, shape, dtype, numel, grouped by prefix), metadata\n'
          .. '                               and optimizer state of .safetensors, .pt/.pth/.bin or .npz files')
    if #argv == 0 then cli.usage_error('inspect: give a file') end
    return
  end
  for i, path in ipairs(argv) do
    if i > 1 then print('') end
    print(cli.inspect(path))
  end
end

return cli
