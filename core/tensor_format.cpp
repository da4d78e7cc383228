#include "core/tensor_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace kinema {

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kLong: return "torch.int64";
    case at::kInt: return "torch.int32";
    case at::kShort: return "torch.int16";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kBool: return "torch.bool";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return std::string("torch.") + c10::toString(t);
  }
}

namespace {

// How every element of the tensor is printed, decided once from its values
// (the rules of torch/_tensor_str.py: integer mode, fixed or scientific).
struct ElementFormat {
  enum Kind { kBool, kInteger, kIntFloat, kFixed, kScientific } kind = kFixed;
  int precision = 4;
  int width = 1;
};

std::string format_value(double v, const ElementFormat& f) {
  char buf[64];
  switch (f.kind) {
    case ElementFormat::kBool: return v != 0 ? "True" : "False";
    case ElementFormat::kInteger: std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v)); break;
    case ElementFormat::kIntFloat:
      if (!std::isfinite(v)) std::snprintf(buf, sizeof buf, "%s", std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
      else std::snprintf(buf, sizeof buf, "%.0f.", v);
      break;
    case ElementFormat::kFixed:
      if (!std::isfinite(v)) std::snprintf(buf, sizeof buf, "%s", std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
      else std::snprintf(buf, sizeof buf, "%.*f", f.precision, v);
      break;
    case ElementFormat::kScientific:
      if (!std::isfinite(v)) std::snprintf(buf, sizeof buf, "%s", std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
      else std::snprintf(buf, sizeof buf, "%.*e", f.precision, v);
      break;
  }
  return buf;
}

// The elements that will be shown (edges only when summarised).
at::Tensor shown_elements(const at::Tensor& t, bool summarize, int64_t edge) {
  if (!summarize || t.dim() == 0) return t.reshape({-1});
  std::vector<at::Tensor> parts;
  if (t.size(0) > 2 * edge) {
    for (int64_t i = 0; i < edge; ++i) parts.push_back(shown_elements(t[i], summarize, edge));
    for (int64_t i = t.size(0) - edge; i < t.size(0); ++i) parts.push_back(shown_elements(t[i], summarize, edge));
  } else {
    for (int64_t i = 0; i < t.size(0); ++i) parts.push_back(shown_elements(t[i], summarize, edge));
  }
  return parts.empty() ? t.reshape({-1}) : at::cat(parts);
}

ElementFormat choose_format(const at::Tensor& values, at::ScalarType dtype, int precision) {
  ElementFormat f;
  f.precision = precision;
  if (dtype == at::kBool) {
    f.kind = ElementFormat::kBool;
  } else if (!at::isFloatingType(dtype)) {
    f.kind = ElementFormat::kInteger;
  } else {
    at::Tensor v = values.to(at::kDouble);
    at::Tensor finite = v.masked_select(at::isfinite(v));
    if (finite.numel() == 0 || at::equal(finite, finite.round())) {
      f.kind = ElementFormat::kIntFloat;
      if (finite.numel() > 0) {
        double mx = finite.abs().max().item<double>();
        if (mx > 1e8) f.kind = ElementFormat::kScientific;
      }
    } else {
      at::Tensor nz = finite.abs().masked_select(finite != 0);
      f.kind = ElementFormat::kFixed;
      if (nz.numel() > 0) {
        double mx = nz.max().item<double>(), mn = nz.min().item<double>();
        if (mx / mn > 1000.0 || mx > 1e8 || mn < 1e-4) f.kind = ElementFormat::kScientific;
      }
    }
  }
  at::Tensor v = values.to(at::kDouble).contiguous();
  const double* p = v.data_ptr<double>();
  for (int64_t i = 0; i < v.numel(); ++i)
    f.width = std::max<int>(f.width, static_cast<int>(format_value(p[i], f).size()));
  return f;
}

void format_rec(std::ostringstream& os, const at::Tensor& t, const ElementFormat& f, bool summarize,
                const FormatOptions& o, int indent) {
  if (t.dim() == 0) {
    std::string s = format_value(t.item<double>(), f);
    os << std::string(f.width - s.size(), ' ') << s;
    return;
  }
  const int64_t n = t.size(0);
  std::vector<int64_t> idx;
  bool ellipsis = summarize && n > 2 * o.edge_items;
  if (ellipsis) {
    for (int64_t i = 0; i < o.edge_items; ++i) idx.push_back(i);
    idx.push_back(-1);
    for (int64_t i = n - o.edge_items; i < n; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  }
  os << "[";
  if (t.dim() == 1) {
    int col = indent + 1;
    for (size_t k = 0; k < idx.size(); ++k) {
      std::string item = idx[k] < 0 ? "..." : "";
      if (idx[k] >= 0) {
        std::string s = format_value(t[idx[k]].item<double>(), f);
        item = std::string(f.width - s.size(), ' ') + s;
      }
      if (k > 0) {
        os << ",";
        if (col + 2 + static_cast<int>(item.size()) > o.line_width) {
          os << "\n" << std::string(indent + 1, ' ');
          col = indent + 1;
        } else {
          os << " ";
          col += 2;
        }
      }
      os << item;
      col += static_cast<int>(item.size());
    }
  } else {
    for (size_t k = 0; k < idx.size(); ++k) {
      if (k > 0) os << "," << std::string(t.dim() - 1, '\n') << std::string(indent + 1, ' ');
      if (idx[k] < 0) {
        os << "...";
      } else {
        format_rec(os, t[idx[k]], f, summarize, o, indent + 1);
      }
    }
  }
  os << "]";
}

}  // namespace

std::string format_tensor(const at::Tensor& t_in, const FormatOptions& o) {
  if (!t_in.defined()) return "tensor(undefined)";
  at::Tensor t = t_in.detach();
  if (t.device().type() != at::kCPU) t = t.cpu();
  std::ostringstream os;
  os << "tensor(";
  const bool summarize = t.numel() > o.threshold;
  if (t.is_complex()) {
    os << "<complex values not shown>";
  } else if (t.numel() == 0) {
    os << "[]";
  } else {
    at::Tensor shown = shown_elements(t, summarize, o.edge_items);
    ElementFormat f = choose_format(shown, t.scalar_type(), o.precision);
    format_rec(os, t, f, summarize, o, 7);
  }
  if (t.dim() != 1 || summarize || t.numel() == 0) {
    os << ", shape=(";
    for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
    os << (t.dim() == 1 ? ",)" : ")");
  }
  os << ", dtype=" << dtype_name(t.scalar_type());
  if (t_in.device().type() != at::kCPU) os << ", device='" << t_in.device() << "'";
  if (t_in.requires_grad()) {
    if (t_in.grad_fn()) {
      os << ", grad_fn=<" << t_in.grad_fn()->name() << ">";
    } else {
      os << ", requires_grad=True";
    }
  }
  os << ")";
  return os.str();
}

}  // namespace kinema
