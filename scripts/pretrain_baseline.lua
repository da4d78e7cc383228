-- VTC-only baseline: the STOA video and text encoders, global contrastive loss alone (lua/kinema/recipes/baseline.lua).
--   kinema run scripts/pretrain_baseline.lua --tiny          # CPU preset on the synthetic benchmark
--   kinema launch --nproc 2 scripts/pretrain_baseline.lua --tiny
-- Any config key can be given as --key value (dotted for nested keys).
require('kinema.recipe').main(require('kinema.recipes.baseline'), arg)
