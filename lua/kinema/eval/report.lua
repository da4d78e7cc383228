-- Evaluation suites and their reports: run a list of evals, render a Markdown table, write JSON.
local torch = require 'torch'
local json = require 'kinema.json'
local sys = require 'kinema.sys'
local util = require 'kinema.util'

local M = {}

local check = util.checker('kinema.eval.')

-- A metric value as a plain number (scalar tensors are read out).
local function as_number(v, where)
  if torch.is_tensor(v) then
    check(v:numel() == 1, '%s: a tensor metric must hold one value, got shape %s', where, tostring(v.shape))
    v = v:item()
  end
  check(type(v) == 'number', '%s: metric values must be numbers, got %s', where, type(v))
  return v
end

-- run_suite(evals, ctx, {continue_on_error = false, stop_after_error = false}) -> results: an
-- array, in the order of evals, of {name =, metrics = {metric = number}, seconds =, cpu_seconds =}
-- (wall and CPU time; and error = message for a failed eval when continue_on_error is set;
-- otherwise the first failure is raised naming the eval). With stop_after_error too, the evals
-- after a failed one are not run (their results are absent). Evals run without autograd.
function M.run_suite(evals, ctx, opts)
  opts = opts or {}
  check(type(evals) == 'table' and #evals > 0, "run_suite: 'evals' must be a non-empty array")
  local results, seen = {}, {}
  for i, ev in ipairs(evals) do
    check(type(ev) == 'table' and type(ev.name) == 'string' and type(ev.fn) == 'function',
          'run_suite: eval %d must be {name = string, fn = function(ctx)}', i)
    check(not seen[ev.name], "run_suite: duplicate eval name '%s'", ev.name)
    seen[ev.name] = true
    local t0, c0 = sys.clock(), sys.cpu_clock()
    local ok, metrics = pcall(function() return torch.no_grad(function() return ev.fn(ctx) end) end)
    local entry = {name = ev.name, seconds = sys.clock() - t0, cpu_seconds = sys.cpu_clock() - c0}
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
    if entry.error and opts.stop_after_error then break end
  end
  return results
end

local sorted_keys = json.sorted_keys

-- markdown_table(results, {precision = 2}) -> string: one row per (eval, metric), metrics sorted
-- by name; a failed eval shows its error.
function M.markdown_table(results, opts)
  opts = opts or {}
  local fmt = '%.' .. (opts.precision or 2) .. 'f'
  local lines = {'| eval | metric | value |', '| --- | --- | ---: |'}
  local function cell(s) return (tostring(s):gsub('|', '\\|'):gsub('\n', ' ')) end
  for _, r in ipairs(results) do
    if r.error then  -- the message's first line; the rest (a traceback) is not for a table
      lines[#lines + 1] = string.format('| %s | FAILED | %s |', cell(r.name), cell(tostring(r.error):match('^[^\n]*')))
    end
    for _, k in ipairs(sorted_keys(r.metrics or {})) do
      local v = r.metrics[k]
      local shown = (v ~= v or v == math.huge or v == -math.huge) and tostring(v) or string.format(fmt, v)
      lines[#lines + 1] = string.format('| %s | %s | %s |', cell(r.name), cell(k), shown)
    end
  end
  return table.concat(lines, '\n') .. '\n'
end

-- JSON lives in kinema.json; kept here under the names the eval API documents.
M.json_encode = json.encode
M.write_json = json.write

return M
