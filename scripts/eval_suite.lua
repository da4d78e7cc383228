-- Runs a list of evaluations defined in Lua, prints a Markdown table and
-- writes the results as JSON.
--   kinema run scripts/eval_suite.lua [--suite scripts/suites/synth_recipes.lua] [--out results.json]
--                                      [--continue] [--baseline NAME] [--resamples 2000]
--                                      [recipe options such as --data.root DIR]
-- A suite file returns an array of {name = string, fn = function(ctx) -> metrics [, items],
-- seeds = {0, 1, 2} (optional)}; ctx.args holds the options this script does not know (passed on
-- to the evals), ctx.seed the seed of this call. An entry with seeds runs once per seed; its
-- table row shows every metric's mean over the seeds with a 95% interval, bootstrapped over the
-- seeds and the test items when fn returns the per-item outcomes (items = {metric = [N] in [0, 1]},
-- as kinema.recipe.evaluate does) and otherwise the range over the seeds, and a paired test
-- against the baseline entry (--baseline, else the suite's `baseline` field) on the same items:
-- the difference, its interval and the paired-bootstrap p-value (McNemar's exact p in the JSON
-- for the metrics whose items are 0/1, the R@K hits).
local kinema = require 'kinema'
local recipe = kinema.recipe
local report = kinema.eval.modules.report
local stats = kinema.eval.stats

local cli = require 'kinema.cli'

local usage = [[
usage: kinema run scripts/eval_suite.lua [--suite FILE.lua] [--out FILE.json] [--continue] [OPTIONS...]
Runs the evaluations of a suite file and prints the retrieval table and every metric.
  --suite      string  scripts/suites/synth_recipes.lua  the suite: a Lua file returning {name =, fn = function(ctx)}
  --out        string  eval_results.json                 results as JSON
  --continue   bool    false                             keep going after a failed evaluation (its row is marked)
  --baseline   string  (the suite's)                     entry the seeded entries are compared against
  --resamples  number  2000                              bootstrap resamples of the intervals and tests
  OPTIONS      recipe options passed on to every evaluation (ctx.args), e.g. --data.root DIR]]

local suite_path, out_path, keep_going, baseline, resamples, rest =
  'scripts/suites/synth_recipes.lua', 'eval_results.json', false, nil, 2000, {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == '--help' or a == '-h' then print(usage); return end
  if (a == '--suite' or a == '--out' or a == '--baseline') and arg[i + 1] == nil then
    cli.usage_error('eval_suite: %s expects a value', a)
  end
  if a == '--suite' then suite_path = arg[i + 1]; i = i + 1
  elseif a == '--out' then out_path = arg[i + 1]; i = i + 1
  elseif a == '--continue' then keep_going = true
  elseif a == '--baseline' then baseline = arg[i + 1]; i = i + 1
  elseif a == '--resamples' then
    resamples = tonumber(arg[i + 1])
    if not resamples or resamples < 10 then cli.usage_error('eval_suite: --resamples expects a number >= 10') end
    i = i + 1
  else rest[#rest + 1] = a end
  i = i + 1
end

local chunk, err = loadfile(suite_path)
if not chunk then cli.usage_error('eval_suite: cannot load suite %s: %s', tostring(suite_path), tostring(err)) end
local evals = chunk()
baseline = baseline or evals.baseline

-- One run per (entry, seed); the per-item outcomes are kept aside (run_suite keeps numbers).
local runs, items_of, expanded = {}, {}, {}
for _, e in ipairs(evals) do
  for _, seed in ipairs(e.seeds or {false}) do
    local label = seed and string.format('%s@%s', e.name, tostring(seed)) or e.name
    expanded[#expanded + 1] = {name = label, fn = function(ctx)
      local c = setmetatable({seed = seed or nil}, {__index = ctx})
      local metrics, items = e.fn(c)
      items_of[label] = items
      return metrics
    end}
    runs[#runs + 1] = {entry = e.name, seeded = seed ~= false, label = label}
  end
end
-- A failure stops the suite unless --continue; either way the tables show what ran.
local results = report.run_suite(expanded, {args = rest}, {continue_on_error = true, stop_after_error = not keep_going})

local by_name, order, seeded_runs, failed = {}, {}, {}, {}
for k, r in ipairs(results) do
  if r.error then
    failed[#failed + 1] = r.name
    io.stderr:write(string.format('eval %s failed: %s\n', r.name, r.error))
  end
  local run = runs[k]
  if run.seeded then
    if not r.error then
      seeded_runs[run.entry] = seeded_runs[run.entry] or {}
      table.insert(seeded_runs[run.entry], {metrics = r.metrics, items = items_of[run.label]})
    end
  else
    local row = r.error and (r.name .. ' (FAILED)') or r.name
    by_name[row] = r.metrics
    order[#order + 1] = row
  end
end

-- Entries with seeds: intervals and the paired tests against the baseline.
local opts = {resamples = resamples}
local summary, seeded_order = {}, {}
for _, e in ipairs(evals) do
  if e.seeds and seeded_runs[e.name] then
    seeded_order[#seeded_order + 1] = e.name
    summary[e.name] = {runs = #seeded_runs[e.name], metrics = stats.aggregate(seeded_runs[e.name], opts)}
  end
end
-- each recipe's cosine and match scorings against the baseline's cosine scoring
local versus = {t2v_R1 = 't2v_R1', v2t_R1 = 'v2t_R1'}
for _, kind in ipairs({'noun', 'verb', 'all'}) do
  versus['hard_' .. kind] = 'hard_' .. kind
  versus['hard_match_' .. kind] = 'hard_' .. kind
end
if baseline and seeded_runs[baseline] then
  for _, name in ipairs(seeded_order) do
    if name ~= baseline then
      summary[name].versus = stats.compare(seeded_runs[name], seeded_runs[baseline], versus, opts)
      summary[name].baseline = baseline
    end
  end
end

local function cell(m) return m and kinema.eval.format_interval(m) or '-' end
local function test_cell(t)
  if not t then return '-' end
  return string.format('%+.1f (p %s)', t.diff, t.p < 0.001 and '< 0.001' or string.format('%.3f', t.p))
end

if #seeded_order > 0 then
  local columns = {{'t2v_R1', 'T2V R@1'}, {'v2t_R1', 'V2T R@1'}, {'hard_noun', 'hard noun'}, {'hard_verb', 'hard verb'},
                   {'hard_all', 'hard all'}, {'hard_match_noun', 'match noun'}, {'hard_match_verb', 'match verb'},
                   {'hard_match_all', 'match all'}}
  print(string.format('Mean over seeds [95%% interval: bootstrap over seeds and test items]; hard = embedding cosine, '
                      .. 'match = the recipe\'s own matching function'))
  print()
  local head, rule = {'| recipe | seeds'}, {'|---|---:'}
  for _, c in ipairs(columns) do head[#head + 1] = c[2]; rule[#rule + 1] = '---:' end
  print(table.concat(head, ' | ') .. ' |')
  print(table.concat(rule, '|') .. '|')
  for _, name in ipairs(seeded_order) do
    local row = {'| ' .. name, tostring(summary[name].runs)}
    for _, c in ipairs(columns) do row[#row + 1] = cell(summary[name].metrics[c[1]]) end
    print(table.concat(row, ' | ') .. ' |')
  end
  if baseline and seeded_runs[baseline] then
    print()
    print(string.format('Difference from %s (points; match columns against %s\'s cosine) and paired-bootstrap '
                        .. 'p-value, same test items', baseline, baseline))
    print()
    local h2, r2 = {'| recipe'}, {'|---'}
    for _, c in ipairs(columns) do h2[#h2 + 1] = c[2]; r2[#r2 + 1] = '---:' end
    print(table.concat(h2, ' | ') .. ' |')
    print(table.concat(r2, '|') .. '|')
    for _, name in ipairs(seeded_order) do
      if summary[name].versus then
        local row = {'| ' .. name}
        for _, c in ipairs(columns) do row[#row + 1] = test_cell(summary[name].versus[c[1]]) end
        print(table.concat(row, ' | ') .. ' |')
      end
    end
  end
  print()
end
if #order > 0 then
  print(kinema.eval.results_table(by_name, order))
  print()
end
print(report.markdown_table(results))
report.write_json(out_path, {suite = suite_path, results = results, seeded = summary, baseline = baseline})
print('\nwrote ' .. out_path)
if #failed > 0 and not keep_going then
  cli.exit_error(1, 'eval_suite: %s failed; %d of %d evaluations ran (--continue runs the rest)',
                 table.concat(failed, ', '), #results, #expanded)
end
