-- Retrieval fine-tuning of a pre-trained recipe's model (lua/kinema/recipes/finetune_retrieval.lua).
--   kinema run scripts/finetune_retrieval.lua --recipe stoa --tiny --init runs/stoa-tiny/step-00000300.safetensors
-- --recipe is one of baseline, stoa, svilm, oatrans, demovlp; every other key as in the recipes.
local ft = require 'kinema.recipes.finetune_retrieval'
local name, rest = ft.take_recipe_arg(arg)
if not name or not package.searchpath('kinema.recipes.' .. name, package.path) then
  require('kinema.cli').usage_error("finetune_retrieval: unknown --recipe '%s' (one of baseline, stoa, svilm, oatrans, "
                                    .. 'demovlp)', tostring(name))
end
local base = require('kinema.recipes.' .. name)
require('kinema.recipe').main(ft.spec(base), rest)
