-- DemoVLP pre-training (NeurIPS 2022): a transformer over pre-extracted
-- region features (no pixels), VTC plus region-word alignment (RWA); retrieval
-- ranks by global + local similarity.
--
-- Paper defaults: 12-layer region transformer over 8 frames x 10 regions of
-- 2048-d bottom-up features, DistilBERT text encoder, 256-d space, batch 256,
-- lr 1e-4, temperature 0.05.
local torch = require 'torch'
local recipe = require 'kinema.recipe'
local normalize = require('kinema.eval.zero_shot').normalize
local eval = require 'kinema.eval'
local demovlp = require 'kinema.models.demovlp'

local spec = {name = 'demovlp'}
spec.about = 'DemoVLP pre-training: region transformer, VTC and region-word alignment (RWA)'
spec.model_defaults = demovlp.defaults
spec.docs = {regions = {'data', 'region features per frame'}, region_dim = {'data', 'region feature width'}}
spec.needs = {rwa = 'regions'}

spec.defaults = {
  out_dir = 'runs/demovlp', frames = 8, regions = 10, region_dim = 2048, text_len = 32,
  train = {batch_size = 256, max_steps = 100000, lr = 1e-4, warmup = 2000},
  weights = {rwa = 1},
  loss = {rwa = {}},
  model = {},
}

spec.presets = {
  tiny = {
    out_dir = 'runs/demovlp-tiny', frames = 8, regions = 4, text_len = 24,
    train = {batch_size = 24, max_steps = 300, lr = 5e-4, warmup = 30, weight_decay = 0.05, num_workers = 2,
             checkpoint_every = 100, log_every = 5},
    eval = {batch_size = 50},
    diagnostics = {every = 25},
    model = {embed = 64, region = {embed_dim = 96, depth = 4, num_heads = 4},
             text = {embed_dim = 64, depth = 2, num_heads = 4}},
  },
}

function spec.build(cfg, tok)
  return demovlp.build(recipe.merge(cfg.model, {frames = cfg.frames,
                                                region = {feat_dim = cfg.region_dim},
                                                text = {vocab_size = tok:vocab_size(),
                                                        max_len = math.max(cfg.text_len, 8)}}))
end

function spec.loader_options(cfg, tok)
  return {text = {tokenizer = tok, max_len = cfg.text_len}, video = false,
          regions = {k = cfg.regions, frames = cfg.frames}}
end

-- Words are the text outputs without [CLS] and padding.
local function word_mask(mask)
  local m = mask:clone()
  m['..., 0'] = false
  return m
end

function spec.inputs(model, batch, cfg)
  local out = model(batch)
  return {video_emb = out.video.embed, text_emb = out.text.embed, tau = out.tau,
          regions = out.video.regions, region_mask = batch.region_mask,
          words = out.text.words, word_mask = word_mask(batch.mask)}, cfg.loss
end

spec.embed = {
  video = function(model, batch)
    local v = model:encode_video(batch.features, batch.locations, batch.frame_index, batch.region_mask)
    return {global = normalize(v.embed), regions = v.regions, region_mask = batch.region_mask}
  end,
  text = function(model, ids, mask)
    local t = model:encode_text(ids, mask)
    return {global = normalize(t.embed), words = t.words, word_mask = word_mask(mask)}
  end,
  score = function(model, texts, videos)
    return eval.global_local_score{}(texts, videos)
  end,
}

-- DemoVLP's own matching of a (video, caption) pair for the hard negatives:
-- global + local similarity (its retrieval score), next to the global cosine.
spec.match = {
  name = 'global + local similarity',
  score = function(model, videos, ids, mask)
    -- row k of the chunk's [n, n] scores against column k: each caption with its own video
    return eval.global_local_score{}(spec.embed.text(model, ids, mask), videos):diagonal()
  end,
}

-- Where each noun is grounded (kinema report): RWA's word -> region attention
-- for the noun's token, a[n] = softmax_n(lambda cos(t, r_n)) over the video's
-- regions, kept where above its mean (eq 9's threshold); each kept region is
-- drawn as its box, weighted by a[n]. The video is decoded only for the
-- picture: region file f of F is shown on decoded frame round(f (T-1)/(F-1))
-- (both spread evenly over the clip).
spec.grounding = {
  about = 'DemoVLP region-word attention: for each noun, the word -> region attention of RWA '
          .. '(softmax over regions of lambda cos, kept above its mean); kept regions drawn as boxes, '
          .. 'opacity by weight (region files placed on the decoded frame of the same position in the clip)',
  loader_options = function(cfg, tok)
    return {text = {tokenizer = tok, max_len = cfg.text_len, parts = true},
            regions = {k = cfg.regions, frames = cfg.frames}}
  end,
  run = function(model, batch, cfg, tok)
    local grounding = require 'kinema.grounding'
    local v = model:encode_video(batch.features, batch.locations, batch.frame_index, batch.region_mask)
    local t = model:encode_text(batch.ids, batch.mask)
    local lambda = (cfg.loss.rwa or {}).lambda or 1
    local regions = normalize(v.regions)
    local words = normalize(t.words)
    local positions, ids = batch.noun_positions:totable(), batch.ids:totable()
    local region_mask, frame_index = batch.region_mask:totable(), batch.frame_index:totable()
    local locations = batch.locations:totable()
    local T = batch.video:size(1)
    local out = {}
    for i, caption in ipairs(batch.caption) do
      local valid = grounding.true_indices(region_mask[i])
      local items = {}
      if #valid > 0 then
        local last_frame = 0
        for _, n in ipairs(valid) do last_frame = math.max(last_frame, frame_index[i][n + 1]) end
        local r = regions[i - 1]:index_select(0, torch.tensor(valid, {dtype = torch.int64}))  -- [V, d]
        local pos = {}
        for _, p in ipairs(positions[i]) do if p >= 0 then pos[#pos + 1] = p end end
        local names = grounding.noun_words(tok, ids[i], pos, caption)
        for j, p in ipairs(pos) do
          local a = (r:matmul(words[i - 1][p]) * lambda):softmax(0)  -- [V]
          local kept = a:gt(a:mean()):totable()
          local weights = a:totable()
          local drawn = {}
          for k, n in ipairs(valid) do
            if kept[k] then
              local f = frame_index[i][n + 1]
              local frame = last_frame > 0 and math.floor(f * (T - 1) / last_frame + 0.5) or 0
              local loc = locations[i][n + 1]
              drawn[#drawn + 1] = {frame = frame, box = {loc[1], loc[2], loc[3], loc[4]}, weight = weights[k],
                                   region = n}
            end
          end
          local top = 0
          for _, w in ipairs(weights) do top = math.max(top, w) end
          items[#items + 1] = {noun = names[j], position = p, weight = top, boxes = drawn, attention = a}
        end
      end
      out[i] = items
    end
    return out
  end,
}

return spec
