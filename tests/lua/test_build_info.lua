-- What `kinema --version` reports about the build: the LibTorch it runs on,
-- and "CUDA none" exactly when the binary is not linked to LibTorch's CUDA
-- library (else the CUDA and cuDNN versions it was built with).
local T = require 'kinema.test'
local kinema = require 'kinema'

local function run(cmd)
  local p = io.popen(cmd)
  local text = p:read('*a')
  p:close()
  return text
end

T.test('kinema --version names LibTorch, CUDA (or none), cuDNN and LuaJIT', function()
  local exe = kinema.executable()
  local line = run(string.format("'%s' --version", exe)):gsub('%s+$', '')
  T.eq(line, _KINEMA_VERSION)
  local torch_version, cuda = line:match('^kinema %S+ %(LibTorch ([%d.]+)[^,]*, (CUDA [^,]+[^L]*)LuaJIT [%d.]+[^)]*%)$')
  T.is_true(torch_version ~= nil, 'unexpected --version line: ' .. line)
  local linked_cuda = run(string.format("ldd '%s'", exe)):find('libtorch_cuda%.so') ~= nil
  if linked_cuda then
    T.is_true(cuda:match('^CUDA %d+%.%d+, cuDNN [%d.none]+, $') ~= nil, 'CUDA build, but: ' .. line)
  else
    T.eq(cuda, 'CUDA none, ')
  end
end)
