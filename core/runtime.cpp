#include "core/runtime.h"
