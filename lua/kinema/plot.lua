-- kinema.plot: pictures of a training run.
--   plot.training_log(log_path, out_path)   the losses of a log.jsonl against the step
--                                           (.svg or .png, drawn by gnuplot)
local json = require 'kinema.json'
local sys = require 'kinema.sys'
local util = require 'kinema.util'

local plot = {}

local check = util.checker('kinema.plot: ')

-- The log's train records in step order, one per step (the last one written
-- wins), skipping lines that do not parse: a log left by a crash still plots.
local function train_records(log_path)
  local f, err = io.open(log_path, 'rb')
  check(f ~= nil, "cannot read the training log '%s': %s", log_path, tostring(err))
  local by_step, steps = {}, {}
  for line in f:lines() do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == 'table' and r.kind == 'train' and type(r.step) == 'number' then
      if not by_step[r.step] then steps[#steps + 1] = r.step end
      by_step[r.step] = r
    end
  end
  f:close()
  table.sort(steps)
  local out = {}
  for i, step in ipairs(steps) do out[i] = by_step[step] end
  return out
end

-- Plots the training losses of a JSONL log (total and every objective) against
-- the step with gnuplot, to out_path (.svg or .png). Raises when gnuplot is
-- missing or fails. gnuplot is started with an argument vector and gets the
-- paths as ARG1/ARG2 (never spliced into its script or a shell command line).
function plot.training_log(log_path, out_path)
  local records = train_records(log_path)
  local names, seen = {'loss'}, {loss = true}
  for _, r in ipairs(records) do
    if r.kind == 'train' then
      for k, v in pairs(r) do
        if type(v) == 'number' and not seen[k] and k:match('^[%a_][%w_]*$') and
           not ({step = 1, epoch = 1, lr = 1, clips_per_s = 1, time = 1, samples_seen = 1, grad_norm = 1})[k] then
          seen[k] = true
          names[#names + 1] = k
        end
      end
    end
  end
  table.sort(names, function(a, b) return a == 'loss' or (b ~= 'loss' and a < b) end)
  local data_path = out_path .. '.dat'
  local f = assert(io.open(data_path, 'wb'))
  f:write('# step ' .. table.concat(names, ' ') .. '\n')
  for _, r in ipairs(records) do
    if r.kind == 'train' then
      local row = {tostring(r.step)}
      for i, k in ipairs(names) do row[i + 1] = r[k] ~= nil and string.format('%.6g', r[k]) or 'NaN' end
      f:write(table.concat(row, ' '), '\n')
    end
  end
  f:close()
  local terminal = out_path:match('%.png$') and 'pngcairo size 900,540' or 'svg size 900,540'
  local plots = {}
  for i, k in ipairs(names) do
    plots[i] = string.format("ARG2 using 1:%d with lines title '%s'", i + 1, k)
  end
  local script = table.concat({
    'set terminal ' .. terminal .. ' noenhanced',
    'set output ARG1',
    "set xlabel 'step'", "set ylabel 'loss'", 'set key outside right', 'set grid',
    'plot ' .. table.concat(plots, ', '),
  }, '\n')
  local script_path = out_path .. '.gp'
  local s = assert(io.open(script_path, 'wb'))
  s:write(script, '\n')
  s:close()
  local ran, status = pcall(sys.spawn, {'gnuplot', '-c', script_path, out_path, data_path},
                            {stdin = '/dev/null', stdout = '/dev/null', stderr = '/dev/null'})
  sys.remove(script_path)
  sys.remove(data_path)
  check(ran and status == 0, "gnuplot failed (%s) writing '%s'",
        not ran and tostring(status) .. '; is gnuplot installed?' or 'exit status ' .. status,
        out_path)
  return out_path
end

return plot
