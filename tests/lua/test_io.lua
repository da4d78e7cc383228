-- File formats from Lua (core/wrap_io.cpp -> torch.save_safetensors & co.).
-- Fixtures come from tests/fixtures/make_io_fixture.py (numpy / torch.save);
-- their values follow the formulas noted there.
local T = require 'kinema.test'

local FIX = 'tests/fixtures/'


T.test('safetensors round trip with metadata and every common dtype', function()
  local path = T.tmpname('.safetensors')
  local tensors = {
    w = torch.arange(6):to(torch.float32):view(2, 3),
    h = torch.tensor({1.5, -2}):to(torch.float16),
    b = torch.tensor({1, -2.5}):to(torch.bfloat16),
    i = torch.tensor({7, -7}, {dtype = torch.int64}),
    m = torch.tensor({true, false}),
    s = torch.tensor(4.25),
    e = torch.zeros(0, 3),
  }
  torch.save_safetensors(path, tensors, {epoch = 3, name = 'run'})
  local back, meta, names = torch.load_safetensors(path)
  for k, v in pairs(tensors) do T.eq(back[k], v, k) end
  T.eq(meta, {epoch = '3', name = 'run'})
  T.eq(#names, 7)
  T.eq(names[1], 'i')  -- 8-byte dtypes first, as the reference writer orders them
  os.remove(path)
end)

T.test('safetensors fixture written by the independent Python writer', function()
  local t, meta = torch.load_safetensors(FIX .. 'io_reference.safetensors')
  T.eq(t.weight, (torch.arange(6):to(torch.float32) * 0.5 - 1):view(2, 3))
  T.eq(t['a.b.c'], torch.tensor({7.0}))
  T.eq(meta.format, 'pt')
end)

T.test('torch.save state dicts, checkpoints and TorchScript archives', function()
  local sd, names = torch.load(FIX .. 'io_state_dict.pt')
  T.eq(names[1], 'encoder.weight')
  T.eq(sd['encoder.weight'], torch.arange(12):to(torch.float32):view(3, 4))
  T.eq(sd['encoder.weight_t'], sd['encoder.weight']:t())
  T.eq(sd.steps, torch.tensor({0, -7, -14}, {dtype = torch.int64}))
  local ckpt = torch.load_pt(FIX .. 'io_checkpoint.pt')
  T.eq(ckpt['model.bias'], torch.ones(2))
  T.eq(ckpt.epoch, nil)
  local legacy = torch.load(FIX .. 'io_legacy.pt')  -- pre-1.6 (non-zip) torch.save
  T.eq(legacy.bias, torch.ones(2))
  local script = torch.load_torchscript(FIX .. 'io_script.pt')
  T.eq(script['norm.running_mean'], torch.full({2}, 0.25))
end)

T.test('npz and npy', function()
  local r = torch.load_npz(FIX .. 'io_regions_compressed.npz')
  T.eq(r.boxes, (torch.arange(8):to(torch.float32) * 10):view(2, 4))
  T.eq(r.num_boxes, torch.tensor(2, {dtype = torch.int64}))
  local path = T.tmpname('.npz')
  torch.save_npz(path, {a = torch.ones(2, 2), b = torch.tensor({true})}, {compress = true})
  local back = torch.load_npz(path)
  T.eq(back.a, torch.ones(2, 2))
  T.eq(back.b, torch.tensor({true}))
  os.remove(path)
  local npy = T.tmpname('.npy')
  torch.save_npy(npy, torch.arange(3))
  T.eq(torch.load_npy(npy), torch.arange(3))
  os.remove(npy)
end)

T.test('errors name the file and the problem', function()
  T.raises(function() torch.load_safetensors('/nonexistent.safetensors') end, '/nonexistent.safetensors')
  T.raises(function() torch.load_torchscript(FIX .. 'io_legacy.pt') end, 'legacy')
  T.raises(function() torch.load(FIX .. 'io_f4.npy') end, 'not a PyTorch file')
  T.raises(function() torch.load_npy(FIX .. 'io_object.npy') end, 'object arrays')
  T.raises(function() torch.save_safetensors(T.tmpname('.st'), {w = 'not a tensor'}) end, "entry 'w'")
  T.raises(function() torch.save_safetensors(T.tmpname('.st'), {w = torch.ones(1)}, {k = {}}) end, 'metadata')
  T.raises(function() torch.save_npz(T.tmpname('.npz'), {[1] = torch.ones(1)}) end, 'keys must be strings')
end)
