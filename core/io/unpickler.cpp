#include "core/io/unpickler.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace kinema::io {
namespace {

struct Node;
using NodePtr = std::shared_ptr<Node>;

// Values on the pickle stack. Containers are shared by pointer, because the
// memo hands out references that later opcodes (SETITEMS, APPENDS) mutate.
struct Node {
  enum Kind { kNone, kBool, kInt, kFloat, kString, kList, kTuple, kDict, kGlobal, kOpaque, kStorage, kTensor };
  Kind kind = kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string/bytes text, global or opaque name
  std::vector<NodePtr> items;
  std::vector<std::pair<NodePtr, NodePtr>> entries;
  at::Storage storage;
  at::ScalarType storage_dtype = at::kFloat;
  at::Tensor tensor;
};

NodePtr make(Node::Kind kind) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  return n;
}

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

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, const StorageLoader& loader, const std::string& what)
      : p_(reinterpret_cast<const unsigned char*>(data)), size_(size), loader_(loader), what_(what) {}

  NodePtr run(size_t* consumed) {
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

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    TORCH_CHECK(false, "'", what_, "': malformed pickle at byte ", pos_, ": ", problem);
  }
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
  NodePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("stack underflow");
    NodePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  NodePtr& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<NodePtr> pop_to_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("bad MARK");
    std::vector<NodePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }
  void push(NodePtr n) { stack_.push_back(std::move(n)); }
  NodePtr str(std::string s) {
    auto n = make(Node::kString);
    n->s = std::move(s);
    return n;
  }
  NodePtr integer(int64_t v) {
    auto n = make(Node::kInt);
    n->i = v;
    return n;
  }
  NodePtr long_int(const std::string& raw) {
    if (raw.size() > 8) fail("integer wider than 64 bits");
    uint64_t v = 0;
    for (size_t k = 0; k < raw.size(); ++k) v |= uint64_t(static_cast<unsigned char>(raw[k])) << (8 * k);
    if (!raw.empty() && raw.size() < 8 && (static_cast<unsigned char>(raw.back()) & 0x80))
      v |= ~uint64_t(0) << (8 * raw.size());  // sign-extend
    return integer(static_cast<int64_t>(v));
  }
  NodePtr tuple(std::vector<NodePtr> items) {
    auto n = make(Node::kTuple);
    n->items = std::move(items);
    return n;
  }
  void memo_put(uint64_t key) { memo_[key] = top(); }
  NodePtr memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }
  void set_items(NodePtr& dict, const std::vector<NodePtr>& kv) {
    if (kv.size() % 2) fail("odd number of items for SETITEMS");
    if (dict->kind != Node::kDict) return;  // state of an opaque object
    for (size_t k = 0; k < kv.size(); k += 2) dict->entries.emplace_back(kv[k], kv[k + 1]);
  }
  void append(NodePtr& list, const std::vector<NodePtr>& values) {
    if (list->kind != Node::kList) return;
    list->items.insert(list->items.end(), values.begin(), values.end());
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
        auto n = make(Node::kFloat);
        std::memcpy(&n->f, &bits, 8);
        push(n);
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
        std::string module = line();
        std::string name = line();
        auto n = make(Node::kGlobal);
        n->s = module + "." + name;
        push(n);
        break;
      }
      case 0x93: {                                         // STACK_GLOBAL
        auto name = pop(), module = pop();
        if (name->kind != Node::kString || module->kind != Node::kString) fail("STACK_GLOBAL needs strings");
        auto n = make(Node::kGlobal);
        n->s = module->s + "." + name->s;
        push(n);
        break;
      }
      case 'R': { auto args = pop(), fn = pop(); push(call(fn, args)); break; }  // REDUCE
      case 0x81: { auto args = pop(), cls = pop(); push(instantiate(cls)); break; }  // NEWOBJ
      case 0x92: { pop(); auto args = pop(), cls = pop(); push(instantiate(cls)); break; }  // NEWOBJ_EX
      case 'b': pop(); break;  // BUILD: object state (e.g. an OrderedDict's _metadata) is not needed
      case 'Q': { auto pid = pop(); push(persistent(pid)); break; }  // BINPERSID
      default:
        pos_ = at;
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported opcode ") + hex + " (text-mode pickles are not read)");
    }
  }

  NodePtr instantiate(const NodePtr& cls) {
    if (cls->kind == Node::kGlobal && cls->s == "collections.OrderedDict") return make(Node::kDict);
    auto n = make(Node::kOpaque);
    n->s = cls->kind == Node::kGlobal ? cls->s : "object";
    return n;
  }

  const std::vector<NodePtr>& args_of(const NodePtr& args, size_t min, const std::string& fn) {
    if (args->kind != Node::kTuple || args->items.size() < min)
      fail(fn + " expects at least " + std::to_string(min) + " arguments");
    return args->items;
  }

  std::vector<int64_t> int_tuple(const NodePtr& n, const char* what) {
    if (n->kind != Node::kTuple && n->kind != Node::kList) fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& v : n->items) {
      if (v->kind != Node::kInt || v->i < 0) fail(std::string(what) + " holds a non-integer or negative entry");
      out.push_back(v->i);
    }
    return out;
  }

  NodePtr call(const NodePtr& fn, const NodePtr& args) {
    const std::string name = fn->kind == Node::kGlobal ? fn->s : "";
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
        name == "builtins.frozenset") {
      const auto& a = args_of(args, 1, name);
      auto n = make(name == "torch.Size" ? Node::kTuple : Node::kList);
      n->items = a[0]->items;
      return n;
    }
    if (name.rfind("torch._utils._rebuild_", 0) == 0 || name.rfind("torch._tensor._rebuild_", 0) == 0)
      fail("tensors rebuilt by " + name + " (quantized, sparse, meta or subclass tensors) are not supported");
    auto n = make(Node::kOpaque);
    n->s = name.empty() ? "object" : name;
    return n;
  }

  NodePtr rebuild_tensor(const NodePtr& storage, const NodePtr& offset, const NodePtr& size,
                         const NodePtr& stride) {
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

  NodePtr persistent(const NodePtr& pid) {
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
  std::vector<NodePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, NodePtr> memo_;
  std::map<std::string, NodePtr> storages_;
};

// Node -> IValue. Depth-limited: a pickle can build cycles through the memo.
c10::IValue to_ivalue(const NodePtr& n, int depth, const std::string& what) {
  TORCH_CHECK(depth < 200, "'", what, "': object nesting deeper than 200 levels (or a cycle)");
  switch (n->kind) {
    case Node::kNone: return c10::IValue();
    case Node::kBool: return c10::IValue(n->b);
    case Node::kInt: return c10::IValue(n->i);
    case Node::kFloat: return c10::IValue(n->f);
    case Node::kString: return c10::IValue(n->s);
    case Node::kTensor: return c10::IValue(n->tensor);
    case Node::kGlobal: return c10::IValue("<class " + n->s + ">");
    case Node::kOpaque: return c10::IValue("<object " + n->s + ">");
    case Node::kStorage: return c10::IValue();
    case Node::kList: {
      c10::impl::GenericList list(c10::AnyType::get());
      for (const auto& v : n->items) list.push_back(to_ivalue(v, depth + 1, what));
      return list;
    }
    case Node::kTuple: {
      std::vector<c10::IValue> items;
      for (const auto& v : n->items) items.push_back(to_ivalue(v, depth + 1, what));
      return c10::ivalue::Tuple::create(std::move(items));
    }
    case Node::kDict: {
      bool all_strings = true;
      for (const auto& [k, v] : n->entries) all_strings = all_strings && k->kind == Node::kString;
      const c10::TypePtr key_type =
          all_strings ? c10::TypePtr(c10::StringType::get()) : c10::TypePtr(c10::AnyType::get());
      c10::impl::GenericDict dict(key_type, c10::AnyType::get());
      for (const auto& [k, v] : n->entries) {
        // Only keys IValue can hash; others (tuples, objects) are dropped.
        if (k->kind != Node::kString && k->kind != Node::kInt && k->kind != Node::kFloat &&
            k->kind != Node::kBool)
          continue;
        dict.insert_or_assign(to_ivalue(k, depth + 1, what), to_ivalue(v, depth + 1, what));
      }
      return dict;
    }
  }
  return c10::IValue();
}

}  // namespace

c10::IValue unpickle_torch(const char* data, size_t size, const StorageLoader& load_storage,
                           const std::string& what, size_t* consumed) {
  Unpickler unpickler(data, size, load_storage, what);
  return to_ivalue(unpickler.run(consumed), 0, what);
}

}  // namespace kinema::io
