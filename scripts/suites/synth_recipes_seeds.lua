-- The five pre-training recipes (tiny presets) with three seeds each, evaluated
-- zero-shot on a synthetic benchmark with a larger test split, every metric with
-- a 95% interval and each recipe tested against the VTC-only baseline on the
-- same test items (scripts/eval_suite.lua). Train and evaluate (scripts/ablation.sh
-- does both; STEPS and DATA as there):
--   kinema synth --out data/synth-study --num-test 250 --negatives-per-kind 4
--   for s in 0 1 2; do for r in baseline stoa svilm oatrans demovlp; do
--     kinema run scripts/pretrain_$r.lua --tiny --seed $s --out_dir runs/study/$r-s$s --data.root data/synth-study
--   done; done
--   kinema run scripts/eval_suite.lua --suite scripts/suites/synth_recipes_seeds.lua --data.root data/synth-study
-- ctx.args holds extra command-line arguments for the recipes; --runs DIR (first) changes runs/study.
local recipe = require 'kinema.recipe'

local evals = {baseline = 'baseline'}
for _, name in ipairs({'baseline', 'stoa', 'svilm', 'oatrans', 'demovlp'}) do
  evals[#evals + 1] = {
    name = name,
    seeds = {0, 1, 2},
    fn = function(ctx)
      local args, runs = {}, 'runs/study'
      local k = 1
      while k <= #(ctx.args or {}) do
        if ctx.args[k] == '--runs' then runs = ctx.args[k + 1]; k = k + 1 else args[#args + 1] = ctx.args[k] end
        k = k + 1
      end
      local argv = {'--tiny', '--seed', tostring(ctx.seed), '--out_dir', string.format('%s/%s-s%d', runs, name, ctx.seed)}
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      local metrics, _, items = recipe.evaluate(name, argv)
      return metrics, items
    end,
  }
end
return evals
