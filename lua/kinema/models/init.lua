-- kinema.models: the C++ blocks of models/ as constructors taking a config
-- table (kinema.models.VideoEncoder{embed_dim = 768, ...}): every block that
-- models/*.cpp registers with KINEMA_REGISTER_BLOCK, found by name in that
-- registry (no list to keep here); and the four
-- papers' architectures as Lua model definitions that recipes reuse:
--   kinema.models.stoa.build(cfg)     STOA-VLP
--   kinema.models.svilm.build(cfg)    S-ViLM
--   kinema.models.oatrans.build(cfg)  OA-Trans
--   kinema.models.demovlp.build(cfg)  DemoVLP
-- Every block is an nn module: mix it with Lua modules, replace it with one, or
-- add one, without recompiling. Forward returns a table of named outputs.
local nn = require 'kinema.nn'
local native = require 'kinema._models'

local M = {}

-- A copy of `defaults` overridden by `cfg`; nested option tables merge key by
-- key, arrays (e.g. grouping_layers) are replaced whole.
function M.merge(defaults, cfg)
  local out = {}
  for k, v in pairs(defaults or {}) do out[k] = v end
  for k, v in pairs(cfg or {}) do
    local is_record = type(v) == 'table' and #v == 0 and next(v) ~= nil
    if is_record and type(out[k]) == 'table' then
      out[k] = M.merge(out[k], v)
    else
      out[k] = v
    end
  end
  return out
end

local papers = {stoa = true, svilm = true, oatrans = true, demovlp = true}
return setmetatable(M, {
  __index = function(t, key)
    if papers[key] then
      local m = require('kinema.models.' .. key)
      rawset(t, key, m)
      return m
    end
    if type(key) == 'string' and native.doc(key) ~= nil then  -- a registered C++ block
      local ctor = function(config) return nn.Native(key, config or {}) end
      rawset(t, key, ctor)
      return ctor
    end
  end,
})
