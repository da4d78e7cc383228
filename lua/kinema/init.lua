-- require 'kinema' returns the library table. Submodules (kinema.nn,
-- kinema.optim, kinema.data, kinema.losses, kinema.models, kinema.eval,
-- kinema.train, ...) load on first use.
--
-- Where new things go (the build globs new .cpp files and Lua tests). Every
-- options table is strict: Lua modules check theirs with kinema.util.check_options,
-- bindings read theirs through Options (core/runtime.h); help texts go to kinema.help.
--  * an objective: lua/kinema/losses/NAME.lua calling losses.register('NAME',
--    fn) (selected by name in a recipe's weights), fn reading its opts through
--    U.options('NAME', opts, {...names}) (a misspelled option is refused), its
--    name added to `builtin` in losses/init.lua for :help, its definition and
--    options in docs/objectives.md, tests in tests/lua/test_losses_*.lua;
--  * an encoder: a Lua nn.Module (kinema.nn) needs no registration; a C++
--    block goes in models/NAME.cpp with KINEMA_REGISTER_BLOCK (models/block.h),
--    its config keys read through a ConfigKeys table (models/adapter.h), and
--    is then kinema.models.NAME and nn.NAME; a paper's whole model is a
--    lua/kinema/models/PAPER.lua;
--  * a data format: a reader in core/data/formats_*.cpp declared in
--    core/data/formats.h and named in read_format (core/data/formats_dispatch.cpp),
--    reached from Lua as data.read{format = 'NAME'}; tests in tests/cpp/data;
--  * a recipe: lua/kinema/recipes/NAME.lua (the spec kinema.recipe describes),
--    a scripts/pretrain_NAME.lua calling recipe.main, and an entry in
--    tests/lua/test_recipes.lua and scripts/suites/synth_recipes.lua;
--  * an operator: its schema in ops/registration.cpp, its kernels registered
--    with TORCH_LIBRARY_IMPL in ops/NAME.cpp (or per backend in ops/cpu/ and
--    ops/cuda/), a C++ wrapper in ops/ops.h; Lua calls it as kinema.ops.NAME
--    with no binding code; tests in tests/cpp/ops and tests/lua/test_ops.lua.
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
