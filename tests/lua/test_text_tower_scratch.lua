-- A text tower trained from scratch with a contrastive loss: the tiny presets
-- of the recipes compared against the VTC-only baseline (S-ViLM, OA-Trans)
-- use the baseline's CLIP-style text encoder (pre-norm, causal, end-of-text
-- pooling) rather than their papers' BERT, which the papers load pretrained.
-- Toy task shaped like the start of a tiny run: 48 captions of random words,
-- each matched to a video feature that is nearly the same for every video (as a
-- video encoder's output is at init), tiny 2-layer 64-d towers, AdamW at the
-- presets' lr 5e-4. The BERT-style [CLS] output barely differs between captions
-- at init and VTC stays near log(batch); the CLIP-style tower learns the task.
local T = require 'kinema.test'
local kinema = require 'kinema'
local models = require 'kinema.models'
local recipe = require 'kinema.recipe'

local B = 24

-- Mean VTC of the last 20 of `steps` steps.
local function train_vtc(style, steps)
  torch.manual_seed(0)
  local V, N, L, d, words = 40, 48, 14, 64, 10
  local text = models.TextEncoder{style = style, vocab_size = V, max_len = 16, embed_dim = d, depth = 2, num_heads = 4}
  local text_proj = models.Projection{in_dim = d, out_dim = d}
  local video_proj = models.Projection{in_dim = d, out_dim = d}
  -- [CLS] = 1, ten random words, [SEP] = 2, padding 0
  local ids = torch.zeros({N, L}, {dtype = torch.int64})
  ids:narrow(1, 0, 1):fill_(1)
  ids:narrow(1, 1, words):copy_(torch.randint(V - 3, {N, words}, {dtype = torch.int64}) + 3)
  ids:narrow(1, words + 1, 1):fill_(2)
  local mask = ids:ne(0)
  local feats = torch.randn(1, d):expand({N, d}) + torch.randn(N, d) * 0.05
  local params = {}
  for _, m in ipairs({text, text_proj, video_proj}) do
    for _, p in ipairs(m:parameters()) do params[#params + 1] = p end
  end
  local opt = kinema.optim.AdamW(params, {lr = 5e-4, weight_decay = 0.05})
  text:train()
  return T.train_tail_loss(opt, steps, 20, function()
    local idx = torch.randperm(N):narrow(0, 0, B)
    local t = text_proj(text(ids:index_select(0, idx), mask:index_select(0, idx)).pooled)
    return kinema.losses.vtc({video_emb = video_proj(feats:index_select(0, idx)), text_emb = t, tau = 0.07})
  end)
end

T.test('from scratch a CLIP-style text tower learns VTC in 100 steps, a BERT-style one stays near log(batch)', function()
  local clip = train_vtc('clip', 100)
  T.is_true(clip < 1.0, string.format('CLIP-style: mean VTC of the last 20 steps %.3f (log B %.3f)', clip, math.log(B)))
  local bert = train_vtc('bert', 100)
  T.is_true(bert > math.log(B) - 0.3,
            string.format('BERT-style: %.3f, expected to stay near log B = %.3f', bert, math.log(B)))
end)

T.test("the tiny S-ViLM and OA-Trans presets use the baseline's CLIP-style text tower; the papers' presets BERT", function()
  local function text(spec, preset)
    local argv = preset and {'--' .. preset} or {}
    return recipe.parse_args(argv, recipe.merge(recipe.common, spec.defaults), spec.presets).model.text or {}
  end
  for _, name in ipairs({'svilm', 'oatrans'}) do
    local spec = require('kinema.recipes.' .. name)
    T.eq(text(spec, 'tiny').style, 'clip', name .. ' --tiny')
    T.eq(spec.model_defaults.text.style, 'bert', name .. ' paper defaults')
  end
  T.eq(require('kinema.models.stoa').defaults.text.style, 'clip', "the baseline's (STOA's) text tower")
end)
