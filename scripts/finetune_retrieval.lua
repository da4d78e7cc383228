-- Retrieval fine-tuning of a pre-trained recipe's model (lua/kinema/recipes/finetune_retrieval.lua).
--   kinema run scripts/finetune_retrieval.lua --recipe stoa --tiny --init runs/stoa-tiny/step-00000300.safetensors
-- --recipe is one of baseline, stoa, svilm, oatrans, demovlp; every other key as in the recipes.
local ft = require 'kinema.recipes.finetune_retrieval'
local name, rest = ft.take_recipe_arg(arg)
local ok, base = pcall(require, 'kinema.recipes.' .. name)
if not ok then error("finetune_retrieval: unknown --recipe '" .. tostring(name) .. "': " .. tostring(base), 0) end
require('kinema.recipe').main(ft.spec(base), rest)
