-- kinema.util: the small table helpers every Lua module shares (no dependencies).
--   util.copy(t)              a deep copy
--   util.merge_into(into, from)  overrides `into` with `from` key by key (nested
--                             records merge, arrays replace); returns into
--   util.merge(a, b)          a merged copy: merge_into(copy(a), b)
--   util.concat(a, b)         a new list: the items of a, then those of b
--   util.checker(prefix)      a module's check(cond, fmt, ...)
--   util.check_options(func, opts, known)   refuses a key of opts not in known:
--                             "FUNC: unknown option 'tua' (did you mean 'tau'?)"
--   util.closest(name, names), util.unknown_option_message(func, key, known)
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

function util.concat(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end

-- The argument check of a module: check(cond, fmt, ...) raises prefix ..
-- string.format(fmt, ...) at the caller of the function that checks.
function util.checker(prefix)
  return function(cond, fmt, ...)
    if not cond then error(prefix .. string.format(fmt, ...), 3) end
  end
end

-- ---- strict options ------------------------------------------------------------------

-- Edits (insert, delete, substitute, swap two neighbours) turning a into b:
-- the optimal string alignment distance, so 'tua' is one edit from 'tau'.
local function edit_distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = {[0] = i} end
  for j = 1, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

-- The name of names closest to name when it is close (at most a third of the
-- longer name edited: a typo, not another word), else nil; ties go to the
-- first in sorted order.
function util.closest(name, names)
  local sorted = {}
  for i, n in ipairs(names) do sorted[i] = n end
  table.sort(sorted)
  local nearest, best
  for _, n in ipairs(sorted) do
    local d = edit_distance(name, n)
    if not best or d < best then nearest, best = n, d end
  end
  if nearest and best * 3 <= math.max(#name, #nearest) then return nearest end
  return nil
end

-- "FUNC: unknown option 'KEY' (did you mean 'NEAR'?)", or "(known: a, b, ...)" when no
-- known name is close (util.closest): the rule of the C++ bindings' options
-- reader (core/runtime.h, Options) too.
function util.unknown_option_message(func, key, known)
  local names, seen = {}, {}
  for _, n in ipairs(known) do
    if not seen[n] then seen[n] = true; names[#names + 1] = n end
  end
  table.sort(names)
  local message = string.format("%s: unknown option '%s'", func, tostring(key))
  if #names == 0 then return message .. ' (it takes no options)' end
  local near = util.closest(tostring(key), names)
  if near then return string.format("%s (did you mean '%s'?)", message, near) end
  return string.format('%s (known: %s)', message, table.concat(names, ', '))
end

-- Refuses a key of opts that is not among known (a list of names, or a table
-- whose keys are the names, e.g. the defaults): raises unknown_option_message
-- at the caller's caller (level 3 by default). Returns opts.
function util.check_options(func, opts, known, level)
  if opts == nil then return opts end
  local names, is_known = {}, {}
  if #known > 0 then
    for _, n in ipairs(known) do names[#names + 1] = n; is_known[n] = true end
  else
    for n in pairs(known) do names[#names + 1] = n; is_known[n] = true end
  end
  for k in pairs(opts) do
    if not is_known[k] then error(util.unknown_option_message(func, k, names), level or 3) end
  end
  return opts
end

return util
