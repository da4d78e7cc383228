-- Retrieval fine-tuning: any pre-training recipe's model, initialised from its
-- checkpoint (--init), trained with VTC on a retrieval dataset's pairs and
-- evaluated on its test split (R@1/5/10, MedR, MeanR both directions, and the
-- hard-negative pairs when the split has them).
--
--   kinema run scripts/finetune_retrieval.lua --recipe stoa --tiny \
--       --init runs/stoa-tiny/step-00000300.safetensors
--   kinema run scripts/finetune_retrieval.lua --recipe svilm \
--       --init ckpt.safetensors --data.root /data/msrvtt --data.format msrvtt ...
--
-- Paper-style defaults (MSR-VTT fine-tuning): batch 64, lr 1e-5, 5 epochs of
-- 9k pairs (~700 steps), warmup 10%.
local torch = require 'torch'
local recipe = require 'kinema.recipe'

local M = {}

-- The fine-tuning spec over a pre-training spec `base`.
function M.spec(base)
  local spec = {name = base.name .. '_ft', embed = base.embed, build = base.build, docs = base.docs,
                model_defaults = base.model_defaults, init_layouts = base.init_layouts,
                about = 'retrieval fine-tuning (VTC) of the ' .. base.name .. " recipe's model (--recipe NAME)"}
  spec.defaults = recipe.merge(base.defaults, {
    out_dir = 'runs/' .. base.name .. '-ft',
    train = {batch_size = 64, max_steps = 700, lr = 1e-5, warmup = 70},
  })
  spec.defaults.weights = {vtc = 1}
  spec.presets = {}
  for name, preset in pairs(base.presets or {}) do
    spec.presets[name] = recipe.merge(preset, {out_dir = 'runs/' .. base.name .. '-' .. name .. '-ft',
                                               train = {max_steps = 100, lr = 2e-4, warmup = 10}})
    spec.presets[name].weights = nil  -- the base preset's objective weights: fine-tuning is VTC alone
  end
  -- the evaluation inputs of the base recipe carry what its embeddings need
  spec.loader_options = function(cfg, tok) return base.loader_options(cfg, tok, 'test') end
  local function global(e) return type(e) == 'table' and not torch.is_tensor(e) and e.global or e end
  spec.inputs = function(model, batch, cfg)
    local v = global(base.embed.video(model, batch, cfg))
    local t = global(base.embed.text(model, batch.ids, batch.mask, cfg))
    return {video_emb = v, text_emb = t, tau = model.temperature and model.temperature() or nil}, {}
  end
  return spec
end

-- The --recipe NAME argument (default stoa), removed from argv.
function M.take_recipe_arg(argv)
  local rest, name = {}, 'stoa'
  local i = 1
  while i <= #argv do
    local v = argv[i]:match('^%-%-recipe=(.+)$')
    if v then name = v
    elseif argv[i] == '--recipe' then name = argv[i + 1]; i = i + 1
    else rest[#rest + 1] = argv[i] end
    i = i + 1
  end
  return name, rest
end

return M
