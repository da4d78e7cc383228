-- kinema.train: the training loop library.
--
--   local train = require('kinema').train
--   local trainer = train.Trainer{
--     model = model, optimizer = opt, scheduler = sched,       -- scheduler optional
--     loader = loader,                  -- a kinema.data.Loader (or any object with
--                                       -- iter(epoch, start) / num_batches())
--     loss = function(batch, trainer) return total, parts end,   -- e.g. losses.combine
--     max_steps = 1000 | epochs = 10,   -- optimizer steps, or whole epochs
--     accumulate = 1,                   -- micro-batches per optimizer step
--     clip_grad = 1.0,                  -- max global gradient norm (nil: none)
--     device = 'cpu' | 'cuda',          -- batch tensors are moved there
--     amp = 'bf16' | 'fp16' | nil,      -- autocast of forward + loss (CUDA only)
--     eval_every = 500, evaluate = function(trainer) return {metric = number} end,
--     out_dir = 'runs/x',               -- log.jsonl, checkpoints, loss.svg
--     checkpoint_every = 200, keep_checkpoints = 2,
--     resume = true | 'path',           -- true: the newest checkpoint in out_dir
--     overwrite = false,                -- a fresh run may replace an earlier one in out_dir
--     log_every = 1, progress = true, plot = 'svg' | 'png' | false,
--     config = {...},                   -- the run's resolved configuration: out_dir/config.json at
--                                       -- the start, and the metadata 'config' of every checkpoint
--     metadata = {recipe = 'stoa'},     -- more string metadata of every checkpoint
--     tensorboard = true,               -- scalar event file beside log.jsonl (false: none)
--     nonfinite_grad = 'stop' | 'skip', -- a NaN/Inf gradient norm with a finite loss
--     grad_diagnostics = {every = 25, ...},   -- kinema.diagnostics.GradientMonitor options
--   }
--   trainer:fit()
--
-- One step = `accumulate` micro-batches (each loss divided by accumulate),
-- then gradients averaged across ranks (kinema.dist, when initialised),
-- clipped, the optimizer and scheduler stepped. A checkpoint (model,
-- optimizer, scheduler, data position, RNG states of every device) is written
-- atomically after a step; resuming from it continues the same run: the next
-- batches, random draws and losses are those the unbroken run would have had.
-- A non-finite loss stops training with an error naming the step, the
-- objective(s) and the batch's sample ids; a non-finite gradient norm (checked
-- every step) stops it too, or skips that step's update (nonfinite_grad =
-- 'skip'); a checkpoint holding a non-finite tensor is never written. A log
-- write that fails (full disk) stops training with a checkpoint when one can
-- still be written; log.jsonl only ever holds whole records, and resuming cuts
-- it back to the checkpoint's step (no checkpoint: an empty log). Leftover
-- temporary files of killed writes are removed at start. Only rank 0 logs
-- (losses averaged over the ranks), plots and writes checkpoints.
-- With grad_diagnostics.every > 0 and a loss function that returns the
-- weighted terms third (as losses.combine does), every that many steps the
-- gradient norm each objective sends to each parameter group is logged
-- (grad.<objective>.<group>), dead objectives are warned about and the
-- end of fit prints the objective x group share table (kinema.diagnostics).
local torch = require 'torch'
local json = require 'kinema.json'
local sys = require 'kinema.sys'
local optim = require 'kinema.optim'
local util = require 'kinema.util'
local signals = require 'kinema._signals'
local checkpoint = require 'kinema.checkpoint'
local plot = require 'kinema.plot'

local train = {}

local check = util.checker('kinema.train: ')

local function dist_module()
  local ok, dist = pcall(require, 'kinema.dist')
  if ok and dist.is_initialized() then return dist end
  return nil
end

-- ---- batches ------------------------------------------------------------------

-- A copy of the batch with every tensor moved to device (nested tables too).
function train.to_device(batch, device)
  if device == nil or device == 'cpu' then return batch end
  local out = {}
  for k, v in pairs(batch) do
    if torch.is_tensor(v) then out[k] = v:to(device, {non_blocking = true})
    elseif type(v) == 'table' and getmetatable(v) == nil then out[k] = train.to_device(v, device)
    else out[k] = v end
  end
  return out
