#include "core/io/unpickler.h"

#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

namespace kinema::io {
namespace {

// Values on the pickle stack. They live in the unpickler's arena and refer to
// each other by pointer: containers are shared because the memo hands out
// references that later opcodes (SETITEMS, APPENDS) mutate, and a hostile
// pickle can nest them a million levels deep or into cycles, which owning
// pointers would destroy recursively or leak.
struct Node {
  enum Kind {
    kNone, kBool, kInt, kFloat, kString, kList, kTuple, kDict,
    kGlobal,   // a class or function reference (allowed ones only)
    kObject,   // argparse.Namespace or a TorchScript object: class name + attributes
    kStorage, kTensor,
    kDtype,    // numpy.dtype: s = kind and size ("f4"), byte_order
    kArray,    // numpy array awaiting its BUILD state
  };
  Kind kind = kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string/bytes text, global or class name, dtype
  char byte_order = '<';
  std::vector<Node*> items;
  std::vector<std::pair<Node*, Node*>> entries;
  at::Storage storage;
  at::ScalarType storage_dtype = at::kFloat;
  at::Tensor tensor;
};

constexpr int kMaxDepth = 200;

// Storage classes as torch.save names them.
bool storage_dtype(const std::string& name, at::ScalarType* out) {
  static const std::map<std::string, at::ScalarType> table = {
      {"torch.FloatStorage", at::kFloat},     {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},       {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},       {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},     {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},       {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble},
  };
  auto it = table.find(name);
  if (it == table.end()) return false;
  *out = it->second;
  return true;
}

// numpy moved numpy.core to numpy._core in 2.0.
bool is_numpy(const std::string& name, const char* function) {
  return name == std::string("numpy.core.multiarray.") + function ||
         name == std::string("numpy._core.multiarray.") + function;
}

// The globals a pickle may name: data constructors whose effect kinema
// reproduces itself. Anything else (os.system, builtins.eval, a model class)
// is refused when the pickle names it.
bool allowed_global(const std::string& name, const UnpickleOptions& options) {
  static const std::set<std::string> names = {
      "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
      "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch.nn.parameter.Parameter",
      "torch.Size", "builtins.set", "builtins.frozenset", "__builtin__.set", "argparse.Namespace",
      "numpy.dtype", "numpy.ndarray", "_codecs.encode",
      // torch dtypes and devices are pickled as references to these.
      "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16", "torch.int64",
      "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool", "torch.complex64",
      "torch.complex128", "torch.device"};
  static const std::set<std::string> torchscript_names = {
      "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
      "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
      "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_genericlist"};
  at::ScalarType unused;
  if (names.count(name) || storage_dtype(name, &unused)) return true;
  if (is_numpy(name, "scalar") || is_numpy(name, "_reconstruct")) return true;
  if (!options.torchscript) return false;
  if (torchscript_names.count(name)) return true;
  // Scripted classes; torch.classes.* are C++ classes restored by C++ code.
  return name.rfind("__torch__.", 0) == 0 && name.rfind("__torch__.torch.classes.", 0) != 0;
}

at::ScalarType numpy_scalar_type(const std::string& descr, bool* ok) {
  static const std::map<std::string, at::ScalarType> table = {
      {"f8", at::kDouble}, {"f4", at::kFloat}, {"f2", at::kHalf},  {"i8", at::kLong},
      {"i4", at::kInt},    {"i2", at::kShort}, {"i1", at::kChar},  {"u1", at::kByte},
      {"b1", at::kBool},   {"c8", at::kComplexFloat}, {"c16", at::kComplexDouble}};
  auto it = table.find(descr);
  *ok = it != table.end();
  return *ok ? it->second : at::kFloat;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, const StorageLoader& loader, const std::string& what,
            const UnpickleOptions& options)
      : p_(reinterpret_cast<const unsigned char*>(data)), size_(size), loader_(loader), what_(what),
        options_(options) {}

  Node* run(size_t* consumed) {
    while (true) {
      const size_t at = pos_;
      const unsigned char op = byte();
      if (op == '.') break;  // STOP
      step(op, at);
    }
    if (consumed) *consumed = pos_;
    if (stack_.size() != 1) fail("the pickle does not end with exactly one value");
    return stack_.back();
  }

