-- kinema.models.weights: load pretrained checkpoints into kinema blocks through
-- a name mapping written as Lua patterns (pattern -> replacement, first match
-- wins), with the shape adaptations the layouts need (same-numel reshapes such
-- as CLIP's class_embedding [D] -> cls_token [1,1,D], spatial resampling of
-- pos_embed, temporal resampling of time_embed) and a report of what was
-- loaded, missing, unused or mismatched.
--
--   local W = require 'kinema.models.weights'
--   local report = W.load(model.video, 'ViT-B-16.pt', 'clip_visual')
--   local report = W.load(stoa, 'ViT-B-16.pt', 'clip_visual', {prefix = 'trajectory.',
--                          layers = {[10] = 0, [11] = 1}})   -- top 2 visual layers
-- The rules match models/README.md and are checked against reference outputs in
-- tests/cpp/models/test_weight_layouts.cpp and tests/lua/test_models_weights.lua.
local torch = require 'torch'
local kio = require 'kinema._io'

local W = {}

local function clip_blocks(prefix)
  local p = '^' .. prefix .. 'transformer%.resblocks%.(%d+)%.'
  return {
    {p .. 'attn%.in_proj_(%a+)$', 'blocks.%1.attn.qkv.%2'},
    {p .. 'attn%.out_proj%.(%a+)$', 'blocks.%1.attn.proj.%2'},
    {p .. 'ln_(%d)%.(%a+)$', 'blocks.%1.norm%2.%3'},
    {p .. 'mlp%.c_fc%.(%a+)$', 'blocks.%1.mlp.fc1.%2'},
    {p .. 'mlp%.c_proj%.(%a+)$', 'blocks.%1.mlp.fc2.%2'},
  }
end

local concat = require('kinema.util').concat

