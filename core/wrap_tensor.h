#pragma once
// Shared by wrap_tensor.cpp (the Tensor metatable, kinema._torch) and
// wrap_torch.cpp (the torch.* functions).
#include "core/runtime.h"

namespace kinema::lua {

// Sets the native torch.* functions, dtypes, torch.cuda, torch.ops and the
// dtype / device / Size metatables on the table at index `torch`.
void fill_torch_table(lua_State* L, int torch);

}  // namespace kinema::lua