end

-- Number of samples of a batch (the leading size of its first tensor field, or
-- of its id list).
local function batch_size(batch)
  if type(batch.id) == 'table' then return #batch.id end
  for _, v in pairs(batch) do
    if torch.is_tensor(v) and v:dim() > 0 then return v:size(0) end
  end
  return 1
end

local function describe_ids(batch)
  local ids = batch.id or batch.ids_list
  if type(ids) ~= 'table' then return '(the batch carries no ids)' end
  local shown = {}
  for i = 1, math.min(#ids, 16) do shown[i] = tostring(ids[i]) end
  return table.concat(shown, ', ') .. (#ids > 16 and string.format(' ... (%d in all)', #ids) or '')
end

local function scalar(v)
  if torch.is_tensor(v) then return v:detach():float():item() end
  return v
end

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- ---- the trainer -----------------------------------------------------------------

local Trainer = {}
Trainer.__index = Trainer
train.Trainer_class = Trainer

-- The options train.Trainer reads (any other key is refused by name).
train.trainer_options = {'model', 'optimizer', 'scheduler', 'loader', 'loss', 'max_steps', 'epochs', 'accumulate',
                         'clip_grad', 'device', 'amp', 'eval_every', 'evaluate', 'out_dir', 'checkpoint_every',
                         'keep_checkpoints', 'resume', 'overwrite', 'config', 'metadata', 'tensorboard', 'log_every',
                         'progress', 'plot', 'nonfinite_grad', 'grad_diagnostics', 'print'}

function train.Trainer(cfg)
  check(type(cfg) == 'table', 'Trainer expects a table of options')
  util.check_options('kinema.train.Trainer', cfg, train.trainer_options)
  check(cfg.model ~= nil, "option 'model' is required")
  check(cfg.optimizer ~= nil, "option 'optimizer' is required")
  check(cfg.loader ~= nil, "option 'loader' is required")
  check(type(cfg.loss) == 'function', "option 'loss' must be a function(batch, trainer) -> total, parts")
  check(cfg.max_steps or cfg.epochs, "give 'max_steps' or 'epochs'")
  local self = setmetatable({}, Trainer)
  self.model, self.optimizer, self.scheduler, self.loader = cfg.model, cfg.optimizer, cfg.scheduler, cfg.loader
  self.loss_fn = cfg.loss
  self.accumulate = cfg.accumulate or 1
  check(self.accumulate >= 1 and self.accumulate % 1 == 0, "option 'accumulate' must be a positive integer")
  self.clip_grad = cfg.clip_grad
  self.device = cfg.device or 'cpu'
  self.amp = cfg.amp
  check(self.amp == nil or self.amp == false or self.amp == 'bf16' or self.amp == 'fp16',
        "option 'amp' must be 'bf16', 'fp16' or nil, got %s", tostring(self.amp))
  -- Autocast only where the issue asks for it: CUDA. On the CPU the option is a no-op.
  self.autocast = (self.amp and tostring(self.device):match('^cuda')) and
                  torch.autocast{device_type = 'cuda', dtype = self.amp == 'fp16' and torch.float16 or torch.bfloat16}
  local per_epoch = self.loader:num_batches()
  check(per_epoch >= self.accumulate, 'the loader yields %d batches per epoch, fewer than accumulate = %d',
        per_epoch, self.accumulate)
  self.steps_per_epoch = math.floor(per_epoch / self.accumulate)
  self.max_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
  self.eval_every, self.evaluate = cfg.eval_every, cfg.evaluate
  self.out_dir = cfg.out_dir
  self.checkpoint_every = cfg.checkpoint_every
  self.keep_checkpoints = cfg.keep_checkpoints or 2
  self.resume = cfg.resume
  self.overwrite = cfg.overwrite
  self.config, self.metadata = cfg.config, cfg.metadata
  self.tensorboard = cfg.tensorboard
  self.log_every = cfg.log_every or 1
  self.progress = cfg.progress ~= false
  self.plot = cfg.plot == nil and 'svg' or cfg.plot
  self.nonfinite_grad = cfg.nonfinite_grad or 'stop'
  check(self.nonfinite_grad == 'stop' or self.nonfinite_grad == 'skip',
        "option 'nonfinite_grad' must be 'stop' or 'skip', got %s", tostring(self.nonfinite_grad))
  self.skipped_steps = 0
  self.print = cfg.print or function(s) io.stderr:write(s) end
  self.dist = dist_module()
  self.is_main = self.dist == nil or self.dist.is_main()
  self.params = {}
  for _, p in ipairs(self.model:parameters()) do
    if p.requires_grad then self.params[#self.params + 1] = p end
  end
  -- position: the next batch to read; step: optimizer steps done
  self.step, self.epoch, self.batch_index = 0, 0, 0
  self.samples_seen = 0
  self.timing = {data = 0, forward = 0, backward = 0, optimizer = 0}
  self.history = {}
  local gd = cfg.grad_diagnostics
  if gd and (gd.every or 0) > 0 then
    local opts = {model = self.model, print = self.print}
    for k, v in pairs(gd) do opts[k] = v end
    self.diagnostics = require('kinema.diagnostics').GradientMonitor(opts)
  end
  return self
end

function Trainer:log_path() return self.out_dir and (self.out_dir .. '/log.jsonl') end

-- The TensorBoard event file beside log.jsonl (one name, so a run resumed
-- appends to it and an overwritten run removes it).
train.tensorboard_file = 'events.out.tfevents.kinema'

-- The record's numbers as TensorBoard scalars (train/... or eval/...).
function Trainer:_append_tensorboard(record)
  if self.tensorboard == false then return end
  local scalars, group = {}, record.kind == 'eval' and 'eval/' or 'train/'
  for k, v in pairs(record) do
    if type(v) == 'number' and k ~= 'step' and k ~= 'epoch' then scalars[group .. k] = v end
  end
  require('kinema._report').tensorboard_scalars(self.out_dir .. '/' .. train.tensorboard_file, record.step or self.step,
                                                scalars)
end

-- Appends one record; a failed write (full disk, I/O error) is cut back off
-- the file (the log stays whole records) and stops training, after writing a
-- checkpoint of the current step when that still works.
function Trainer:_append_log(record)
  if not (self.is_main and self.out_dir) then return end
  local path = self:log_path()
  local line = json.encode(record) .. '\n'
  local f, err = io.open(path, 'ab')
  local size = f and f:seek('end')
  if f then
    local wrote, werr = f:write(line)
    local closed, cerr = f:close()  -- the buffered record reaches the file here
    if wrote and closed then return self:_append_tensorboard(record) end
    err = werr or cerr
    if size then pcall(sys.truncate, path, size) end
  end
  local saved = 'no checkpoint written: checkpoints are off (checkpoint_every)'
  if self.checkpoint_every then
    if self.checkpoint_step == self.step then
      saved = 'the checkpoint of this step was already written'
    else
      local ok, cerr = pcall(self._write_checkpoint, self)
      saved = ok and string.format("checkpoint '%s' written", self.last_checkpoint)
              or 'no checkpoint written: ' .. tostring(cerr)
    end
  end
  error(string.format("kinema.train: cannot write the training log '%s' at step %d: %s; training stopped (%s)",
                      path, self.step, tostring(err), saved), 0)
end

function Trainer:_state()
  return {model = self.model, optimizer = self.optimizer, scheduler = self.scheduler, device = self.device,
          position = {step = self.step, epoch = self.epoch, batch = self.batch_index,
                      samples_seen = self.samples_seen},
          extra = self.extra, config = self.config, metadata = self.metadata}
end

-- Writes out_dir/step-N.safetensors (rank 0), keeping the newest keep_checkpoints.
function Trainer:save_checkpoint()
  check(self.out_dir ~= nil, "save_checkpoint needs 'out_dir'")
  if self.is_main then self:_write_checkpoint() end
  self.checkpoint_step = self.step
  if self.dist then self.dist.barrier() end
end

-- Rank 0's part of save_checkpoint (no collective: also used when rank 0 alone must stop).
function Trainer:_write_checkpoint()
  local path = string.format('%s/step-%08d.safetensors', self.out_dir, self.step)
  checkpoint.save(path, self:_state())
  local all = checkpoint.list(self.out_dir)
  for i = 1, #all - self.keep_checkpoints do sys.remove(all[i].path) end
  self.last_checkpoint = path
  self.checkpoint_step = self.step
end

-- Loads a checkpoint (path, or the newest in out_dir) and positions the run after it.
function Trainer:load_checkpoint(path)
  path = path or (self.out_dir and checkpoint.latest(self.out_dir))
  if not path then
    -- nothing to resume: the run starts at step 0, so an earlier log is stale
    if self.is_main and self.out_dir then self:_truncate_log(0) end
    return false
  end
  local pos, extra = checkpoint.load(path, self:_state())
  self.step, self.epoch, self.batch_index = pos.step, pos.epoch, pos.batch
  self.samples_seen = pos.samples_seen or 0
  self.extra = extra
  -- the log keeps only the steps this checkpoint contains (a crash may have logged more)
  if self.is_main and self.out_dir then self:_truncate_log(self.step) end
  return path
end

-- A run that does not resume must not mix with an earlier one in out_dir:
-- refuse (nothing is lost) unless overwrite is set, which removes the earlier
-- run's checkpoints and log.
-- What an earlier run left in out_dir ('2 checkpoint(s), log.jsonl'), or nil.
function train.earlier_run(out_dir)
  local old = checkpoint.list(out_dir)
  local log = io.open(out_dir .. '/log.jsonl')
  if log then log:close() end
  if #old == 0 and not log then return nil end
  return string.format('%d checkpoint(s)%s', #old, log and ', log.jsonl' or '')
end

function Trainer:_start_fresh()
  local earlier = train.earlier_run(self.out_dir)
  if not earlier then return end
  check(self.overwrite, "'%s' holds an earlier run (%s): resume it (resume = true) or "
          .. "start over (overwrite = true), or choose another out_dir", self.out_dir, earlier)
  local old = checkpoint.list(self.out_dir)
  for _, c in ipairs(old) do sys.remove(c.path) end
  sys.remove(self:log_path())
  sys.remove(self.out_dir .. '/' .. train.tensorboard_file)
end

-- Keeps the log's whole records of steps <= step (dropping a record cut by a
-- crash and those of steps after the checkpoint), replacing the file atomically.
function Trainer:_truncate_log(step)
  local path = self:log_path()
  local f = io.open(path, 'rb')
  if not f then return end
  local kept = {}
  for line in f:lines() do
    local ok, record = pcall(json.decode, line)
    if ok and type(record) == 'table' and type(record.step) == 'number' and record.step <= step then
      kept[#kept + 1] = line
    end
  end
  f:close()
  local tmp = path .. '.tmp'
  local out, err = io.open(tmp, 'wb')
  local ok = out ~= nil
  if out then
    if #kept > 0 then ok, err = out:write(table.concat(kept, '\n'), '\n') end
    local closed, cerr = out:close()
    ok, err = ok and closed, err or cerr
  end
  if ok then ok, err = pcall(sys.fsync, tmp) end
  if ok then ok, err = pcall(sys.rename, tmp, path) end
  if not ok then pcall(sys.remove, tmp) end
  check(ok, "cannot cut the training log '%s' back to step %d: %s", path, step, tostring(err))
end

-- Temporary files of writes that a kill interrupted: `NAME.tmp` (kinema.json,
-- the log) and `NAME.tmp.PID.N.R` (checkpoints) whose process is gone.
function Trainer:_remove_stale_temporaries()
  for _, name in ipairs(sys.list_dir(self.out_dir)) do
    local pid = name:match('%.tmp%.(%d+)%.%d+%.%d+$')
    local stale = name:match('.%.tmp$') or (pid and not sys.exists('/proc/' .. pid))
    local path = self.out_dir .. '/' .. name
    if stale and sys.is_file(path) then
      sys.remove(path)
      if self.progress then self.print(string.format("removed '%s', left by an interrupted write\n", path)) end
    end
  end
end

local function timed(self, key, fn, ...)
  local sync = tostring(self.device):match('^cuda')
  if sync then torch.synchronize() end
  local t0 = sys.clock()
  local a, b, c = fn(...)
  if sync then torch.synchronize() end
  self.timing[key] = self.timing[key] + (sys.clock() - t0)
  return a, b, c
end

-- Raises naming the step, the non-finite objective(s) and the sample ids.
function Trainer:_check_finite(total, parts, batch)
  local value = scalar(total)
  if is_finite(value) then return value end
  local bad = {}
  for name, v in pairs(parts or {}) do
    local x = scalar(v)
    if type(x) == 'number' and not is_finite(x) and not name:find('.', 1, true) then
      bad[#bad + 1] = string.format('%s = %s', name, tostring(x))
    end
  end
  table.sort(bad)
  error(string.format('kinema.train: non-finite loss (%s) at step %d (epoch %d, batch %d); objective(s): %s; '
                        .. 'sample ids: %s', tostring(value), self.step + 1, self.epoch, self.batch_index,
                      #bad > 0 and table.concat(bad, ', ') or 'the total only (every part finite)',
                      describe_ids(batch)), 0)
end

-- A NaN/Inf gradient norm: raises naming the step, the first parameters with
-- non-finite gradients and the sample ids, or (nonfinite_grad = 'skip') leaves
-- the weights and optimizer state as they are for this step.
function Trainer:_nonfinite_gradient(norm, loss, ids)
  local names = {}
  if self.model.named_parameters then
    for _, pair in ipairs(self.model:named_parameters()) do
      local g = pair[2].grad
      if g and not g:isfinite():all():item() then names[#names + 1] = pair[1] end
    end
  end
  local where = string.format('non-finite gradient norm (%s) with a finite loss (%.6g) at step %d (epoch %d, batch %d); '
                                .. 'parameters: %s; sample ids: %s', norm ~= norm and 'nan' or tostring(norm), loss, self.step + 1, self.epoch,
                              self.batch_index, #names > 0 and table.concat(names, ', ', 1, math.min(#names, 8))
                                .. (#names > 8 and string.format(' ... (%d in all)', #names) or '') or '?',
                              table.concat(ids, '; '))
  if self.nonfinite_grad == 'stop' then
    error('kinema.train: ' .. where .. " (nonfinite_grad = 'skip' skips such steps)", 0)
  end
  self.skipped_steps = self.skipped_steps + 1
  if self.is_main and self.progress then self.print('\nkinema.train: skipped the update: ' .. where .. '\n') end
end

-- The next micro-batch, moving to the next epoch at the end of one.
function Trainer:_next_batch()
  while true do
    if not self.iterator then
      self.iterator = self.loader:iter(self.epoch, self.batch_index)
    end
    local batch = self.iterator()
    if batch ~= nil then
      self.batch_index = self.batch_index + 1
      return batch
    end
    self.iterator = nil
    self.epoch, self.batch_index = self.epoch + 1, 0
  end
end

-- One optimizer step over `accumulate` micro-batches. Returns the mean total
-- loss and the mean of each part.
function Trainer:train_step()
  self.model:train()
  local sums, total_sum, samples, ids = {}, 0, 0, {}
  -- an epoch ends on a step boundary: leftover micro-batches (fewer than accumulate) are skipped
  if self.batch_index >= self.steps_per_epoch * self.accumulate then
    self.iterator = nil
    self.epoch, self.batch_index = self.epoch + 1, 0
  end
  local measure = self.diagnostics and self.diagnostics:due(self.step + 1)
  self.grad_record = nil
  for micro = 1, self.accumulate do
    local batch = timed(self, 'data', self._next_batch, self)
    batch = train.to_device(batch, self.device)
    samples = samples + batch_size(batch)
    ids[#ids + 1] = describe_ids(batch)
    local total, parts, terms = timed(self, 'forward', function()
      if self.autocast then return self.autocast(self.loss_fn, batch, self) end
      return self.loss_fn(batch, self)
    end)
    check(torch.is_tensor(total), 'the loss function returned %s, not a tensor', type(total))
    local value = self:_check_finite(total, parts, batch)
    total_sum = total_sum + value
    for name, v in pairs(parts or {}) do
      local x = scalar(v)
      if type(x) == 'number' then sums[name] = (sums[name] or 0) + x end
    end
    if measure and micro == 1 then
      check(type(terms) == 'table', 'grad_diagnostics needs the loss function to return the weighted terms third '
              .. '(as kinema.losses.combine does)')
      self.grad_record = self.diagnostics:measure(terms, self.step + 1)
    end
    timed(self, 'backward', function()
      local scaled = self.accumulate > 1 and total / self.accumulate or total
      scaled:backward()
    end)
  end
  local grad_norm
  timed(self, 'optimizer', function()
    if self.dist then self.dist.average_gradients(self.params) end
    -- the norm is checked every step (clipping or not): a finite loss can still give NaN/Inf gradients
    grad_norm = scalar(optim.clip_grad_norm(self.params, self.clip_grad or math.huge))
    if is_finite(grad_norm) then
      self.optimizer:step()
    else
      self:_nonfinite_gradient(grad_norm, total_sum / self.accumulate, ids)
    end
    self.optimizer:zero_grad()
    if self.scheduler then self.scheduler:step() end
  end)
  self.step = self.step + 1
  local world = self.dist and self.dist.world_size() or 1
  self.samples_seen = self.samples_seen + samples * world
  self.samples_this_fit = (self.samples_this_fit or 0) + samples * world
  local means = {}
  for name, s in pairs(sums) do means[name] = s / self.accumulate end
  return total_sum / self.accumulate, means, grad_norm, samples * world
end

-- The logged loss and parts as means over the ranks (every rank calls this
-- on the same steps: it is a collective).
function Trainer:_mean_over_ranks(loss, parts)
  local values = {['\0loss'] = loss}
  for k, v in pairs(parts) do values[k] = v end
  values = self.dist.all_reduce_numbers(values, 'avg')
  loss = values['\0loss']
  values['\0loss'] = nil
  return loss, values
end

function Trainer:_progress_line(loss, parts, rate, elapsed)
  local width = 24
  local frac = self.step / self.max_steps
  local filled = math.floor(frac * width + 0.5)
  local eta = rate > 0 and (self.max_steps - self.step) * (elapsed / math.max(1, self.step - self.start_step)) or 0
  local shown = {}
  local names = {}
  for name in pairs(parts) do
    if not name:find('.', 1, true) then names[#names + 1] = name end
  end
  table.sort(names)
  for i = 1, math.min(#names, 6) do shown[i] = string.format('%s %.3f', names[i], parts[names[i]]) end
  return string.format('step %d/%d [%s%s] loss %.4f%s | %.1f clips/s | ETA %s', self.step, self.max_steps,
                       string.rep('=', filled), string.rep(' ', width - filled), loss,
                       #shown > 0 and ' (' .. table.concat(shown, ', ') .. ')' or '', rate,
                       sys.format_duration(eta))
end

-- Runs evaluate(trainer) without autograd, in eval mode; logs and returns the metrics.
function Trainer:run_evaluation()
  if not self.evaluate then return nil end
  self.model:eval()
  local metrics = torch.no_grad(self.evaluate, self)
  self.model:train()
  local record = {kind = 'eval', step = self.step, epoch = self.epoch}
  for k, v in pairs(metrics or {}) do record[k] = scalar(v) end
  self:_append_log(record)
  if self.is_main and self.progress then
    local keys = {}
    for k in pairs(metrics or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = string.format('%s %.4g', k, scalar(metrics[k])) end
    self.print(string.format('\neval @ step %d: %s\n', self.step, table.concat(parts, ', ')))
  end
  return metrics
end

-- The signal every rank received since the loop began ('SIGINT', 'SIGTERM'),
-- or nil; with several ranks, any rank's signal stops all of them at this step.
function Trainer:_stop_requested()
  local sig = signals.pending()
  if not self.dist then return sig end
  local code = sig == 'SIGINT' and 2 or sig and 15 or 0
  local any = self.dist.all_reduce_numbers({code = code}, 'max').code
  return any == 2 and 'SIGINT' or any == 15 and 'SIGTERM' or nil
end

-- Trains until max_steps, or until SIGINT / SIGTERM: then the step under way
-- finishes, a checkpoint is written and the summary says interrupted =
-- 'SIGINT' | 'SIGTERM' (a second signal goes to the previous handler: the
-- REPL's interrupt, or the default end of the process). Returns a summary
-- {steps, last_loss, seconds, clips_per_s, timing, interrupted, checkpoint}.
function Trainer:fit()
  if self.out_dir and self.is_main then
    sys.mkdir(self.out_dir)
    self:_remove_stale_temporaries()
  end
  if not self.resume and self.out_dir and self.is_main then self:_start_fresh() end
  if self.config and self.out_dir and self.is_main then json.write(self.out_dir .. '/config.json', self.config) end
  if self.resume then
    local from = self:load_checkpoint(self.resume ~= true and self.resume or nil)
    if from and self.is_main and self.progress then
      self.print(string.format('resumed from %s at step %d (epoch %d, batch %d)\n', from, self.step, self.epoch,
                               self.batch_index))
    end
  end
  self.start_step = self.step
  -- SIGINT / SIGTERM (SLURM's pre-emption notice): finish the step, checkpoint, return
  signals.catch()
  local interrupted
  local tty = sys.isatty(2)
  local t_start = sys.clock()
  local window_t, window_samples = t_start, 0
  local last_loss
  while self.step < self.max_steps do
    local loss, parts, grad_norm, samples = self:train_step()
    last_loss = loss
    window_samples = window_samples + samples
    local now = sys.clock()
    local rate = window_samples / math.max(1e-9, now - window_t)
    if self.step % self.log_every == 0 or self.step == self.max_steps or self.grad_record then
      if self.dist then loss, parts = self:_mean_over_ranks(loss, parts) end
      local record = {kind = 'train', step = self.step, epoch = self.epoch, loss = loss,
                      lr = self.optimizer.groups[1].lr, clips_per_s = rate, time = now - t_start,
                      samples_seen = self.samples_seen}
      if is_finite(grad_norm) then record.grad_norm = grad_norm end
      if self.skipped_steps > 0 then record.skipped_steps = self.skipped_steps end
      for k, v in pairs(parts) do record[k] = v end
      for k, v in pairs(self.grad_record or {}) do record[k] = v end
      if self.diagnostics then self.diagnostics:observe(record) end
      self:_append_log(record)
      self.history[#self.history + 1] = record
      if self.is_main and self.progress then
        local line = self:_progress_line(loss, parts, rate, now - t_start)
        if tty then self.print('\r' .. line .. '\027[K') else self.print(line .. '\n') end
      end
      window_t, window_samples = now, 0
    end
    if self.eval_every and self.step % self.eval_every == 0 then self:run_evaluation() end
    if self.out_dir and self.checkpoint_every and self.step % self.checkpoint_every == 0 then
      self:save_checkpoint()
    end
    interrupted = self:_stop_requested()
    if interrupted then break end
  end
  signals.release()
  if self.is_main and self.progress and tty then self.print('\n') end
  local seconds = sys.clock() - t_start
  -- the final weights are always in a checkpoint when checkpoints are on
  if self.out_dir and self.checkpoint_every and self.checkpoint_step ~= self.step and self.step > self.start_step then
    self:save_checkpoint()
  end
  if self.is_main and self.out_dir and self.plot then
    local ok, err = pcall(plot.training_log, self:log_path(), self.out_dir .. '/loss.' .. self.plot)
    if not ok then self.print('kinema.train: no plot: ' .. tostring(err) .. '\n') end
  end
  local steps = self.step - self.start_step
  local diag = self.diagnostics and self.diagnostics.measured > 0 and self.diagnostics or nil
  if diag and self.is_main and self.progress then
    self.print(diag:summary() .. string.format('\n(measuring took %.0f%% of the training time)\n',
                                               100 * diag.seconds / math.max(1e-9, seconds)))
  end
  if interrupted and self.is_main then
    self.print(string.format('kinema.train: %s: stopped after step %d of %d%s\n', interrupted, self.step,
                             self.max_steps, self.out_dir and self.checkpoint_every and
                             ('; checkpoint ' .. tostring(self.last_checkpoint)) or ' (no checkpoint: no out_dir)'))
  end
  return {steps = steps, last_loss = last_loss, seconds = seconds, interrupted = interrupted,
          checkpoint = self.last_checkpoint,
          clips_per_s = (self.samples_this_fit or 0) / math.max(1e-9, seconds), timing = self.timing,
          diagnostics = diag and diag:state() or nil}
end

return train
