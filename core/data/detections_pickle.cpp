// A minimal unpickler for the dicts numpy.save writes into object arrays, and
// an .npz member walk that hands numeric members to kinema::io::parse_npy.
#include "core/data/detections_pickle.h"

#include "core/io/npz.h"

#include <zip.h>

#include <cstring>
#include <memory>
#include <vector>

namespace kinema::data {

namespace {

// The Python values the payload can hold.
struct PyValue;
using Py = std::shared_ptr<PyValue>;
struct PyValue {
  enum Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Global, Dtype, Array, Mark } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;                            // Str, Bytes, Global ("module.name"), Dtype descr kind
  char byte_order = '<';                    // Dtype
  std::vector<Py> items;                    // List, Tuple, Array of objects
  std::vector<std::pair<Py, Py>> entries;   // Dict
  at::Tensor tensor;                        // Array of numbers
  bool object_array = false;                // Array built from an object dtype
};

Py make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

at::ScalarType scalar_type_of(const std::string& kind, const std::string& what) {
  static const std::pair<const char*, at::ScalarType> table[] = {
      {"f8", at::kDouble}, {"f4", at::kFloat}, {"f2", at::kHalf}, {"i8", at::kLong},
      {"i4", at::kInt},    {"i2", at::kShort}, {"i1", at::kChar}, {"u1", at::kByte},
      {"b1", at::kBool}};
  for (const auto& [k, t] : table)
    if (kind == k) return t;
  TORCH_CHECK(false, what, ": unsupported numpy dtype '", kind, "' in the pickled dict");
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, std::string what) : data_(bytes), what_(std::move(what)) {}

