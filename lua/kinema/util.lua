-- kinema.util: the small table helpers every Lua module shares (no dependencies).
--   util.copy(t)              a deep copy
--   util.merge_into(into, from)  overrides `into` with `from` key by key (nested
--                             records merge, arrays replace); returns into
--   util.merge(a, b)          a merged copy: merge_into(copy(a), b)
local util = {}

function util.copy(t)
  if type(t) ~= 'table' then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = util.copy(v) end
  return out
end

function util.merge_into(into, from)
  for k, v in pairs(from or {}) do
    if type(v) == 'table' and #v == 0 and next(v) ~= nil and type(into[k]) == 'table' then
      util.merge_into(into[k], v)
    else
      into[k] = util.copy(v)
    end
  end
  return into
end

function util.merge(a, b) return util.merge_into(util.copy(a), b) end

return util
