-- Runs a list of evaluations defined in Lua, prints a Markdown table and
-- writes the results as JSON.
--   kinema run scripts/eval_suite.lua [--suite scripts/suites/synth_recipes.lua] [--out results.json]
--                                      [--continue] [recipe options such as --data.root DIR]
-- A suite file returns an array of {name = string, fn = function(ctx) -> {metric = number}};
-- ctx.args holds the options this script does not know (passed on to the evals).
local kinema = require 'kinema'
local recipe = kinema.recipe
local report = kinema.eval.modules.report

local cli = require 'kinema.cli'

local usage = [[
usage: kinema run scripts/eval_suite.lua [--suite FILE.lua] [--out FILE.json] [--continue] [OPTIONS...]
Runs the evaluations of a suite file and prints the retrieval table and every metric.
  --suite     string  scripts/suites/synth_recipes.lua  the suite: a Lua file returning {name =, fn = function(ctx)}
  --out       string  eval_results.json                 results as JSON
  --continue  bool    false                             keep going after a failed evaluation (its row is marked)
  OPTIONS     recipe options passed on to every evaluation (ctx.args), e.g. --data.root DIR]]

local suite_path, out_path, keep_going, rest = 'scripts/suites/synth_recipes.lua', 'eval_results.json', false, {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == '--help' or a == '-h' then print(usage); return end
  if a == '--suite' or a == '--out' then
    if arg[i + 1] == nil then cli.usage_error('eval_suite: %s expects a file', a) end
    if a == '--suite' then suite_path = arg[i + 1] else out_path = arg[i + 1] end
    i = i + 1
  elseif a == '--continue' then keep_going = true
  else rest[#rest + 1] = a end
  i = i + 1
end

local chunk, err = loadfile(suite_path)
if not chunk then cli.usage_error('eval_suite: cannot load suite %s: %s', tostring(suite_path), tostring(err)) end
local evals = chunk()
-- A failure stops the suite unless --continue; either way the table shows what ran.
local results = report.run_suite(evals, {args = rest}, {continue_on_error = true, stop_after_error = not keep_going})

local by_name, order, failed = {}, {}, {}
for _, r in ipairs(results) do
  local row = r.error and (r.name .. ' (FAILED)') or r.name
  by_name[row] = r.metrics
  order[#order + 1] = row
  if r.error then
    failed[#failed + 1] = r.name
    io.stderr:write(string.format('eval %s failed: %s\n', r.name, r.error))
  end
end
print(recipe.results_table(by_name, order))
print()
print(report.markdown_table(results))
report.write_json(out_path, {suite = suite_path, results = results})
print('\nwrote ' .. out_path)
if #failed > 0 and not keep_going then
  cli.exit_error(1, 'eval_suite: %s failed; %d of %d evaluations ran (--continue runs the rest)',
                 table.concat(failed, ', '), #results, #evals)
end
