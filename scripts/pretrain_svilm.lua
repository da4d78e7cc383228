-- S-ViLM pre-training: cut-and-paste, grouping blocks, weighted VTC + grounding + grouping (lua/kinema/recipes/svilm.lua).
--   kinema run scripts/pretrain_svilm.lua --tiny          # CPU preset on the synthetic benchmark
--   kinema launch --nproc 2 scripts/pretrain_svilm.lua --tiny
-- Any config key can be given as --key value (dotted for nested keys).
require('kinema.recipe').main(require('kinema.recipes.svilm'), arg)
