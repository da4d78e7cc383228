-- VTM: video-text matching with hard negatives (STOA, ALBEF-style).
-- For each video i one negative caption is drawn with probability
-- proportional to softmax(S[i,:]) with the positive excluded, and for each
-- caption j one negative video with probability proportional to
-- softmax(S[:,j]) likewise (torch.multinomial on the default generator, the
-- captions' draw first: torch.manual_seed makes a run reproducible). The
-- caller's fusion encoder runs once on the 3B pairs
--   [B positives (v_i, t_i) ; B (v_i, t_neg(i)) ; B (v_neg(j), t_j)]
-- and returns 2-way logits; L = CE(logits, [1]*B ++ [0]*2B) (1 = matched).
--
-- inputs:
--   fuse(video, text, masks, index) -> logits [3B, 2]   (or opts.fuse) the
--        fusion encoder + VTM head; video/text are inputs.video/inputs.text
--        with their batch rows selected, masks = {video =, text =} the
--        selected masks (nil when not given), index = {video =, text =} the
--        [3B] int64 row indices used
--   video [B,...] tensor or table of batch-first tensors (e.g. frames,
--        trajectories, actions, trajectory_mask), text likewise
--   video_mask [B,...], text_mask [B,...]    optional, selected like the rows
--   sim [B,B]   similarity logits S (no gradient is taken through it), or
--   video_emb [B,d] + text_emb [B,d] + tau  to compute S = cos / tau
-- opts: negatives = 'hard' (default) | 'random' (uniform over the other rows)
--       uniform = p in [0, 1] (default 0): with 'hard', draw from the mixture
--         (1 - p) softmax(S) + p uniform. Mining alone needs an informative S:
--         from scratch, S is near-collapsed or peaked on captions the fusion
--         cannot yet tell apart, every negative is as hard as the positive,
--         and VTM stays at its label-prior entropy (the tiny STOA preset: 300
--         steps at 0.6365 with p = 0; tests/lua/test_losses_vtm.lua)
-- parts: accuracy (fraction of the 3B pairs classified right); trivial (label-prior entropy)
-- extras: {neg_text = [B] int64, neg_video = [B] int64, logits, labels}
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'

local M = {}

local function batch_size(x)
  if torch.is_tensor(x) then return x:size(0) end
  if type(x) == 'table' then
    for _, v in pairs(x) do
      local b = batch_size(v)
      if b then return b end
    end
  end
  return nil
end

-- One index per row of weights [B,B] (non-negative, zero diagonal); a row
-- whose weights all vanished falls back to uniform over the other columns.
local function draw(weights)
  local B = weights:size(0)
  local off_diagonal = torch.ones({B, B}, {dtype = weights.dtype, device = weights.device})
                       - torch.eye(B, {dtype = weights.dtype, device = weights.device})
  local empty = weights:sum(1, true):le(0)
  weights = torch.where(empty, off_diagonal, weights)
  return torch.multinomial(weights, 1):view({B})
end

-- The hard negatives for a [B,B] similarity matrix: neg_text[i] for video i,
-- neg_video[j] for caption j; uniform (default 0) mixes in that much of the
-- uniform distribution over the other rows.
function M.sample_negatives(sim, uniform)
  uniform = uniform or 0
  return torch.no_grad(function()
    local s = sim:detach():double()
    local B = s:size(0)
    local keep = torch.ones({B, B}, {dtype = s.dtype, device = s.device}) - torch.eye(B, {dtype = s.dtype, device = s.device})
    local function weights(rows)
      local p = rows:softmax(1) * keep
      p = p / p:sum(1, true):clamp_min(1e-300)
      if uniform > 0 then p = p * (1 - uniform) + keep * (uniform / (B - 1)) end
      return p
    end
    local neg_text = draw(weights(s))
    local neg_video = draw(weights(s:t()))
    return neg_text, neg_video
  end)
end

function M.vtm(inputs, opts)
  opts = U.options('vtm', opts, {'fuse', 'negatives', 'uniform', 'tau', 'tau_min', 'tau_max'})
  local fuse = inputs.fuse or opts.fuse
  U.check(type(fuse) == 'function' or (type(fuse) == 'table' and getmetatable(fuse) and getmetatable(fuse).__call),
          'vtm', "input 'fuse' (function(video, text, masks, index) -> logits [3B, 2]) is required")
  U.check(inputs.video ~= nil and inputs.text ~= nil, 'vtm', "inputs 'video' and 'text' (batch-first tensors or tables of them) are required")
  local sim = inputs.sim
  if sim == nil then
    local v = U.need('vtm', inputs, 'video_emb', 2, '[B, d] (or give sim)')
    local t = U.need('vtm', inputs, 'text_emb', 2, '[B, d] (or give sim)')
    sim = U.cosine_matrix(v:detach(), t:detach()) / U.number(U.temperature('vtm', inputs, opts, 0.07))
  end
  U.check(torch.is_tensor(sim) and sim:dim() == 2 and sim:size(0) == sim:size(1), 'vtm',
          "input 'sim' must be a square [B, B] tensor, got %s", torch.is_tensor(sim) and tostring(sim.shape) or type(sim))
  local B = sim:size(0)
  U.check(B >= 2, 'vtm', 'needs a batch of at least 2 pairs to draw negatives, got %d', B)
  U.check(batch_size(inputs.video) == B and batch_size(inputs.text) == B, 'vtm',
          "inputs 'video' and 'text' must have %d rows like 'sim'", B)
  U.check(opts.negatives == nil or opts.negatives == 'hard' or opts.negatives == 'random', 'vtm',
          "option 'negatives' must be 'hard' or 'random', got %s", tostring(opts.negatives))
  U.check(opts.uniform == nil or (type(opts.uniform) == 'number' and opts.uniform >= 0 and opts.uniform <= 1), 'vtm',
          "option 'uniform' must be a number in [0, 1], got %s", tostring(opts.uniform))
  -- 'random': uniform over the other rows (an ablation of the hard-negative mining)
  if opts.negatives == 'random' then sim = torch.zeros({B, B}, {dtype = torch.float64}) end
  local neg_text, neg_video = M.sample_negatives(sim, opts.uniform)
  local device = neg_text.device
  local ar = torch.arange(B, {dtype = torch.int64, device = device})
  local video_index = torch.cat({ar, ar, neg_video}, 0)
  local text_index = torch.cat({ar, neg_text, ar}, 0)
  local masks = {video = U.select_batch(inputs.video_mask, video_index),
                 text = U.select_batch(inputs.text_mask, text_index)}
  local logits = fuse(U.select_batch(inputs.video, video_index), U.select_batch(inputs.text, text_index), masks,
                      {video = video_index, text = text_index})
  U.check(torch.is_tensor(logits) and logits:dim() == 2 and logits:size(0) == 3 * B and logits:size(1) == 2, 'vtm',
          'fuse must return logits [%d, 2], got %s', 3 * B, torch.is_tensor(logits) and tostring(logits.shape) or type(logits))
  local labels = torch.cat({torch.ones({B}, {dtype = torch.int64, device = logits.device}),
                            torch.zeros({2 * B}, {dtype = torch.int64, device = logits.device})}, 0)
  local loss = U.cross_entropy(logits, labels)
  local _, predicted = logits:detach():max(1)
  local accuracy = predicted:eq(labels):to(torch.float32):mean()
  -- trivial: always answering with the label prior (1/3 matched): its entropy
  return loss, {accuracy = accuracy, trivial = -(math.log(1 / 3) / 3 + 2 * math.log(2 / 3) / 3)},
         {neg_text = neg_text, neg_video = neg_video, logits = logits, labels = labels}
end

losses.register('vtm', M.vtm, 'video-text matching with softmax-sampled hard negatives (B positives, 2B negatives)')

return M
