-- Grouping: S-ViLM intra-clip temporal grouping (eq 1-2).
-- z_clip [Nt,d] = the video tokens averaged over space and over the frames of
-- each clip; z_f / z_b = the mean of z_clip over the foreground / background
-- clips (mask m from cut-and-paste); a = softmax([cos(z_clip, z_b),
-- cos(z_clip, z_f)] / tau) [Nt,2] (column 0 background, 1 foreground);
-- L = mean over the batch of MSE(a, one_hot(m)) (mean over the Nt x 2
-- entries), or with opts.criterion = 'bce' the binary cross entropy instead.
--
-- inputs:
--   mask [B,Nt]          1/true = foreground clip; each row needs both kinds
--   one of:
--   clip_features [B,Nt,d]      already pooled per clip
--   frame_features [B,T,d]      pooled over space per frame (or per tubelet
--                               slice), T a multiple of Nt
--   video_tokens [B,T,P,d] or [B,T,H,W,d]   spatial tokens per frame
-- opts: tau (0.07; the paper gives no value), criterion 'mse' | 'bce'
-- parts: accuracy (clips whose larger a entry is the true side); trivial (its value at a = 1/2)
-- extras: {assignment = a [B,Nt,2]}
local torch = require 'torch'
local losses = require 'kinema.losses'
local U = require 'kinema.losses._util'

local M = {}

-- [B,Nt,d] clip features from whichever input was given.
function M.clip_features(inputs, Nt)
  if inputs.clip_features ~= nil then
    local z = U.need('grouping', inputs, 'clip_features', 3, '[B, Nt, d]')
    U.check(z:size(1) == Nt, 'grouping', "'clip_features' has %d clips, 'mask' %d", z:size(1), Nt)
    return z
  end
  local frames
  if inputs.frame_features ~= nil then
    frames = U.need('grouping', inputs, 'frame_features', 3, '[B, T, d]')
  else
    local v = U.need('grouping', inputs, 'video_tokens', nil, '[B, T, P, d] or [B, T, H, W, d] (or clip_features)')
    U.check(v:dim() == 4 or v:dim() == 5, 'grouping', "'video_tokens' must be [B, T, P, d] or [B, T, H, W, d], got %s",
            tostring(v.shape))
    frames = v:flatten(2, v:dim() - 2):mean(2)
  end
  local B, T, d = frames:size(0), frames:size(1), frames:size(2)
  U.check(T % Nt == 0, 'grouping', '%d frames do not split into %d clips of equal length', T, Nt)
  return frames:reshape({B, Nt, T / Nt, d}):mean(2)
end

function M.grouping(inputs, opts)
  opts = U.options('grouping', opts, {'tau', 'tau_min', 'tau_max', 'criterion'})
  local mask = U.need('grouping', inputs, 'mask', 2, '[B, Nt]')
  local B, Nt = mask:size(0), mask:size(1)
  local z = M.clip_features(inputs, Nt)
  U.same_size('grouping', z, 'clip features', 0, mask, 'mask', 0)
  local m = mask:ne(0):to(z.dtype)
  local fg, bg = m:sum(1), (1 - m):sum(1)
  U.check(fg:gt(0):all():item() and bg:gt(0):all():item(), 'grouping',
          "every row of 'mask' needs at least one foreground and one background clip")
  local z_f = (z * m:unsqueeze(-1)):sum(1) / fg:unsqueeze(-1)
  local z_b = (z * (1 - m):unsqueeze(-1)):sum(1) / bg:unsqueeze(-1)
  local zu = U.unit(z)
  local cos_b = (zu * U.unit(z_b):unsqueeze(1)):sum(-1)
  local cos_f = (zu * U.unit(z_f):unsqueeze(1)):sum(-1)
  local tau = U.temperature('grouping', {tau = opts.tau}, {}, 0.07)
  local a = (torch.stack({cos_b, cos_f}, -1) / tau):softmax(-1)
  local target = torch.stack({1 - m, m}, -1)
  local criterion = opts.criterion or 'mse'
  local loss
  if criterion == 'mse' then
    loss = (a - target):pow(2):mean()
  elseif criterion == 'bce' then
    loss = torch.binary_cross_entropy(a, target)
  else
    U.check(false, 'grouping', "option 'criterion' must be 'mse' or 'bce', got %s", tostring(criterion))
  end
  local predicted_fg = a:detach():select(-1, 1):gt(0.5)
  local accuracy = predicted_fg:eq(m:gt(0.5)):to(torch.float32):mean()
  -- trivial: a = (1/2, 1/2) everywhere
  return loss, {accuracy = accuracy, trivial = criterion == 'mse' and 0.25 or math.log(2)}, {assignment = a}
end

losses.register('grouping', M.grouping, 'S-ViLM temporal grouping: clip-to-foreground/background softmax vs the cut-and-paste mask')

return M
