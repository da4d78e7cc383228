-- Strict options: every options table (bindings and Lua modules) refuses a key
-- it does not read, naming the function, the key and the closest known key.
local T = require 'kinema.test'
local torch = require 'torch'
local kinema = require 'kinema'
local util = require 'kinema.util'
local data, losses, train, recipe = kinema.data, kinema.losses, kinema.train, kinema.recipe

T.test('util.closest: a typo finds its word, another word finds nothing', function()
  T.eq(util.closest('num_wokers', {'seed', 'num_workers', 'num_frames'}), 'num_workers')
  T.eq(util.closest('bais', {'bias', 'in_features'}), 'bias')
  T.eq(util.closest('zzz', {'batch_size', 'seed'}), nil)
  T.eq(util.unknown_option_message('f', 'zzz', {'b', 'a'}), "f: unknown option 'zzz' (known: a, b)")
  T.eq(util.unknown_option_message('f', 'x', {}), "f: unknown option 'x' (it takes no options)")
end)

T.test('data.Loader: a misspelled option or group option is refused with the closest known one', function()
  local ds = data.dataset{{id = 'a', video_path = 'missing.mp4', captions = {'a cat'}}}
  T.raises(function() data.Loader(ds, {batch_size = 4, num_wokers = 0}) end,
           "data.Loader: unknown option 'num_wokers' (did you mean 'num_workers'?)")
  T.raises(function() data.Loader(ds, {num_workers = 0, detections = {kk = 3}}) end,
           "data.Loader: unknown option 'detections.kk' (did you mean 'detections.k'?)")
  T.raises(function() data.Loader(ds, {zzz = 1}) end, "data.Loader: unknown option 'zzz' (known: anchor, batch_size")
  T.raises(function() data.Loader(ds, {size = 'big'}) end, "data.Loader: option 'size' must be a number")
  T.raises(function() data.Loader(ds, {size = 112.5}) end, "data.Loader: option 'size' must be an integer")
  T.raises(function() data.Loader(ds, {shuffle = 'yes'}) end, "data.Loader: option 'shuffle' must be a boolean")
  T.raises(function() data.dataset{{id = 'a', vidoe_path = 'x.mp4'}} end,
           "data.dataset: element 1: unknown option 'vidoe_path' (did you mean 'video_path'?)")
  local loader = data.Loader(ds, {batch_size = 1, num_workers = 1, shuffle = false})
  T.eq(loader:num_batches(), 1)
  loader:close()
end)

T.test('a loss: a misspelled option of an objective, or an objective name in combine, is refused', function()
  local v = torch.tensor({{1, 0}, {0, 1}})
  local inputs = {video_emb = v, text_emb = v}
  T.raises(function() losses.vtc(inputs, {tua = 0.1}) end,
           "kinema.losses.vtc: unknown option 'tua' (did you mean 'tau'?)")
  T.raises(function() losses.combine({vtc = 1}, inputs, {vtcc = {tau = 0.1}}) end,
           "kinema.losses.combine: unknown option 'vtcc' (did you mean 'vtc'?)")
  T.raises(function() losses.combine({vtc = 1}, inputs, {vtc = {tua = 0.1}}) end,
           "kinema.losses.vtc: unknown option 'tua' (did you mean 'tau'?)")
  -- the spelled option is read: tau = 0.5 on orthonormal rows gives CE of logits {2, 0}
  local loss = losses.vtc(inputs, {tau = 0.5})
  T.close(loss:item(), math.log(1 + math.exp(-2)), {atol = 1e-5})
end)

T.test('train.Trainer: a misspelled option is refused before anything runs', function()
  T.raises(function()
    train.Trainer{model = {}, optimizer = {}, loader = {}, loss = function() end, max_steps = 1, chekpoint_every = 5}
  end, "kinema.train.Trainer: unknown option 'chekpoint_every' (did you mean 'checkpoint_every'?)")
end)

T.test('a recipe flag: a misspelled key names the closest config key', function()
  T.raises(function() recipe.parse_args({'--train.num_wokers', '0'}, recipe.common) end,
           'unknown option --train.num_wokers (did you mean --train.num_workers?)')
  T.raises(function() recipe.parse_args({'--trian.lr', '0.1'}, recipe.common) end,
           "unknown option --trian.lr (no config table 'trian') (did you mean --train?)")
  T.raises(function() recipe.parse_args({'--qqqq', '1'}, recipe.common) end, 'unknown option --qqqq')
  T.eq(recipe.parse_args({'--train.num_workers', '0'}, recipe.common).train.num_workers, 0)
end)

T.test('kinema.dist.init and torch.format read their options strictly too', function()
  T.raises(function() kinema.dist.init{wolrd_size = 1} end,
           "kinema.dist.init: unknown option 'wolrd_size' (did you mean 'world_size'?)")
  T.raises(function() torch.format(torch.ones(2), {precison = 2}) end,
           "torch.format: unknown option 'precison' (did you mean 'precision'?)")
end)
