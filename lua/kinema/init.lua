-- require 'kinema' returns the library table. Submodules (kinema.nn,
-- kinema.optim, kinema.data, kinema.losses, kinema.models, kinema.eval,
-- kinema.train, ...) load on first use.
local torch = require 'torch'

local kinema = {
  version = _KINEMA_VERSION,
  ops = torch.ops.kinema,  -- kinema's own operators (ops/), through the dispatcher
  -- the running kinema binary (to start ranks or subprocesses with the same build)
  executable = function() return require('kinema._dist').executable() end,
}

return setmetatable(kinema, {
  __index = function(t, key)
    if type(key) ~= 'string' then return nil end
    local name = 'kinema.' .. key
    if package.loaded[name] == nil and not package.preload[name]
        and not package.searchpath(name, package.path) then
      return nil
    end
    local m = require(name)
    rawset(t, key, m)
    return m
  end,
})
