-- kinema.grounding: what the recipes share to say where each noun of a caption
-- is grounded in its video (spec.grounding, drawn by `kinema report`). A
-- recipe's spec.grounding = {about = one line, loader_options = function(cfg,
-- tok) -> test loader options, run = function(model, batch, cfg, tok) -> per
-- sample a list of items}. An item:
--   noun    the word or noun phrase
--   weight  how strongly the model ties it to what is drawn (in [0, 1])
--   heat    [T, gh, gw] float >= 0 per frame and patch (optional)
--   boxes   {{frame = t (0-based), box = {x1, y1, x2, y2} in [0, 1], weight = w}, ...} (optional)
local torch = require 'torch'
local data = require 'kinema.data'

local grounding = {}

-- The words at token positions of one caption: each position's token decoded,
-- completed to the caption noun it begins (a noun split into word pieces
-- shows whole). ids: the caption's token ids as a Lua list; positions 0-based.
function grounding.noun_words(tok, ids, positions, caption)
  local nouns = data.parts(caption).nouns
  local used, out = {}, {}
  for j, p in ipairs(positions) do
    local piece = tok:decode(torch.tensor({ids[p + 1]}, {dtype = torch.int64})):gsub('^%s+', ''):gsub('%s+$', '')
    local word = piece
    for k, noun in ipairs(nouns) do
      if not used[k] and noun:lower():sub(1, #piece) == piece:lower() then word, used[k] = noun, true; break end
    end
    out[j] = word
  end
  return out
end

-- 0-based indices of the true entries of a bool row (a Lua list).
function grounding.true_indices(row)
  local out = {}
  for i, v in ipairs(row) do if v == true or (type(v) == 'number' and v ~= 0) then out[#out + 1] = i - 1 end end
  return out
end

return grounding
