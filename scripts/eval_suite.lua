-- Runs a list of evaluations defined in Lua, prints a Markdown table and
-- writes the results as JSON.
--   kinema run scripts/eval_suite.lua [--suite scripts/suites/synth_recipes.lua] [--out results.json]
--                                      [--continue] [recipe options such as --data.root DIR]
-- A suite file returns an array of {name = string, fn = function(ctx) -> {metric = number}};
-- ctx.args holds the options this script does not know (passed on to the evals).
local kinema = require 'kinema'
local recipe = kinema.recipe
local report = kinema.eval.modules.report

local suite_path, out_path, keep_going, rest = 'scripts/suites/synth_recipes.lua', 'eval_results.json', false, {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == '--suite' then suite_path = arg[i + 1]; i = i + 1
  elseif a == '--out' then out_path = arg[i + 1]; i = i + 1
  elseif a == '--continue' then keep_going = true
  else rest[#rest + 1] = a end
  i = i + 1
end

local chunk, err = loadfile(suite_path)
if not chunk then error('eval_suite: cannot load suite ' .. tostring(suite_path) .. ': ' .. tostring(err), 0) end
local evals = chunk()
local results = report.run_suite(evals, {args = rest}, {continue_on_error = keep_going})

local by_name, order = {}, {}
for _, r in ipairs(results) do
  by_name[r.name] = r.metrics
  order[#order + 1] = r.name
  if r.error then io.stderr:write(string.format('eval %s failed: %s\n', r.name, r.error)) end
end
print(recipe.results_table(by_name, order))
print()
print(report.markdown_table(results))
report.write_json(out_path, {suite = suite_path, results = results})
print('\nwrote ' .. out_path)
