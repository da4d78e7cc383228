-- The five pre-training recipes (tiny presets) evaluated zero-shot on the
-- synthetic benchmark's test split: retrieval both directions and the
-- hard-negative caption pairs (one noun / one verb changed). Train them first:
--   for r in baseline stoa svilm oatrans demovlp; do kinema run scripts/pretrain_$r.lua --tiny; done
-- An eval is {name = string, fn = function(ctx) -> {metric = number}}; ctx.args
-- holds extra command-line arguments for the recipes (e.g. --data.root).
local recipe = require 'kinema.recipe'

local evals = {}
for _, name in ipairs({'baseline', 'stoa', 'svilm', 'oatrans', 'demovlp'}) do
  evals[#evals + 1] = {
    name = name,
    fn = function(ctx)
      local argv = {'--tiny'}
      for _, a in ipairs(ctx.args or {}) do argv[#argv + 1] = a end
      return (recipe.evaluate(name, argv))
    end,
  }
end
-- Captioning from STOA's prefix-LM head (greedy), BLEU / ROUGE-L / CIDEr-D.
evals[#evals + 1] = {
  name = 'stoa_captioning',
  fn = function(ctx)
    local argv = {'--tiny'}
    for _, a in ipairs(ctx.args or {}) do argv[#argv + 1] = a end
    return (recipe.evaluate('stoa', argv, nil, {captioning = {beam_size = 1}}))
  end,
}
return evals