  [[noreturn]] void fail(const std::string& problem) const {
    TORCH_CHECK(false, "'", what_, "': malformed pickle at byte ", pos_, ": ", problem);
  }
  [[noreturn]] void refuse(const std::string& problem) const {
    TORCH_CHECK(false, "'", what_, "': ", problem,
                " (kinema reads only tensors, containers, numbers and strings from a pickle and "
                "runs no code from it)");
  }

 private:
  void need(size_t n) const {
    if (n > size_ - pos_) fail("unexpected end of data");
  }
  unsigned char byte() {
    need(1);
    return p_[pos_++];
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t(p_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > size_ - pos_) fail("unexpected end of data");
    std::string out(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("unterminated GLOBAL name");
    const size_t n = static_cast<const unsigned char*>(nl) - (p_ + pos_);
    std::string out = bytes(n);
    ++pos_;
    return out;
  }
  Node* make(Node::Kind kind) {
    arena_.push_back(std::make_unique<Node>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  Node* pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("stack underflow");
    Node* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Node* top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Node*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("bad MARK");
    std::vector<Node*> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }
  void push(Node* n) { stack_.push_back(n); }
  Node* str(std::string s) {
    auto n = make(Node::kString);
    n->s = std::move(s);
    return n;
  }
  Node* integer(int64_t v) {
    auto n = make(Node::kInt);
    n->i = v;
    return n;
  }
  Node* real(double v) {
    auto n = make(Node::kFloat);
    n->f = v;
    return n;
  }
  Node* long_int(const std::string& raw) {
    if (raw.size() > 8) fail("integer wider than 64 bits");
    uint64_t v = 0;
    for (size_t k = 0; k < raw.size(); ++k) v |= uint64_t(static_cast<unsigned char>(raw[k])) << (8 * k);
    if (!raw.empty() && raw.size() < 8 && (static_cast<unsigned char>(raw.back()) & 0x80))
      v |= ~uint64_t(0) << (8 * raw.size());  // sign-extend
    return integer(static_cast<int64_t>(v));
  }
  Node* tuple(std::vector<Node*> items) {
    auto n = make(Node::kTuple);
    n->items = std::move(items);
    return n;
  }
  void memo_put(uint64_t key) { memo_[key] = top(); }
  Node* memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }
  void set_items(Node* dict, const std::vector<Node*>& kv) {
    if (kv.size() % 2) fail("odd number of items for SETITEMS");
    if (dict->kind != Node::kDict) fail("SETITEMS on a value that is not a dict");
    for (size_t k = 0; k < kv.size(); k += 2) dict->entries.emplace_back(kv[k], kv[k + 1]);
  }
  void append(Node* list, const std::vector<Node*>& values) {
    if (list->kind != Node::kList) fail("APPENDS on a value that is not a list");
    list->items.insert(list->items.end(), values.begin(), values.end());
  }
  Node* global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (full.rfind("torch._utils._rebuild_", 0) == 0 || full.rfind("torch._tensor._rebuild_", 0) == 0) {
      if (!allowed_global(full, options_))
        fail("tensors rebuilt by " + full +
             " (quantized, sparse, meta or subclass tensors) are not supported");
    }
    if (!allowed_global(full, options_)) refuse("the pickle names the global '" + full + "'");
    auto n = make(Node::kGlobal);
    n->s = full;
    return n;
  }

