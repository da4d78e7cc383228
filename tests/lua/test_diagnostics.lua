-- kinema.diagnostics: per-objective gradient norms by parameter group against
-- hand-computed gradients, shares, the two dead-objective warnings, the
-- Trainer integration (grad.* keys in log.jsonl, the end-of-run table, training
-- unchanged by measuring), and the objectives' 'trivial' parts.
local T = require 'kinema.test'
local kinema = require 'kinema'
local nn, optim, train, json, diagnostics = kinema.nn, kinema.optim, kinema.train, kinema.json, kinema.diagnostics
local losses = kinema.losses


local Holder = nn.Module:extend('Holder')
function Holder:init(values) self.w = nn.Parameter(torch.tensor(values, {dtype = torch.float64})) end

local Two = nn.Module:extend('Two')
function Two:init()
  self.video = Holder({1, 2})
  self.head = Holder({3, 4, 0})
end

T.test('norms per objective and group equal the hand-computed gradients; shares', function()
  local m = Two()
  local printed = {}
  local mon = diagnostics.GradientMonitor{model = m, every = 1, print = function(s) printed[#printed + 1] = s end}
  T.eq(mon.groups, {'video', 'head'})
  local v, h = m.video.w, m.head.w
  -- a = sum(x * v) with x = (3, 4): gradient (3, 4) on video, norm 5; none on head
  -- b = 2 * sum(h^2) + v_1: gradient 4h = (12, 16, 0) on head, norm 20; (1, 0) on video, norm 1
  local terms = {a = (v * torch.tensor({3, 4}, {dtype = torch.float64})):sum(),
                 b = (h:pow(2)):sum() * 2 + v[0]}
  local record = mon:measure(terms, 1)
  T.close(record['grad.a.video'], 5, {atol = 1e-12})
  T.close(record['grad.a.head'], 0, {atol = 1e-12})
  T.close(record['grad.b.head'], 20, {atol = 1e-12})
  T.close(record['grad.b.video'], 1, {atol = 1e-12})
  T.is_true(v.grad == nil and h.grad == nil, 'measuring leaves .grad alone')
  local shares = diagnostics.shares(mon.last)
  T.close(shares.a.video, 5 / 6, {atol = 1e-12})
  T.close(shares.b.video, 1 / 6, {atol = 1e-12})
  T.close(shares.b.head, 1, {atol = 1e-12})
  -- the terms still backpropagate afterwards (graph retained)
  terms.a:backward()
  T.close(v.grad, torch.tensor({3, 4}, {dtype = torch.float64}))
  local text = mon:summary()
  T.is_true(text:find('| a | 83.3 (83.3) | - |', 1, true) ~= nil, text)
  T.is_true(text:find('| b | 16.7 (16.7) | 100.0 (100.0) |', 1, true) ~= nil, text)
  T.eq(#printed, 0, 'no warning: no backbone group named text, and video shares are above 1%')
end)

T.test('an objective under the share threshold of every backbone group is named after share_after steps', function()
  local m = Two()
  local printed = {}
  local mon = diagnostics.GradientMonitor{model = m, every = 2, backbone = {'video'}, share_threshold = 0.01,
                                          share_after = 2, print = function(s) printed[#printed + 1] = s end}
  T.is_true(mon:due(4) and not mon:due(3))
  local function step(n)
    local v = m.video.w
    -- weak: gradient 0.001 * (1, 1) on video (norm 0.0014) against strong's (3, 4) (norm 5): 0.03%
    return mon:measure({strong = (v * torch.tensor({3, 4}, {dtype = torch.float64})):sum(),
                        weak = v:sum() * 0.001}, n)
  end
  step(2)
  T.eq(#mon.warnings, 0, 'one low measurement is not enough')
  step(4)
  T.eq(#mon.warnings, 1)
  T.is_true(mon.warnings[1]:find('objective weak looks dead at step 4', 1, true) ~= nil, mon.warnings[1])
  T.is_true(mon.warnings[1]:find('share of the backbone gradient (video) stayed under 1%', 1, true) ~= nil,
            mon.warnings[1])
  -- weak's own norm sqrt(2) * 0.001 did not fade: the message tells it from a fading objective
  T.is_true(mon.warnings[1]:find("its gradient norm on video went from 0.00141 (step 2) to 0.00141, the group's "
                                 .. 'total from 5 to 5', 1, true) ~= nil, mon.warnings[1])
  step(6)
  T.eq(#mon.warnings, 1, 'warned once')
  T.eq(#printed, 1)
  T.raises(function() diagnostics.GradientMonitor{model = m, every = -1} end,
           "kinema.diagnostics: option 'every' must be a non-negative integer, got -1")
  T.raises(function() diagnostics.GradientMonitor{model = m, share_threshold = 2} end, "option 'share_threshold'")
end)

T.test("the share warning gives the objective's loss against its trivial value at the last logged step", function()
  local m = Two()
  local mon = diagnostics.GradientMonitor{model = m, every = 1, backbone = {'video'}, share_after = 1,
                                          print = function() end}
  -- weak's loss logged at 30% of its trivial value: it learns, but barely moves the backbone
  mon:observe({step = 5, weak = 0.3, ['weak.trivial'] = 1.0, strong = 2.0})
  local v = m.video.w
  mon:measure({strong = (v * torch.tensor({3, 4}, {dtype = torch.float64})):sum(), weak = v:sum() * 0.001}, 6)
  T.eq(#mon.warnings, 1)
  T.is_true(mon.warnings[1]:find('objective weak looks dead at step 6', 1, true) ~= nil, mon.warnings[1])
  T.is_true(mon.warnings[1]:find('; its loss at the last logged step (5) was 30% of its trivial value (0.3 vs 1)', 1,
                                 true) ~= nil, mon.warnings[1])
end)

T.test('a loss at its trivial value for dead_after logged steps in a row is named; a drop resets the count', function()
  local mon = diagnostics.GradientMonitor{model = Two(), dead_after = 3, trivial_tolerance = 0.02, print = function() end}
  local trivial = 0.6365
  -- 0.63 is within 2% of the trivial value: counts; 0.5 resets
  for step, loss in ipairs({0.70, 0.63, 0.5, 0.64, 0.66}) do
    mon:observe({step = step, vtm = loss, ['vtm.trivial'] = trivial, mlm = 1.0, ['mlm.trivial'] = 3.0})
  end
  T.eq(#mon.warnings, 0, 'two in a row after the reset')
  mon:observe({step = 6, vtm = 0.64, ['vtm.trivial'] = trivial, mlm = 1.0, ['mlm.trivial'] = 3.0})
  T.eq(#mon.warnings, 1)
  T.is_true(mon.warnings[1]:find('objective vtm looks dead at step 6: its loss stayed at its trivial value (0.6365',
                                 1, true) ~= nil, mon.warnings[1])
end)

-- A fixed-batch loader and a two-objective loss through losses.combine.
local function fake_loader(num_batches, batch)
  return T.loader(num_batches, function(epoch, i)
    local k = epoch * 31 + i + 1
    return {x = torch.sin(torch.arange(batch * 6):double() * (0.37 * k)):view(batch, 6):float(),
            y = torch.cos(torch.arange(batch * 3):double() * (0.11 * k)):view(batch, 3):float()}
  end)
end

local Net = nn.Module:extend('DiagNet')
function Net:init()
  self.video = nn.Linear(6, 8)
  self.head = nn.Linear(8, 3)
end
function Net:forward(x) return self.head(torch.tanh(self.video(x))) end

losses.register('diag_mse', function(inputs) return (inputs.out - inputs.y):pow(2):mean(), {} end)
losses.register('diag_small', function(inputs) return inputs.out:pow(2):mean() * 1e-6, {} end)

local function run(every, out_dir)
  torch.manual_seed(3)
  local model = Net()
  local opt = optim.AdamW(model, {lr = 1e-2})
  local printed = {}
  local trainer = train.Trainer{
    model = model, optimizer = opt, loader = fake_loader(4, 5), max_steps = 6, log_every = 3, out_dir = out_dir,
    progress = true, plot = false, print = function(s) printed[#printed + 1] = s end,
    grad_diagnostics = every and {every = every, backbone = {'video'}, share_after = 2} or nil,
    loss = function(batch)
      return losses.combine({diag_mse = 1, diag_small = 1}, {out = model(batch.x), y = batch.y})
    end,
  }
  local summary = trainer:fit()
  return model, summary, table.concat(printed)
end

T.test('Trainer: grad.* keys on the measured steps, the table at the end, the same training as without', function()
  local dir = T.tmpdir()
  local with, summary, printed = run(2, dir)
  local without = run(nil, T.tmpdir())
  for i, pair in ipairs(with:named_parameters()) do
    T.close(pair[2], without:named_parameters()[i][2], {atol = 0, rtol = 0}, pair[1])
  end
  local logged = {}
  for _, r in ipairs(json.read_lines(dir .. '/log.jsonl')) do
    if r.kind == 'train' then logged[r.step] = r end
  end
  -- log_every 3 plus the measured steps 2, 4, 6
  T.eq({logged[1] ~= nil, logged[2] ~= nil, logged[3] ~= nil, logged[4] ~= nil, logged[6] ~= nil},
       {false, true, true, true, true})
  T.is_true(logged[2]['grad.diag_mse.video'] > 0 and logged[2]['grad.diag_mse.head'] > 0)
  T.is_true(logged[3]['grad.diag_mse.video'] == nil, 'step 3 is logged but not measured')
  T.is_true(logged[4]['grad.diag_small.video'] < 1e-4 * logged[4]['grad.diag_mse.video'])
  T.eq(summary.diagnostics.measured_steps, 3)
  T.is_true(printed:find('| objective | video | head |', 1, true) ~= nil, printed)
  T.is_true(printed:find('objective diag_small looks dead at step 4', 1, true) ~= nil, printed)
  T.is_true(printed:find('measuring took', 1, true) ~= nil)
end)

T.test("the objectives' trivial values", function()
  torch.manual_seed(0)
  local B = 6
  local _, parts = losses.vtc{video_emb = torch.randn(B, 4), text_emb = torch.randn(B, 4), tau = 0.1}
  T.close(parts.trivial, math.log(B), {atol = 1e-12})
  -- at equal logits the loss is the trivial value
  local equal = losses.vtc{video_emb = torch.ones(B, 4), text_emb = torch.ones(B, 4), tau = 0.1}
  T.close(equal:item(), parts.trivial, {atol = 1e-5})
  local _, wparts = losses.weighted_vtc{video_emb = torch.randn(B, 4), text_emb = torch.randn(B, 4), tau = 0.1,
                                       Wv = torch.eye(B)}
  T.close(wparts.trivial, 2 * math.log(B), {atol = 1e-12})
  -- labels 5, 5, 7, 9: p = (1/2, 1/4, 1/4): H = 1.5 ln 2, Miller-Madow + (3 - 1) / (2 * 4)
  local labels = torch.tensor({{5, -100, 5}, {7, 9, -100}}, {dtype = torch.int64})
  local _, mparts = losses.mlm{logits = torch.zeros(2, 3, 11), labels = labels}
  T.close(mparts.trivial, 1.5 * math.log(2) + 0.25, {atol = 1e-12})
  local _, vparts = losses.vtm{sim = torch.randn(3, 3), video = torch.randn(3, 2), text = torch.randn(3, 2),
                               fuse = function(v) return torch.zeros(v:size(0), 2) end}
  T.close(vparts.trivial, -(math.log(1 / 3) / 3 + 2 / 3 * math.log(2 / 3)), {atol = 1e-12})
  T.close(vparts.trivial, 0.6365, {atol = 1e-4})
end)
