-- STOA-VLP pre-training: VTC, VTM, MLM, PLM, OTA and ASP (lua/kinema/recipes/stoa.lua).
--   kinema run scripts/pretrain_stoa.lua --tiny          # CPU preset on the synthetic benchmark
--   kinema run scripts/pretrain_stoa.lua --data.root /data/webvid --train.batch_size 64
--   kinema launch --nproc 2 scripts/pretrain_stoa.lua --tiny
-- Any config key can be given as --key value (dotted for nested keys, e.g. --weights.ota 0).
require('kinema.recipe').main(require('kinema.recipes.stoa'), arg)
