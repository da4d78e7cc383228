-- DemoVLP pre-training: region transformer, VTC + region-word alignment (lua/kinema/recipes/demovlp.lua).
--   kinema run scripts/pretrain_demovlp.lua --tiny          # CPU preset on the synthetic benchmark
--   kinema launch --nproc 2 scripts/pretrain_demovlp.lua --tiny
-- Any config key can be given as --key value (dotted for nested keys).
require('kinema.recipe').main(require('kinema.recipes.demovlp'), arg)