  Py run() {
    while (true) {
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                 // PROTO
        case 0x95: take(8); break;              // FRAME
        case '.': TORCH_CHECK(stack_.size() == 1, what_, ": bad pickle (stack at STOP)"); return stack_.back();
        case 'N': push(make(PyValue::None)); break;
        case 0x88: case 0x89: { auto v = make(PyValue::Bool); v->i = op == 0x88; push(v); break; }
        case 'K': push_int(u8()); break;
        case 'M': push_int(le(2)); break;
        case 'J': push_int(static_cast<int32_t>(le(4))); break;
        case 0x8a: push_int(long_bytes(u8())); break;  // LONG1
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | u8();
          auto v = make(PyValue::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': push_str(PyValue::Str, le(4)); break;
        case 0x8c: push_str(PyValue::Str, u8()); break;
        case 0x8d: push_str(PyValue::Str, le(8)); break;
        case 'U': push_str(PyValue::Bytes, u8()); break;  // py2 str: raw bytes
        case 'T': push_str(PyValue::Bytes, le(4)); break;
        case 'C': push_str(PyValue::Bytes, u8()); break;
        case 'B': push_str(PyValue::Bytes, le(4)); break;
        case 0x8e: push_str(PyValue::Bytes, le(8)); break;
        case 'c': {
          auto v = make(PyValue::Global);
          const std::string module = line();  // two statements: operands of + are unsequenced
          v->s = module + "." + line();
          push(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Py name = pop(), module = pop();
          auto v = make(PyValue::Global);
          v->s = module->s + "." + name->s;
          push(v);
          break;
        }
        case 'q': memo(u8()); break;
        case 'r': memo(le(4)); break;
        case 0x94: memo(memo_.size()); break;
        case 'h': push(recall(u8())); break;
        case 'j': push(recall(le(4))); break;
        case '(': push(make(PyValue::Mark)); break;
        case ')': push(make(PyValue::Tuple)); break;
        case ']': push(make(PyValue::List)); break;
        case '}': push(make(PyValue::Dict)); break;
        case 't': { auto v = make(PyValue::Tuple); v->items = pop_to_mark(); push(v); break; }
        case 'l': { auto v = make(PyValue::List); v->items = pop_to_mark(); push(v); break; }
        case 0x85: case 0x86: case 0x87: {
          auto v = make(PyValue::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          push(v);
          break;
        }
        case 'a': { Py x = pop(); top(PyValue::List)->items.push_back(x); break; }
        case 'e': { auto xs = pop_to_mark(); auto& l = top(PyValue::List)->items; l.insert(l.end(), xs.begin(), xs.end()); break; }
        case 's': { Py val = pop(), key = pop(); top(PyValue::Dict)->entries.emplace_back(key, val); break; }
        case 'u': {
          auto xs = pop_to_mark();
          TORCH_CHECK(xs.size() % 2 == 0, what_, ": bad pickle (odd SETITEMS)");
          for (size_t k = 0; k < xs.size(); k += 2) top(PyValue::Dict)->entries.emplace_back(xs[k], xs[k + 1]);
          break;
        }
        case 'R': { Py args = pop(), fn = pop(); push(reduce(fn, args)); break; }
        case 'b': {
          Py state = pop();
          TORCH_CHECK(!stack_.empty(), what_, ": bad pickle (BUILD without an object)");
          build(stack_.back(), state);
          break;
        }
        default:
          TORCH_CHECK(false, what_, ": unsupported pickle opcode 0x", std::hex, static_cast<int>(op),
                      " at byte ", std::dec, pos_ - 1, " (only numpy.save's dicts of numbers, strings and arrays are read)");
      }
    }
  }

 private:
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint64_t le(size_t n) {
    const char* p = take(n);
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | static_cast<uint8_t>(p[k]);
    return v;
  }
  int64_t long_bytes(size_t n) {
    TORCH_CHECK(n <= 8, what_, ": integer too large in pickle");
    if (n == 0) return 0;
    const char* p = take(n);
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | static_cast<uint8_t>(p[k]);
    if (n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  const char* take(size_t n) {
    TORCH_CHECK(pos_ + n <= data_.size(), what_, ": truncated pickle");
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string line() {
    const size_t nl = data_.find('\n', pos_);
    TORCH_CHECK(nl != std::string::npos, what_, ": truncated pickle");
    std::string s = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }
  void push(Py v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t i) { auto v = make(PyValue::Int); v->i = i; push(v); }
  void push_str(PyValue::Kind kind, uint64_t n) { auto v = make(kind); v->s.assign(take(n), n); push(v); }
  Py pop() {
    TORCH_CHECK(!stack_.empty(), what_, ": bad pickle (stack underflow)");
    Py v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Py top(PyValue::Kind kind) {
    TORCH_CHECK(!stack_.empty() && stack_.back()->kind == kind, what_, ": bad pickle (unexpected container)");
    return stack_.back();
  }
  std::vector<Py> pop_to_mark() {
    std::vector<Py> xs;
    while (true) {
      Py v = pop();
      if (v->kind == PyValue::Mark) break;
      xs.push_back(v);
    }
    return {xs.rbegin(), xs.rend()};
  }
  void memo(size_t index) {
    TORCH_CHECK(!stack_.empty(), what_, ": bad pickle (memo of an empty stack)");
    if (memo_.size() <= index) memo_.resize(index + 1);
    memo_[index] = stack_.back();
  }
  Py recall(size_t index) {
    TORCH_CHECK(index < memo_.size() && memo_[index], what_, ": bad pickle (unknown memo ", index, ")");
    return memo_[index];
  }
  static bool is(const Py& fn, const char* name) {
    // numpy >= 2 moved numpy.core to numpy._core.
    const std::string& s = fn->s;
    return s == std::string("numpy.core.multiarray.") + name || s == std::string("numpy._core.multiarray.") + name ||
           s == std::string("numpy.") + name;
  }

  Py reduce(const Py& fn, const Py& args) {
    TORCH_CHECK(fn->kind == PyValue::Global && args->kind == PyValue::Tuple, what_,
                ": bad pickle (REDUCE of a non-global)");
    if (is(fn, "_reconstruct")) return make(PyValue::Array);
    if (is(fn, "dtype")) {
      TORCH_CHECK(!args->items.empty() && args->items[0]->kind == PyValue::Str, what_, ": bad numpy dtype");
      auto v = make(PyValue::Dtype);
      v->s = args->items[0]->s;
      return v;
    }
    if (is(fn, "scalar")) {  // numpy scalar: (dtype, raw bytes)
      TORCH_CHECK(args->items.size() == 2 && args->items[0]->kind == PyValue::Dtype, what_, ": bad numpy scalar");
      auto v = make(PyValue::Array);
      v->tensor = bytes_to_tensor(*args->items[0], args->items[1]->s, {});
      return v;
    }
    if (fn->s == "_codecs.encode") {  // protocol 2 bytes: (latin-1 text, 'latin1')
      TORCH_CHECK(!args->items.empty() && args->items[0]->kind == PyValue::Str, what_, ": bad _codecs.encode");
      auto v = make(PyValue::Bytes);
      const std::string& u = args->items[0]->s;
      for (size_t k = 0; k < u.size(); ++k) {  // UTF-8 code points < 256 -> one byte
        const unsigned char c = u[k];
        if (c < 0x80) {
          v->s.push_back(static_cast<char>(c));
        } else {
          TORCH_CHECK(k + 1 < u.size() && (c & 0xE0) == 0xC0, what_, ": bad latin-1 text");
          v->s.push_back(static_cast<char>(((c & 0x1F) << 6) | (u[++k] & 0x3F)));
        }
      }
      return v;
    }
    TORCH_CHECK(false, what_, ": the pickle calls '", fn->s, "', which kinema does not read");
  }

  at::Tensor bytes_to_tensor(const PyValue& dtype, const std::string& raw, std::vector<int64_t> shape) {
    TORCH_CHECK(dtype.byte_order != '>', what_, ": big-endian arrays in the pickled dict are not supported");
    const at::ScalarType type = scalar_type_of(dtype.s, what_);
    int64_t numel = 1;
    for (const int64_t d : shape) numel *= d;
    TORCH_CHECK(static_cast<int64_t>(raw.size()) == numel * static_cast<int64_t>(c10::elementSize(type)),
                what_, ": array data has ", raw.size(), " bytes for shape of ", numel, " elements");
    at::Tensor t = at::empty(shape, type);
    if (!raw.empty()) std::memcpy(t.data_ptr(), raw.data(), raw.size());
    return t;
  }

  void build(const Py& target, const Py& state) {
    if (target->kind == PyValue::Dtype) {  // (version, byte order, ...)
      if (state->kind == PyValue::Tuple && state->items.size() > 1 && state->items[1]->kind == PyValue::Str) {
        target->byte_order = state->items[1]->s.empty() ? '<' : state->items[1]->s[0];
      }
      return;
    }
    TORCH_CHECK(target->kind == PyValue::Array && state->kind == PyValue::Tuple && state->items.size() == 5,
                what_, ": bad pickle (BUILD of an unexpected object)");
    // (version, shape, dtype, is_fortran, data)
    const auto& shape_items = state->items[1]->items;
    std::vector<int64_t> shape;
    for (const Py& d : shape_items) shape.push_back(d->i);
    const PyValue& dtype = *state->items[2];
    TORCH_CHECK(dtype.kind == PyValue::Dtype, what_, ": bad numpy array state");
    const bool fortran = state->items[3]->kind == PyValue::Bool && state->items[3]->i;
    const Py& data = state->items[4];
    if (dtype.s == "O8" || dtype.s == "O") {
      TORCH_CHECK(data->kind == PyValue::List, what_, ": bad object array data");
      target->object_array = true;
      target->items = data->items;
      return;
    }
    TORCH_CHECK(data->kind == PyValue::Bytes, what_, ": bad numpy array data");
    if (fortran && shape.size() > 1) {
      std::vector<int64_t> reversed(shape.rbegin(), shape.rend());
      std::vector<int64_t> perm(shape.size());
      for (size_t k = 0; k < perm.size(); ++k) perm[k] = static_cast<int64_t>(perm.size() - 1 - k);
      target->tensor = bytes_to_tensor(dtype, data->s, reversed).permute(perm).contiguous();
    } else {
      target->tensor = bytes_to_tensor(dtype, data->s, shape);
    }
  }

  const std::string& data_;
  std::string what_;
  size_t pos_ = 0;
  std::vector<Py> stack_;
  std::vector<Py> memo_;
};

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

}  // namespace

std::map<std::string, at::Tensor> unpickle_numpy_dict(const std::string& bytes, const std::string& what) {
  Py root = Unpickler(bytes, what).run();
  // numpy.save of a 0-d object array: the array's single element is the dict.
  if (root->kind == PyValue::Array && root->object_array && root->items.size() == 1) root = root->items[0];
  TORCH_CHECK(root->kind == PyValue::Dict, what, ": the pickled object is not a dict");
  std::map<std::string, at::Tensor> out;
  for (const auto& [key, value] : root->entries) {
    if (key->kind != PyValue::Str) continue;
    switch (value->kind) {
      case PyValue::Int: case PyValue::Bool: out[key->s] = at::scalar_tensor(value->i, at::kLong); break;
      case PyValue::Float: out[key->s] = at::scalar_tensor(value->f, at::kDouble); break;
      case PyValue::Array:
        if (value->tensor.defined()) out[key->s] = value->tensor;
        break;
      default: break;  // strings (image_id) and other values are not needed
    }
  }
  return out;
}

std::map<std::string, at::Tensor> load_npz_with_pickled_dicts(const std::string& path) {
  int error = 0;
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open(path.c_str(), ZIP_RDONLY, &error));
  TORCH_CHECK(archive, path, ": cannot open as an .npz (zip) archive (libzip error ", error, ")");
  std::map<std::string, at::Tensor> out;
  const zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    TORCH_CHECK(zip_stat_index(archive.get(), i, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && st.name,
                path, ": cannot read zip entry ", i);
    std::string name = st.name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0) continue;
    const std::string what = path + ":" + name;
    TORCH_CHECK(st.size <= (zip_uint64_t{1} << 34), what, ": implausible size ", st.size);
    std::unique_ptr<zip_file_t, ZipFileCloser> member(zip_fopen_index(archive.get(), i, 0));
    TORCH_CHECK(member, what, ": cannot open member");
    std::string bytes(st.size, '\0');
    zip_uint64_t got = 0;
    while (got < st.size) {
      const zip_int64_t r = zip_fread(member.get(), bytes.data() + got, st.size - got);
      TORCH_CHECK(r > 0, what, ": read error");
      got += static_cast<zip_uint64_t>(r);
    }
    name.resize(name.size() - 4);
    // .npy header: magic(6) version(2) header_len(2 or 4) header.
    TORCH_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, what, ": not a .npy member");
    const bool v1 = bytes[6] == 1;
    const size_t len_bytes = v1 ? 2 : 4;
    size_t header_len = 0;
    for (size_t k = len_bytes; k-- > 0;) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + k]);
    const size_t data_start = 8 + len_bytes + header_len;
    TORCH_CHECK(data_start <= bytes.size(), what, ": truncated .npy header");
    const std::string header = bytes.substr(8 + len_bytes, header_len);
    if (header.find("'|O'") != std::string::npos) {
      for (auto& [key, tensor] : unpickle_numpy_dict(bytes.substr(data_start), what)) {
        out[name + "." + key] = tensor;
      }
    } else {
      out[name] = io::parse_npy(bytes.data(), bytes.size(), what);
    }
  }
  return out;
}

}  // namespace kinema::data
