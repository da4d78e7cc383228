-- Evaluation suites and their reports: run a list of evals, render a Markdown table, write JSON.
-- JSON is written by hand (no JSON library in the Lua layer): sorted object keys so files diff
-- cleanly, RFC 8259 string escaping, atomic replacement (write a temporary file, then rename).
local torch = require 'torch'

local M = {}

local function check(cond, fmt, ...)
  if not cond then error('kinema.eval.' .. string.format(fmt, ...), 3) end
end

-- A metric value as a plain number (scalar tensors are read out).
local function as_number(v, where)
  if torch.is_tensor(v) then
    check(v:numel() == 1, '%s: a tensor metric must hold one value, got shape %s', where, tostring(v.shape))
    v = v:item()
  end
  check(type(v) == 'number', '%s: metric values must be numbers, got %s', where, type(v))
  return v
end

-- run_suite(evals, ctx, {continue_on_error = false}) -> results: an array, in the order of evals,
-- of {name =, metrics = {metric = number}, cpu_seconds =} (and error = message for a failed eval when
-- continue_on_error is set; otherwise the first failure is raised naming the eval). Evals run
-- without autograd.
function M.run_suite(evals, ctx, opts)
  opts = opts or {}
  check(type(evals) == 'table' and #evals > 0, "run_suite: 'evals' must be a non-empty array")
  local results, seen = {}, {}
  for i, ev in ipairs(evals) do
    check(type(ev) == 'table' and type(ev.name) == 'string' and type(ev.fn) == 'function',
          'run_suite: eval %d must be {name = string, fn = function(ctx)}', i)
    check(not seen[ev.name], "run_suite: duplicate eval name '%s'", ev.name)
    seen[ev.name] = true
    local t0 = os.clock()  -- CPU time: plain Lua has no sub-second wall clock
    local ok, metrics = pcall(function() return torch.no_grad(function() return ev.fn(ctx) end) end)
    local entry = {name = ev.name, cpu_seconds = os.clock() - t0}
    if ok then
      ok, metrics = pcall(function()
        check(type(metrics) == 'table', "run_suite: eval '%s' must return a table of metrics", ev.name)
        local clean = {}
        for k, v in pairs(metrics) do
          clean[tostring(k)] = as_number(v, "run_suite: eval '" .. ev.name .. "' metric '" .. tostring(k) .. "'")
        end
        return clean
      end)
    end
    if ok then
      entry.metrics = metrics
    elseif opts.continue_on_error then
      entry.metrics, entry.error = {}, tostring(metrics)
    else
      error(string.format("kinema.eval.run_suite: eval '%s' failed: %s", ev.name, tostring(metrics)), 2)
    end
    results[i] = entry
  end
  return results
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- markdown_table(results, {precision = 2}) -> string: one row per (eval, metric), metrics sorted
-- by name; a failed eval shows its error.
function M.markdown_table(results, opts)
  opts = opts or {}
  local fmt = '%.' .. (opts.precision or 2) .. 'f'
  local lines = {'| eval | metric | value |', '| --- | --- | ---: |'}
  local function cell(s) return (tostring(s):gsub('|', '\\|'):gsub('\n', ' ')) end
  for _, r in ipairs(results) do
    if r.error then
      lines[#lines + 1] = string.format('| %s | error | %s |', cell(r.name), cell(r.error))
    end
    for _, k in ipairs(sorted_keys(r.metrics or {})) do
      local v = r.metrics[k]
      local shown = (v ~= v or v == math.huge or v == -math.huge) and tostring(v) or string.format(fmt, v)
      lines[#lines + 1] = string.format('| %s | %s | %s |', cell(r.name), cell(k), shown)
    end
  end
  return table.concat(lines, '\n') .. '\n'
end

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
  check(depth < 64, 'json: nesting too deep at %s (a cycle?)', path)
  local tv = type(v)
  if torch.is_tensor(v) then
    v = v:numel() == 1 and v:dim() == 0 and v:item() or v:totable()
    return encode(v, out, path, depth)
  elseif tv == 'nil' then out[#out + 1] = 'null'
  elseif tv == 'boolean' then out[#out + 1] = tostring(v)
  elseif tv == 'number' then
    check(v == v and v ~= math.huge and v ~= -math.huge, 'json: %s is %s, which JSON cannot represent', path, tostring(v))
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
        check(type(k) == 'string' or type(k) == 'number', 'json: key of type %s at %s', type(k), path)
        if i > 1 then out[#out + 1] = ',' end
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ':'
        encode(v[k], out, path .. '.' .. tostring(k), depth + 1)
      end
      out[#out + 1] = '}'
    end
  else
    check(false, 'json: cannot encode a %s at %s', tv, path)
  end
end

-- json_encode(value) -> string. Arrays are tables with keys 1..n; other tables are objects with
-- sorted keys; NaN and infinities are rejected.
function M.json_encode(value)
  local out = {}
  encode(value, out, 'value', 0)
  return table.concat(out)
end

-- write_json(path, value): encodes first (so a bad value leaves the old file alone), writes
-- path .. '.tmp', then renames it over path.
function M.write_json(path, value)
  check(type(path) == 'string' and #path > 0, "write_json: 'path' must be a non-empty string")
  local text = M.json_encode(value) .. '\n'
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  check(f ~= nil, "write_json: cannot open '%s': %s", tmp, tostring(err))
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp) end
  check(ok, "write_json: cannot write '%s': %s", tmp, tostring(werr))
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then os.remove(tmp) end
  check(renamed, "write_json: cannot rename '%s' to '%s': %s", tmp, path, tostring(rerr))
end

return M
