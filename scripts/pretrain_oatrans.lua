-- OA-Trans pre-training: object-masked anchor frame and tags, OAC (lua/kinema/recipes/oatrans.lua).
--   kinema run scripts/pretrain_oatrans.lua --tiny          # CPU preset on the synthetic benchmark
--   kinema launch --nproc 2 scripts/pretrain_oatrans.lua --tiny
-- Any config key can be given as --key value (dotted for nested keys).
require('kinema.recipe').main(require('kinema.recipes.oatrans'), arg)