-- The shipped mappings (checkpoint name -> kinema block parameter name).
W.rules = {
  -- timm vit_base_patch16_224 -> VideoEncoder: identical names (head.* unused).
  timm_vit = {{'^head%.', false}, {'^(.*)$', '%1'}},
  -- OpenAI CLIP ViT-B/16 visual tower -> VideoEncoder (patch_bias=false, norm_pre=true, act='quick_gelu').
  clip_visual = concat({
    {'^visual%.conv1%.weight$', 'patch_embed.proj.weight'},
    {'^visual%.class_embedding$', 'cls_token'},
    {'^visual%.positional_embedding$', 'pos_embed'},
    {'^visual%.ln_pre%.(%a+)$', 'norm_pre.%1'},
    {'^visual%.ln_post%.(%a+)$', 'norm.%1'},
    {'^visual%.proj$', 'proj'},
  }, clip_blocks('visual%.')),
  -- OpenAI CLIP text tower -> TextEncoder{style='clip'}; also the fusion encoder
  -- (layers = {[0]=0, ..., [5]=5}) as STOA initialises it.
  clip_text = concat({
    {'^token_embedding%.weight$', 'word_embed.weight'},
    {'^positional_embedding$', 'pos_embed'},
    {'^ln_final%.(%a+)$', 'norm.%1'},
    {'^text_projection$', 'proj'},
  }, clip_blocks('')),
  -- CLIP's learned temperature -> Temperature (logit_scale = log(1/tau) in both).
  clip_temperature = {{'^logit_scale$', 'logit_scale'}},
  -- CLIP's projections ([D, E], used as x @ proj) -> a Projection block's
  -- nn.Linear weight [E, D]: transposed, never reshaped (D = E in CLIP's text tower).
  clip_visual_projection = {{'^visual%.proj$', 'proj.weight', 'transpose'}},
  clip_text_projection = {{'^text_projection$', 'proj.weight', 'transpose'}},
  -- HuggingFace BERT (BertModel / BertForPreTraining) -> TextEncoder{style='bert'}.
  bert = {
    {'^bert%.embeddings%.word_embeddings%.weight$', 'word_embed.weight'},
    {'^bert%.embeddings%.position_embeddings%.weight$', 'pos_embed'},
    {'^bert%.embeddings%.token_type_embeddings%.weight$', 'type_embed.weight'},
    {'^bert%.embeddings%.LayerNorm%.(%a+)$', 'embed_norm.%1'},
    {'^bert%.encoder%.layer%.(%d+)%.attention%.self%.query%.(%a+)$', 'blocks.%1.attn.q.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.attention%.self%.key%.(%a+)$', 'blocks.%1.attn.k.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.attention%.self%.value%.(%a+)$', 'blocks.%1.attn.v.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.attention%.output%.dense%.(%a+)$', 'blocks.%1.attn.proj.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.attention%.output%.LayerNorm%.(%a+)$', 'blocks.%1.norm1.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.intermediate%.dense%.(%a+)$', 'blocks.%1.mlp.fc1.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.output%.dense%.(%a+)$', 'blocks.%1.mlp.fc2.%2'},
    {'^bert%.encoder%.layer%.(%d+)%.output%.LayerNorm%.(%a+)$', 'blocks.%1.norm2.%2'},
  },
  -- HuggingFace DistilBERT -> TextEncoder{style='bert', type_vocab_size=0}.
  distilbert = {
    {'^distilbert%.embeddings%.word_embeddings%.weight$', 'word_embed.weight'},
    {'^distilbert%.embeddings%.position_embeddings%.weight$', 'pos_embed'},
    {'^distilbert%.embeddings%.LayerNorm%.(%a+)$', 'embed_norm.%1'},
    {'^distilbert%.transformer%.layer%.(%d+)%.attention%.([qkv])_lin%.(%a+)$', 'blocks.%1.attn.%2.%3'},
    {'^distilbert%.transformer%.layer%.(%d+)%.attention%.out_lin%.(%a+)$', 'blocks.%1.attn.proj.%2'},
    {'^distilbert%.transformer%.layer%.(%d+)%.sa_layer_norm%.(%a+)$', 'blocks.%1.norm1.%2'},
    {'^distilbert%.transformer%.layer%.(%d+)%.ffn%.lin1%.(%a+)$', 'blocks.%1.mlp.fc1.%2'},
    {'^distilbert%.transformer%.layer%.(%d+)%.ffn%.lin2%.(%a+)$', 'blocks.%1.mlp.fc2.%2'},
    {'^distilbert%.transformer%.layer%.(%d+)%.output_layer_norm%.(%a+)$', 'blocks.%1.norm2.%2'},
  },
}

-- Reads a checkpoint: .safetensors, a TorchScript archive (opts.torchscript),
-- or a PyTorch state dict (.pt/.pth/.bin). Returns {name = tensor}.
function W.read(path, opts)
  if path:match('%.safetensors$') then return (kio.load_safetensors(path)) end
  if opts and opts.torchscript then return (kio.load_torchscript(path)) end
  return (kio.load_pt(path))
end

-- Renames the keys of `state` by `rules` (a table of {pattern, replacement
-- [, 'transpose']}; a false replacement drops the key; 'transpose' swaps the
-- two dimensions of a matrix). opts.layers = {[src] = dst} keeps and
-- renumbers only those blocks; opts.prefix is prepended to every target.
-- Returns mapped {target = tensor}, sources {target = source name}, unused {names}.
function W.map(state, rules, opts)
  opts = opts or {}
  if type(rules) == 'string' then
    rules = assert(W.rules[rules], 'kinema.models.weights: unknown mapping ' .. rules)
  end
  local mapped, sources, unused = {}, {}, {}
  local keys = {}
  for k in pairs(state) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local target, transform
    for _, rule in ipairs(rules) do
      if key:match(rule[1]) then
        target = rule[2] and (key:gsub(rule[1], rule[2])) or false
        transform = rule[3]
        break
      end
    end
    local tensor = state[key]
    if target and transform then
      assert(transform == 'transpose', 'kinema.models.weights: unknown rule transform ' .. tostring(transform))
      if tensor:dim() ~= 2 then error(string.format('kinema.models.weights: %s: a %d-d tensor cannot be transposed',
                                                    key, tensor:dim()), 2) end
      tensor = tensor:t():contiguous()
    end
    if target and opts.layers then
      local index = target:match('^blocks%.(%d+)%.')
      if index then
        local dst = opts.layers[tonumber(index)]
        target = dst and target:gsub('^blocks%.%d+%.', 'blocks.' .. dst .. '.') or false
      end
    end
    if target then
      target = (opts.prefix or '') .. target
      mapped[target], sources[target] = tensor, key
    else
      unused[#unused + 1] = key
    end
  end
  return mapped, sources, unused
end

-- Resamples a ViT position embedding ([L,D] or [1,L,D], first row [CLS]) to
-- the target's grid (bicubic, align_corners=false, as timm).
function W.resize_pos_embed(src, target_shape)
  local rows = target_shape[#target_shape - 1]
  local d = target_shape[#target_shape]
  local p = src:reshape({-1, d})
  local old = math.floor(math.sqrt(p:size(0) - 1) + 0.5)
  local new = math.floor(math.sqrt(rows - 1) + 0.5)
  assert(old * old == p:size(0) - 1 and new * new == rows - 1, 'resize_pos_embed: grids must be square')
  local grid = p:narrow(0, 1, old * old):reshape({1, old, old, d}):permute({0, 3, 1, 2}):float()
  grid = torch.upsample_bicubic2d(grid, {new, new}, false)
  grid = grid:permute({0, 2, 3, 1}):reshape({new * new, d}):to(p.dtype)
  return torch.cat({p:narrow(0, 0, 1), grid}, 0):reshape(target_shape)
end

-- Linear resampling of a time embedding [1,T,D] to the target's T.
function W.resize_time_embed(src, target_shape)
  local t = src:reshape({1, -1, target_shape[#target_shape]}):transpose(1, 2):float()
  t = torch.upsample_linear1d(t, {target_shape[#target_shape - 1]}, false)
  return t:transpose(1, 2):reshape(target_shape):to(src.dtype)
end

-- Loads `source` (a path or a {name = tensor} table) into `module` through
-- `rules`. Adapts shapes: same numel -> reshape; a 2-D (text) pos_embed -> its
-- first rows; a 3-D (image) pos_embed -> resize_pos_embed; time_embed ->
-- resize_time_embed. Returns the report of load_state_dict plus
-- unused (checkpoint keys no rule mapped or the model lacks), adapted, and
-- missing (model parameters the checkpoint did not provide).
function W.load(module, source, rules, opts)
  opts = opts or {}
  local state = type(source) == 'string' and W.read(source, opts) or source
  local mapped, sources, unused = W.map(state, rules, opts)
  local own = {}
  for _, list in ipairs({module:named_parameters(), module:named_buffers()}) do
    for _, pair in ipairs(list) do own[pair[1]] = pair[2] end
  end
  local adapted = {}
  for name, t in pairs(mapped) do
    local target = own[name]
    if target == nil then
      unused[#unused + 1] = sources[name]
      mapped[name] = nil
    elseif tostring(t.shape) ~= tostring(target.shape) then
      local shape = target:size()
      if t:numel() == target:numel() then
        mapped[name] = t:reshape(shape)
      elseif name:match('pos_embed$') and t:dim() == 2 and #shape == 2 and t:size(1) == shape[2]
             and t:size(0) > shape[1] then
        mapped[name] = t:narrow(0, 0, shape[1])  -- a text model's first positions (CLIP: positional_embedding[:L])
      elseif name:match('pos_embed$') and t:size(-1) == shape[#shape] then
        mapped[name] = W.resize_pos_embed(t, shape)
      elseif name:match('time_embed$') and t:size(-1) == shape[#shape] then
        mapped[name] = W.resize_time_embed(t, shape)
      end
      if mapped[name] ~= t then adapted[#adapted + 1] = sources[name] .. ' -> ' .. name end
    end
  end
  local report = module:load_state_dict(mapped, {strict = false})
  table.sort(unused)
  table.sort(adapted)
  report.unused, report.adapted = unused, adapted
  return report
end

return W
