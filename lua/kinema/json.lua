-- kinema.json: JSON for logs, reports and configs, written in Lua (the host
-- exposes no JSON library).
--   json.encode(value) -> string   sorted object keys (files diff cleanly),
--                                  RFC 8259 escaping; NaN/Inf rejected
--   json.decode(text[, where]) -> value   null -> json.null; errors name
--                                  `where` and the byte offset
--   json.write(path, value)        atomic: temporary file, then rename
--   json.read_lines(path) -> list  a JSON Lines file; a bad line raises
--                                  naming path:line
local torch = require 'torch'
local util = require 'kinema.util'

local json = {}

-- The decoded JSON null (distinct from a missing key).
json.null = setmetatable({}, {__tostring = function() return 'null' end})

local check = util.checker('json: ')

-- The keys of t in the order encode writes them.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
json.sorted_keys = sorted_keys

local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
                 ['\r'] = '\\r', ['\t'] = '\\t'}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format('\\u%04x', c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
  end
  return n == #t
end

local function encode(v, out, path, depth)
  check(depth < 64, 'nesting too deep at %s (a cycle?)', path)
  local tv = type(v)
  if torch.is_tensor(v) then
    v = v:numel() == 1 and v:dim() == 0 and v:item() or v:totable()
    return encode(v, out, path, depth)
  elseif v == nil or v == json.null then out[#out + 1] = 'null'
  elseif tv == 'boolean' then out[#out + 1] = tostring(v)
  elseif tv == 'number' then
    check(v == v and v ~= math.huge and v ~= -math.huge, '%s is %s, which JSON cannot represent', path, tostring(v))
    if v % 1 == 0 and math.abs(v) < 2 ^ 53 then out[#out + 1] = string.format('%d', v)
    else out[#out + 1] = string.format('%.17g', v) end
  elseif tv == 'string' then out[#out + 1] = encode_string(v)
  elseif tv == 'table' then
    -- an empty table is written as an object: results are keyed tables far more often than lists
    if next(v) ~= nil and is_array(v) then
      out[#out + 1] = '['
      for i = 1, #v do
        if i > 1 then out[#out + 1] = ',' end
        encode(v[i], out, path .. '[' .. i .. ']', depth + 1)
      end
      out[#out + 1] = ']'
    else
      out[#out + 1] = '{'
      for i, k in ipairs(sorted_keys(v)) do
        check(type(k) == 'string' or type(k) == 'number', 'key of type %s at %s', type(k), path)
        if i > 1 then out[#out + 1] = ',' end
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ':'
        encode(v[k], out, path .. '.' .. tostring(k), depth + 1)
      end
      out[#out + 1] = '}'
    end
  else
    check(false, 'cannot encode a %s at %s', tv, path)
  end
end

function json.encode(value)
  local out = {}
  encode(value, out, 'value', 0)
  return table.concat(out)
end

-- ---- decoding ------------------------------------------------------------------

local UNESCAPES = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'}

local function utf8_char(code)
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then return string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64) end
  if code < 0x10000 then
    return string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
  end
  return string.char(0xF0 + math.floor(code / 262144), 0x80 + math.floor(code / 4096) % 64,
                     0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
end

local Decoder = {}
Decoder.__index = Decoder

function Decoder:fail(msg)
  error(string.format('json: %s at byte %d of %s', msg, self.pos, self.where), 0)
end

function Decoder:skip()
  self.pos = self.text:find('[^ \t\r\n]', self.pos) or (#self.text + 1)
end

function Decoder:string()
  local text, pos, parts = self.text, self.pos + 1, {}
  while true do
    local stop = text:find('["\\%c]', pos)
    if not stop then self.pos = #text + 1; self:fail('unterminated string') end
    parts[#parts + 1] = text:sub(pos, stop - 1)
    local c = text:sub(stop, stop)
    if c == '"' then self.pos = stop + 1; return table.concat(parts) end
    if c ~= '\\' then self.pos = stop; self:fail('control character in string') end
    local e = text:sub(stop + 1, stop + 1)
    if e == 'u' then
      local hex = text:sub(stop + 2, stop + 5)
      if not hex:match('^%x%x%x%x$') then self.pos = stop; self:fail('bad \\u escape') end
      local code = tonumber(hex, 16)
      pos = stop + 6
      if code >= 0xD800 and code < 0xDC00 and text:sub(pos, pos + 1) == '\\u' then
        local low = tonumber(text:sub(pos + 2, pos + 5), 16)
        if low and low >= 0xDC00 and low < 0xE000 then
          code = 0x10000 + (code - 0xD800) * 1024 + (low - 0xDC00)
          pos = pos + 6
        end
      end
      parts[#parts + 1] = utf8_char(code)
    else
      local u = UNESCAPES[e]
      if not u then self.pos = stop; self:fail('bad escape \\' .. e) end
      parts[#parts + 1] = u
      pos = stop + 2
    end
  end
end

function Decoder:value(depth)
  if depth > 64 then self:fail('nesting too deep') end
  self:skip()
  local text, pos = self.text, self.pos
  local c = text:sub(pos, pos)
  if c == '{' then
    local obj = {}
    self.pos = pos + 1
    self:skip()
    if text:sub(self.pos, self.pos) == '}' then self.pos = self.pos + 1; return obj end
    while true do
      self:skip()
      if text:sub(self.pos, self.pos) ~= '"' then self:fail('expected a string key') end
      local key = self:string()
      self:skip()
      if text:sub(self.pos, self.pos) ~= ':' then self:fail("expected ':'") end
      self.pos = self.pos + 1
      obj[key] = self:value(depth + 1)
      self:skip()
      local d = text:sub(self.pos, self.pos)
      self.pos = self.pos + 1
      if d == '}' then return obj end
      if d ~= ',' then self.pos = self.pos - 1; self:fail("expected ',' or '}'") end
    end
  elseif c == '[' then
    local arr = {}
    self.pos = pos + 1
    self:skip()
    if text:sub(self.pos, self.pos) == ']' then self.pos = self.pos + 1; return arr end
    while true do
      arr[#arr + 1] = self:value(depth + 1)
      self:skip()
      local d = text:sub(self.pos, self.pos)
      self.pos = self.pos + 1
      if d == ']' then return arr end
      if d ~= ',' then self.pos = self.pos - 1; self:fail("expected ',' or ']'") end
    end
  elseif c == '"' then
    return self:string()
  elseif text:sub(pos, pos + 3) == 'true' then self.pos = pos + 4; return true
  elseif text:sub(pos, pos + 4) == 'false' then self.pos = pos + 5; return false
  elseif text:sub(pos, pos + 3) == 'null' then self.pos = pos + 4; return json.null
  else
    local num = text:match('^-?%d+%.?%d*[eE]?[-+]?%d*', pos)
    local v = num and tonumber(num)
    if not v then self:fail(pos > #text and 'unexpected end of input' or 'unexpected character ' .. string.format('%q', c)) end
    self.pos = pos + #num
    return v
  end
end

function json.decode(text, where)
  assert(type(text) == 'string', 'json.decode: text must be a string')
  local d = setmetatable({text = text, pos = 1, where = where or 'input'}, Decoder)
  local v = d:value(0)
  d:skip()
  if d.pos <= #text then d:fail('trailing characters') end
  return v
end

-- ---- files ---------------------------------------------------------------------

-- Encodes first (so a bad value leaves the old file alone), writes a
-- temporary file next to path, then renames it over path.
function json.write(path, value)
  check(type(path) == 'string' and #path > 0, "write: 'path' must be a non-empty string")
  local text = json.encode(value) .. '\n'
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  check(f ~= nil, "write: cannot open '%s': %s", tmp, tostring(err))
  local ok, werr = f:write(text)
  local closed, cerr = f:close()  -- a full disk shows up here, when the buffer is flushed
  ok, werr = ok and closed, werr or cerr
  if not ok then os.remove(tmp) end
  check(ok, "write: cannot write '%s': %s", tmp, tostring(werr))
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then os.remove(tmp) end
  check(renamed, "write: cannot rename '%s' to '%s': %s", tmp, path, tostring(rerr))
end

function json.read_lines(path)
  local f, err = io.open(path, 'rb')
  check(f ~= nil, "read_lines: cannot open '%s': %s", tostring(path), tostring(err))
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match('%S') then
      local ok, v = pcall(json.decode, line, path .. ':' .. n)
      if not ok then f:close(); error(v, 2) end
      out[#out + 1] = v
    end
  end
  f:close()
  return out
end

return json
