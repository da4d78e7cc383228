-- A new objective in Lua, weighted next to the built-in ones, without recompiling.
--
--   build/kinema run examples/custom_loss.lua
--
-- The loss: a "hinge on the hardest negative" for video-text pairs,
--   L = mean_i max(0, margin - s_ii + max_{j != i} s_ij),   s = cosine similarity,
-- written first as plain tensor code (autograd derives the gradient), then as a
-- custom autograd function with a hand-written backward (what you would do to
-- save memory or to try a gradient that is not the true one), checked
-- numerically, registered, and combined with VTC by weight.
local kinema = require 'kinema'
local losses, T = kinema.losses, require 'kinema.test'

torch.manual_seed(0)

local function unit(x) return x / x:norm(2, {-1}, true):clamp_min(1e-8) end
local function similarity(v, t) return torch.matmul(unit(v), unit(t):t()) end

-- 1. Plain tensor code: autograd does the rest.
local function hardest_negative(sim, margin)
  local n = sim:size(0)
  local eye = torch.eye(n, {dtype = torch.bool})
  local negatives = sim:masked_fill(eye, -math.huge):amax(1)   -- best wrong caption per video
  return (negatives - sim:diagonal() + margin):clamp_min(0):mean()
end

-- 2. The same loss with its gradient written by hand. Only the argmax of each
-- row and the active hinges are needed in backward, not the whole graph.
local HardestNegative = torch.autograd.Function{
  forward = function(ctx, sim, margin)
    local n = sim:size(0)
    local masked = sim:masked_fill(torch.eye(n, {dtype = torch.bool}), -math.huge)
    local negatives, where = masked:max(1)
    local hinge = negatives - sim:diagonal() + margin
    ctx:save_for_backward(where, hinge:gt(0))
    ctx.n = n
    return hinge:clamp_min(0):mean()
  end,
  backward = function(ctx, grad)
    local where, active = ctx:saved_tensors()
    local n = ctx.n
    local g = active:to(grad.dtype) * grad / n                  -- d loss / d hinge_i
    local dsim = torch.zeros({n, n}, {dtype = grad.dtype})
    dsim:scatter_(1, where:view(n, 1), g:view(n, 1))            -- +g at the hardest negative
    dsim = dsim - torch.diag(g)                                  -- -g on the diagonal
    return dsim, nil
  end,
}

local video, text = torch.randn(6, 16, {requires_grad = true}), torch.randn(6, 16, {requires_grad = true})
local a = hardest_negative(similarity(video, text), 0.2)
local b = HardestNegative(similarity(video, text), 0.2)
T.close(a, b)                                                    -- same value
local ga = torch.autograd.grad(a, {video, text})
local gb = torch.autograd.grad(b, {video, text})
T.close(ga[1], gb[1]); T.close(ga[2], gb[2])                     -- same gradient
-- And against finite differences, in float64.
T.gradcheck(function(s) return HardestNegative(s, 0.2) end, {torch.randn(5, 5, {dtype = torch.float64})})
print(string.format('hardest-negative loss %.4f; hand-written gradient matches autograd and finite differences',
                    a:item()))

-- 3. Register it like a built-in objective and weight it against VTC.
losses.register('hardest_negative', function(inputs, opts)
  local loss = HardestNegative(similarity(inputs.video_emb, inputs.text_emb), opts.margin or 0.2)
  return loss, {loss = loss:detach()}
end, 'hinge on the hardest negative caption of each video (examples/custom_loss.lua)')

local inputs = {video_emb = video, text_emb = text, tau = torch.tensor(0.07)}
local total, parts = losses.combine({vtc = 1, hardest_negative = 0.5}, inputs, {hardest_negative = {margin = 0.2}})
local vtc = losses.vtc(inputs)
T.close(total, vtc + 0.5 * b)
total:backward()
assert(video.grad and text.grad, 'gradients reach both encoders')
print(string.format('vtc %.4f + 0.5 x hardest_negative %.4f = %.4f', vtc:item(), b:item(), total:item()))
