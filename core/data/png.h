#pragma once
// PNG encoding of report images (OpenCV's encoder).
#include <string>

#include <ATen/ATen.h>

namespace kinema::data {

// The PNG file bytes of a uint8 image [H, W, 3] RGB or [H, W] grey (any device,
// any strides); a wrong dtype or shape is an error naming it.
std::string encode_png(const at::Tensor& image);

}  // namespace kinema::data
