#pragma once
// The torch.* functions, defined in wrap_torch.cpp; wrap_tensor.cpp (the Tensor
// metatable and the kinema._torch module) installs them.
#include "core/runtime.h"

namespace kinema::lua {

// Sets the native torch.* functions, dtypes, torch.cuda, torch.ops and the
// dtype / device / Size metatables on the table at index `torch`.
void fill_torch_table(lua_State* L, int torch);

}  // namespace kinema::lua
