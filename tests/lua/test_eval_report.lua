-- kinema.eval suites and reports: run_suite, markdown_table, json_encode / write_json.
local T = require 'kinema.test'
local eval = require('kinema').eval


T.test('run_suite runs evals in order with the context, without autograd', function()
  local seen = {}
  local evals = {
    {name = 'ret', fn = function(ctx)
      seen[#seen + 1] = 'ret'
      local x = torch.ones(2, {requires_grad = true})
      T.is_true(not (x * 2).requires_grad, 'evals run under no_grad')
      return {R1 = ctx.base + 1, MedR = torch.tensor(3.0)}
    end},
    {name = 'qa', fn = function(ctx) seen[#seen + 1] = 'qa'; return {acc = ctx.base * 10} end},
  }
  local results = eval.run_suite(evals, {base = 4})
  T.eq(seen, {'ret', 'qa'})
  T.eq(results[1].name, 'ret')
  T.eq(results[1].metrics, {R1 = 5, MedR = 3})
  T.eq(results[2].metrics, {acc = 40})
  T.is_true(type(results[1].cpu_seconds) == 'number')
end)

T.test('run_suite names the failing eval; continue_on_error records it', function()
  local evals = {
    {name = 'good', fn = function() return {a = 1} end},
    {name = 'broken', fn = function() error('boom') end},
    {name = 'bad_value', fn = function() return {a = 'x'} end},
  }
  T.raises(function() eval.run_suite(evals, {}) end, "eval 'broken' failed")
  local results = eval.run_suite(evals, {}, {continue_on_error = true})
  T.eq(results[1].metrics, {a = 1})
  T.is_true(results[2].error:find('boom', 1, true) ~= nil, results[2].error)
  T.is_true(results[3].error:find("metric 'a'", 1, true) ~= nil, results[3].error)
  T.raises(function() eval.run_suite({{name = 'x', fn = function() return {} end}, {name = 'x', fn = function() return {} end}}) end,
           "duplicate eval name 'x'")
  T.raises(function() eval.run_suite({{name = 'x'}}) end, 'must be {name = string, fn = function(ctx)}')
  -- stop_after_error: the evals after the failed one do not run
  local ran_after = false
  results = eval.run_suite({evals[1], evals[2], {name = 'after', fn = function() ran_after = true; return {} end}}, {},
                           {continue_on_error = true, stop_after_error = true})
  T.eq(#results, 2)
  T.is_true(results[2].error:find('boom', 1, true) ~= nil)
  T.eq(ran_after, false)
end)

T.test('markdown_table: one row per metric, sorted, a failed eval marked with its first line', function()
  local md = eval.markdown_table({
    {name = 'msrvtt', metrics = {t2v_R1 = 43.21, MedR = 2}},
    {name = 'cap|x', metrics = {}, error = 'bad\nthing'},
  })
  T.eq(md, table.concat({
    '| eval | metric | value |',
    '| --- | --- | ---: |',
    '| msrvtt | MedR | 2.00 |',
    '| msrvtt | t2v_R1 | 43.21 |',
    '| cap\\|x | FAILED | bad |',
  }, '\n') .. '\n')
  T.eq(eval.markdown_table({{name = 'a', metrics = {x = 1 / 3}}}, {precision = 4}):match('0%.3333') ~= nil, true)
end)

T.test('json_encode: sorted keys, escaping, arrays, numbers', function()
  T.eq(eval.json_encode({b = 1, a = {2.5, 'x'}, c = true}), '{"a":[2.5,"x"],"b":1,"c":true}')
  T.eq(eval.json_encode('q"\\\n\t\1/é'), '"q\\"\\\\\\n\\t\\u0001/é"')
  T.eq(eval.json_encode({}), '{}')
  T.eq(eval.json_encode({[1] = 'a', [3] = 'c'}), '{"1":"a","3":"c"}')
  T.eq(eval.json_encode(0.1), '0.10000000000000001')
  T.eq(eval.json_encode(-3), '-3')
  T.eq(eval.json_encode(torch.tensor({{1, 2}})), '[[1,2]]')
  T.raises(function() eval.json_encode({x = 0 / 0}) end, 'value.x is nan')
  T.raises(function() eval.json_encode({f = print}) end, 'cannot encode a function at value.f')
end)

T.test('write_json writes atomically and round-trips through Python', function()
  local dir = T.tmpdir()
  local path = dir .. '/results.json'
  local results = eval.run_suite({{name = 'r "1"', fn = function() return {R1 = 12.5} end}}, {})
  eval.write_json(path, results)
  local f = io.open(path, 'rb'); local text = f:read('*a'); f:close()
  T.is_true(text:find('"R1":12.5', 1, true) ~= nil, text)
  T.eq(io.open(path .. '.tmp', 'rb'), nil, 'no temporary file left')
  -- a value JSON cannot hold leaves the previous file untouched
  T.raises(function() eval.write_json(path, {bad = math.huge}) end, 'JSON cannot represent')
  f = io.open(path, 'rb'); T.eq(f:read('*a'), text); f:close()
  T.raises(function() eval.write_json(dir .. '/missing/dir/x.json', {}) end, 'cannot open')
  -- cross-check with an independent JSON parser when the system Python is there
  local py = io.open('/usr/bin/python3', 'rb')
  if py then
    py:close()
    local p = io.popen("/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); " ..
                       "print(d[0][\"name\"], d[0][\"metrics\"][\"R1\"])' " .. path)
    T.eq(p:read('*l'), 'r "1" 12.5')
    p:close()
  end
  os.remove(path); os.remove(dir)
end)
