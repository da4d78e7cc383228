// Argument checks shared by the operators' backends. Every message starts
// with "kinema::<op>: argument '<name>'" so a Lua or Python user sees which
// call and which argument was wrong.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

namespace kinema::ops::detail {

inline void check_tensor(const char* op, const char* arg, const at::Tensor& t, int64_t dim) {
  TORCH_CHECK(t.defined(), "kinema::", op, ": argument '", arg, "' is an undefined tensor");
  TORCH_CHECK(t.dim() == dim, "kinema::", op, ": argument '", arg, "' must have ", dim,
              " dimensions, got ", t.dim(), " (shape ", t.sizes(), ")");
}

inline void check_floating(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "kinema::", op,
              ": argument '", arg, "' must be float32 or float64, got ", t.scalar_type());
}

inline void check_same_dtype(const char* op, const char* arg, const at::Tensor& t,
                             const char* ref_arg, const at::Tensor& ref) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "kinema::", op, ": argument '", arg,
              "' has dtype ", t.scalar_type(), " but '", ref_arg, "' has ", ref.scalar_type());
}

inline void check_same_device(const char* op, const char* arg, const at::Tensor& t,
                              const char* ref_arg, const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), "kinema::", op, ": argument '", arg, "' is on ",
              t.device(), " but '", ref_arg, "' is on ", ref.device());
}

inline void check_size(const char* op, const char* arg, const at::Tensor& t, int64_t dim,
                       int64_t expected, const char* what) {
  TORCH_CHECK(t.size(dim) == expected, "kinema::", op, ": argument '", arg, "' has size ",
              t.size(dim), " in dimension ", dim, " but ", what, " is ", expected, " (shape ",
              t.sizes(), ")");
}

}  // namespace kinema::ops::detail