  void step(unsigned char op, size_t at) {
    switch (op) {
      case 0x80: byte(); break;                 // PROTO
      case 0x95: le(8); break;                  // FRAME (protocol 4): a hint only
      case '(': marks_.push_back(stack_.size()); break;
      case ')': push(tuple({})); break;
      case 0x85: { auto a = pop(); push(tuple({a})); break; }
      case 0x86: { auto b = pop(), a = pop(); push(tuple({a, b})); break; }
      case 0x87: { auto c = pop(), b = pop(), a = pop(); push(tuple({a, b, c})); break; }
      case 't': push(tuple(pop_to_mark())); break;
      case ']': push(make(Node::kList)); break;
      case 'l': { auto n = make(Node::kList); n->items = pop_to_mark(); push(n); break; }
      case '}': push(make(Node::kDict)); break;
      case 'd': { auto n = make(Node::kDict); set_items(n, pop_to_mark()); push(n); break; }
      case 0x8f: push(make(Node::kList)); break;  // EMPTY_SET: kept as a list
      case 0x90: { auto items = pop_to_mark(); append(top(), items); break; }  // ADDITEMS
      case 0x91: { auto n = make(Node::kList); n->items = pop_to_mark(); push(n); break; }  // FROZENSET
      case 's': { auto v = pop(), k = pop(); set_items(top(), {k, v}); break; }
      case 'u': { auto kv = pop_to_mark(); set_items(top(), kv); break; }
      case 'a': { auto v = pop(); append(top(), {v}); break; }
      case 'e': { auto vs = pop_to_mark(); append(top(), vs); break; }
      case 'N': push(make(Node::kNone)); break;
      case 0x88: case 0x89: { auto n = make(Node::kBool); n->b = op == 0x88; push(n); break; }
      case 'K': push(integer(byte())); break;
      case 'M': push(integer(static_cast<int64_t>(le(2)))); break;
      case 'J': push(integer(static_cast<int32_t>(le(4)))); break;
      case 0x8a: { const auto n = byte(); push(long_int(bytes(n))); break; }
      case 0x8b: { const auto n = le(4); push(long_int(bytes(n))); break; }
      case 'G': {
        uint64_t bits = 0;
        need(8);
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p_[pos_ + k];  // big-endian
        pos_ += 8;
        double v;
        std::memcpy(&v, &bits, 8);
        push(real(v));
        break;
      }
      case 'X': push(str(bytes(le(4)))); break;            // BINUNICODE
      case 0x8c: push(str(bytes(byte()))); break;          // SHORT_BINUNICODE
      case 0x8d: push(str(bytes(le(8)))); break;           // BINUNICODE8
      case 'T': push(str(bytes(le(4)))); break;            // BINSTRING
      case 'U': push(str(bytes(byte()))); break;           // SHORT_BINSTRING
      case 'B': push(str(bytes(le(4)))); break;            // BINBYTES
      case 'C': push(str(bytes(byte()))); break;           // SHORT_BINBYTES
      case 0x8e: push(str(bytes(le(8)))); break;           // BINBYTES8
      case 'q': memo_put(byte()); break;                   // BINPUT
      case 'r': memo_put(le(4)); break;                    // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;            // MEMOIZE
      case 'h': push(memo_get(byte())); break;             // BINGET
      case 'j': push(memo_get(le(4))); break;              // LONG_BINGET
      case '0': pop(); break;                              // POP
      case '1': pop_to_mark(); break;                      // POP_MARK
      case '2': push(top()); break;                        // DUP
      case 'c': {                                          // GLOBAL
        const std::string module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {                                         // STACK_GLOBAL
        auto name = pop(), module = pop();
        if (name->kind != Node::kString || module->kind != Node::kString) fail("STACK_GLOBAL needs strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': { auto args = pop(), fn = pop(); push(call(fn, args)); break; }  // REDUCE
      case 0x81: { pop(); auto cls = pop(); push(instantiate(cls)); break; }  // NEWOBJ
      case 0x92: { pop(); pop(); auto cls = pop(); push(instantiate(cls)); break; }  // NEWOBJ_EX
      case 'b': { auto state = pop(); build(top(), state); break; }  // BUILD
      case 'Q': { auto pid = pop(); push(persistent(pid)); break; }  // BINPERSID
      default:
        pos_ = at;
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported opcode ") + hex + " (text-mode pickles are not read)");
    }
  }

  Node* instantiate(Node* cls) {
    if (cls->kind != Node::kGlobal) fail("NEWOBJ of a value that is not a class");
    if (cls->s == "collections.OrderedDict") return make(Node::kDict);
    if (cls->s == "argparse.Namespace" || cls->s.rfind("__torch__.", 0) == 0) {
      auto n = make(Node::kObject);
      n->s = cls->s;
      return n;
    }
    refuse("the pickle creates an object of class '" + cls->s + "'");
  }

  // BUILD: an object's state. Objects take a dict of attributes; anything else
  // would be handed to the class's own __setstate__ code.
  void build(Node* target, Node* state) {
    switch (target->kind) {
      case Node::kObject:
        if (state->kind != Node::kDict)
          refuse("an object of class '" + target->s +
                 "' restores itself with its own __setstate__ code");
        target->entries.insert(target->entries.end(), state->entries.begin(), state->entries.end());
        return;
      case Node::kDict: return;    // an OrderedDict's attributes (state_dict _metadata)
      case Node::kTensor: return;  // a tensor's Python attributes
      case Node::kDtype:           // (version, byte order, ...)
        if (state->kind == Node::kTuple && state->items.size() > 1 && state->items[1]->kind == Node::kString)
          target->byte_order = state->items[1]->s.empty() ? '<' : state->items[1]->s[0];
        return;
      case Node::kArray: build_array(target, state); return;
      default: fail("BUILD of a value that is not an object");
    }
  }

  const std::vector<Node*>& args_of(Node* args, size_t min, const std::string& fn) {
    if (args->kind != Node::kTuple || args->items.size() < min)
      fail(fn + " expects at least " + std::to_string(min) + " arguments");
    return args->items;
  }

  std::vector<int64_t> int_tuple(Node* n, const char* what) {
    if (n->kind != Node::kTuple && n->kind != Node::kList) fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& v : n->items) {
      if (v->kind != Node::kInt || v->i < 0) fail(std::string(what) + " holds a non-integer or negative entry");
      out.push_back(v->i);
    }
    return out;
  }

  Node* call(Node* fn, Node* args) {
    if (fn->kind != Node::kGlobal) fail("REDUCE of a value that is not a function");
    const std::string& name = fn->s;
    if (name == "collections.OrderedDict") return make(Node::kDict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const auto& a = args_of(args, 4, name);
      return rebuild_tensor(a[0], a[1], a[2], a[3]);
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      const auto& a = args_of(args, 1, name);
      if (a[0]->kind != Node::kTensor) fail(name + " expects a tensor");
      return a[0];
    }
    if (name == "torch._tensor._rebuild_from_type_v2") {  // (fn, type, args, state)
      const auto& a = args_of(args, 3, name);
      return call(a[0], a[2]);
    }
    if (name == "torch.Size" || name == "builtins.set" || name == "__builtin__.set" ||
        name == "builtins.frozenset" || name.rfind("torch.jit._pickle.build_", 0) == 0) {
      const auto& a = args_of(args, 1, name);
      auto n = make(name == "torch.Size" ? Node::kTuple : Node::kList);
      n->items = a[0]->items;
      return n;
    }
    if (name == "torch.jit._pickle.restore_type_tag") return args_of(args, 1, name)[0];
    if (name == "torch.device") {
      const auto& a = args_of(args, 1, name);
      if (a[0]->kind != Node::kString) fail("torch.device expects a string");
      return str(a.size() > 1 && a[1]->kind == Node::kInt ? a[0]->s + ":" + std::to_string(a[1]->i) : a[0]->s);
    }
    if (name == "numpy.dtype") {  // (descr, align, copy)
      const auto& a = args_of(args, 1, name);
      if (a[0]->kind != Node::kString) fail("numpy.dtype expects a string");
      auto n = make(Node::kDtype);
      n->s = a[0]->s;
      return n;
    }
    if (is_numpy(name, "scalar")) return numpy_scalar(args_of(args, 2, name));
    if (is_numpy(name, "_reconstruct")) return make(Node::kArray);
    if (name == "_codecs.encode") return latin1(args_of(args, 1, name)[0]);
    refuse("the pickle calls '" + name + "'");
  }

  // Protocol-2 pickles of bytes: _codecs.encode(text, 'latin1'), text decoded
  // from UTF-8 code points below 256 back to one byte each.
  Node* latin1(Node* text) {
    if (text->kind != Node::kString) fail("_codecs.encode expects a string");
    std::string out;
    const std::string& u = text->s;
    for (size_t k = 0; k < u.size(); ++k) {
      const unsigned char c = u[k];
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else {
        if (k + 1 >= u.size() || (c & 0xFE) != 0xC2) fail("bad latin-1 text in _codecs.encode");
        out.push_back(static_cast<char>(((c & 0x1F) << 6) | (u[++k] & 0x3F)));
      }
    }
    return str(std::move(out));
  }

  at::ScalarType numpy_type(const Node* dtype) {
    if (dtype->kind != Node::kDtype) fail("numpy value without a dtype");
    if (dtype->byte_order == '>') fail("big-endian numpy values are not supported");
    bool ok = false;
    const at::ScalarType type = numpy_scalar_type(dtype->s, &ok);
    if (!ok) fail("unsupported numpy dtype '" + dtype->s + "'");
    return type;
  }

  at::Tensor numpy_tensor(const Node* dtype, const Node* raw, const std::vector<int64_t>& shape) {
    const at::ScalarType type = numpy_type(dtype);
    if (raw->kind != Node::kString) fail("numpy array data is not bytes");
    int64_t numel = 1;
    for (const int64_t d : shape)
      if (__builtin_mul_overflow(numel, d, &numel)) fail("numpy array shape overflows");
    const uint64_t expected = static_cast<uint64_t>(numel) * c10::elementSize(type);
    if (numel > static_cast<int64_t>(raw->s.size()) || raw->s.size() != expected)
      fail("numpy array data has " + std::to_string(raw->s.size()) + " bytes for " +
           std::to_string(numel) + " elements of " + dtype->s);
    at::Tensor t = at::empty(shape, type);
    if (!raw->s.empty()) std::memcpy(t.data_ptr(), raw->s.data(), raw->s.size());
    return t;
  }

  Node* numpy_scalar(const std::vector<Node*>& a) {
    const at::Tensor t = numpy_tensor(a[0], a[1], {});
    if (t.is_complex()) fail("complex numpy scalars are not supported");
    if (t.scalar_type() == at::kBool) {
      auto n = make(Node::kBool);
      n->b = t.item<bool>();
      return n;
    }
    if (t.is_floating_point()) return real(t.item<double>());
    return integer(t.item<int64_t>());
  }

  // numpy.ndarray state: (version, shape, dtype, is_fortran, data); data is
  // bytes, or a list for object arrays.
  void build_array(Node* target, Node* state) {
    if (state->kind != Node::kTuple || state->items.size() != 5) fail("bad numpy array state");
    const std::vector<int64_t> shape = int_tuple(state->items[1], "numpy array shape");
    Node* dtype = state->items[2];
    if (dtype->kind != Node::kDtype) fail("bad numpy array dtype");
    Node* data = state->items[4];
    if (dtype->s == "O8" || dtype->s == "O4" || dtype->s == "O") {
      if (data->kind != Node::kList) fail("bad numpy object array data");
      target->kind = Node::kList;
      target->items = data->items;
      return;
    }
    const bool fortran = state->items[3]->kind == Node::kBool && state->items[3]->b;
    target->kind = Node::kTensor;
    if (fortran && shape.size() > 1) {
      const std::vector<int64_t> reversed(shape.rbegin(), shape.rend());
      std::vector<int64_t> perm(shape.size());
      for (size_t k = 0; k < perm.size(); ++k) perm[k] = static_cast<int64_t>(perm.size() - 1 - k);
      target->tensor = numpy_tensor(dtype, data, reversed).permute(perm).contiguous();
    } else {
      target->tensor = numpy_tensor(dtype, data, shape);
    }
  }

  Node* rebuild_tensor(Node* storage, Node* offset, Node* size, Node* stride) {
    if (storage->kind != Node::kStorage) fail("tensor without a storage");
    if (offset->kind != Node::kInt || offset->i < 0) fail("bad storage offset");
    const std::vector<int64_t> sizes = int_tuple(size, "tensor size");
    const std::vector<int64_t> strides = int_tuple(stride, "tensor stride");
    if (sizes.size() != strides.size()) fail("tensor size and stride differ in length");
    const auto itemsize = static_cast<int64_t>(c10::elementSize(storage->storage_dtype));
    const int64_t available = static_cast<int64_t>(storage->storage.nbytes()) / itemsize;
    bool empty = false;
    int64_t last = offset->i;  // highest element index the tensor touches
    bool overflow = false;
    for (size_t d = 0; d < sizes.size(); ++d) {
      int64_t span = 0;
      if (sizes[d] == 0) empty = true;
      overflow |= __builtin_mul_overflow(sizes[d] == 0 ? 0 : sizes[d] - 1, strides[d], &span);
      overflow |= __builtin_add_overflow(last, span, &last);
    }
    if (!empty && (overflow || last >= available))
      fail("tensor extends past the end of its storage");
    auto n = make(Node::kTensor);
    n->tensor = at::empty({0}, at::TensorOptions().dtype(storage->storage_dtype))
                    .set_(storage->storage, offset->i, sizes, strides);
    return n;
  }

  Node* persistent(Node* pid) {
    if (pid->kind != Node::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Node::kString ||
        pid->items[0]->s != "storage")
      fail("unknown persistent id (expected ('storage', type, key, location, numel))");
    const auto& a = pid->items;
    if (a.size() > 5 && a[5]->kind != Node::kNone)
      fail("storage views (pre-1.0 torch.save) are not supported");
    if (a[2]->kind != Node::kString || a[3]->kind != Node::kString || a[4]->kind != Node::kInt || a[4]->i < 0)
      fail("malformed storage id");
    const std::string& key = a[2]->s;
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    at::ScalarType dtype;
    if (a[1]->kind != Node::kGlobal || !storage_dtype(a[1]->s, &dtype))
      fail("unsupported storage type '" + (a[1]->kind == Node::kGlobal ? a[1]->s : std::string("?")) + "'");
    if (static_cast<uint64_t>(a[4]->i) > (uint64_t(1) << 60) / c10::elementSize(dtype))
      fail("storage '" + key + "' claims " + std::to_string(a[4]->i) + " elements");
    auto n = make(Node::kStorage);
    n->storage_dtype = dtype;
    n->storage = loader_(StorageRequest{key, dtype, a[4]->i, a[3]->s});
    if (n->storage.nbytes() != static_cast<size_t>(a[4]->i) * c10::elementSize(dtype))
      fail("storage '" + key + "' has the wrong size");
    storages_.emplace(key, n);
    return n;
  }

  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
  const StorageLoader& loader_;
  const std::string& what_;
  const UnpickleOptions& options_;
  std::vector<std::unique_ptr<Node>> arena_;
  std::vector<Node*> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Node*> memo_;
  std::map<std::string, Node*> storages_;
};

// Node -> IValue. Nesting is limited (a pickle can build cycles through the
// memo), and so is the number of values produced: a shared list reached
// through n references is converted n times, so a few hundred bytes of
// nested shared references would otherwise expand to billions of values.
class Converter {
 public:
  Converter(const std::string& what, size_t pickle_size, bool tag_objects)
      : what_(what), budget_((uint64_t(1) << 20) + 16 * uint64_t(pickle_size)), tag_objects_(tag_objects) {}

  c10::IValue convert(const Node* n, int depth) {
    TORCH_CHECK(depth < kMaxDepth, "'", what_, "': object nesting deeper than ", kMaxDepth,
                " levels (or a cycle)");
    TORCH_CHECK(++produced_ <= budget_, "'", what_, "': the pickle expands to more than ", budget_,
                " values (shared references nested too deep for a file of its size)");
    switch (n->kind) {
      case Node::kNone: return c10::IValue();
      case Node::kBool: return c10::IValue(n->b);
      case Node::kInt: return c10::IValue(n->i);
      case Node::kFloat: return c10::IValue(n->f);
      case Node::kString: return c10::IValue(n->s);
      case Node::kTensor: return c10::IValue(n->tensor);
      case Node::kGlobal: return c10::IValue(n->s);  // torch.float32 and the like
      case Node::kDtype: return c10::IValue("numpy.dtype " + n->s);
      case Node::kStorage:
      case Node::kArray: return c10::IValue();
      case Node::kList: {
        c10::impl::GenericList list(c10::AnyType::get());
        for (const Node* v : n->items) list.push_back(convert(v, depth + 1));
        return list;
      }
      case Node::kTuple: {
        std::vector<c10::IValue> items;
        for (const Node* v : n->items) items.push_back(convert(v, depth + 1));
        return c10::ivalue::Tuple::create(std::move(items));
      }
      case Node::kDict:
      case Node::kObject: {
        const bool tagged = n->kind == Node::kObject && tag_objects_;
        bool all_strings = true;
        for (const auto& [k, v] : n->entries) all_strings = all_strings && k->kind == Node::kString;
        const c10::TypePtr key_type =
            all_strings ? c10::TypePtr(c10::StringType::get()) : c10::TypePtr(c10::AnyType::get());
        c10::impl::GenericDict dict(key_type, c10::AnyType::get());
        if (tagged) dict.insert_or_assign(c10::IValue("__class__"), c10::IValue(n->s));
        for (const auto& [k, v] : n->entries) {
          // Only keys IValue can hash; others (tuples, objects) are dropped.
          if (k->kind != Node::kString && k->kind != Node::kInt && k->kind != Node::kFloat &&
              k->kind != Node::kBool)
            continue;
          dict.insert_or_assign(convert(k, depth + 1), convert(v, depth + 1));
        }
        return dict;
      }
    }
    return c10::IValue();
  }

 private:
  const std::string& what_;
  uint64_t budget_;
  uint64_t produced_ = 0;
  bool tag_objects_;
};

}  // namespace

c10::IValue unpickle_torch(const char* data, size_t size, const StorageLoader& load_storage,
                           const std::string& what, size_t* consumed, const UnpickleOptions& options) {
  Unpickler unpickler(data, size, load_storage, what, options);
  const Node* root = unpickler.run(consumed);
  return Converter(what, size, options.torchscript).convert(root, 0);
}

}  // namespace kinema::io
