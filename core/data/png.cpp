#include "core/data/png.h"

#include <vector>

#include <c10/util/Exception.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace kinema::data {

std::string encode_png(const at::Tensor& image) {
  TORCH_CHECK(image.scalar_type() == at::kByte, "encode_png: the image must be uint8, got ", image.scalar_type());
  TORCH_CHECK((image.dim() == 3 && image.size(2) == 3) || image.dim() == 2,
              "encode_png: the image must be [H, W, 3] RGB or [H, W], got ", image.sizes());
  at::Tensor c = image.contiguous().cpu();
  cv::Mat mat(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), c.dim() == 3 ? CV_8UC3 : CV_8UC1,
              c.data_ptr());
  cv::Mat bgr;
  if (c.dim() == 3) cv::cvtColor(mat, bgr, cv::COLOR_RGB2BGR); else bgr = mat;
  std::vector<uchar> bytes;
  TORCH_CHECK(cv::imencode(".png", bgr, bytes), "encode_png: OpenCV could not encode the image");
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace kinema::data
