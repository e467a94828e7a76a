// Reader for PyTorch zip-format state dicts (pytorch_model.bin, torch >= 1.6),
// without Python.
//
// A zip-format checkpoint holds `<archive>/data.pkl` (a pickle, protocol 2 by
// default) and one record `<archive>/data/<key>` per storage. LibTorch's own
// unpickler (torch::pickle_load) cannot read a state dict (it maps
// collections.OrderedDict to None), so this file carries a small pickle
// interpreter that understands exactly what torch.save(state_dict) emits and
// refuses everything else. It never executes anything: the only globals it
// accepts are a fixed list, each of which it implements itself.
//
// Tensors are built after the pickle has been read, one storage record at a
// time, so peak memory is roughly the model plus its largest storage.

#include "io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace petcore {
namespace {

// ---------------------------------------------------------------------------
// Errors

[[noreturn]] void bin_fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("load_torch_bin: " + path + ": " + what);
}

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(b));
  return buf;
}

// Checked int64 arithmetic (portable; no compiler builtins).
bool mul_ok(int64_t a, int64_t b, int64_t* out) {
  // Only used with non-negative operands.
  if (a < 0 || b < 0) return false;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return false;
  *out = a * b;
  return true;
}
bool add_ok(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0) return false;
  if (b > std::numeric_limits<int64_t>::max() - a) return false;
  *out = a + b;
  return true;
}

// ---------------------------------------------------------------------------
// Pickle values

enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };

enum class GlobalFn {
  OrderedDict,
  RebuildTensorV2,
  RebuildParameter,
  RebuildParameterWithState,
  StorageType,
};

struct Value;
using VP = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                                      // Str
  std::vector<VP> items;                              // Tuple, List
  std::vector<std::pair<VP, VP>> dict;                // Dict (insertion order)
  std::unordered_map<std::string, size_t> str_index;  // Dict: str key -> slot
  GlobalFn fn = GlobalFn::OrderedDict;                // Global
  at::ScalarType dtype = at::kFloat;                  // Global(StorageType), Storage
  std::string key;                                    // Storage: record key
  int64_t numel = 0;                                  // Storage: element count
  size_t tensor = 0;                                  // Tensor: index into pending list
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

// "a dict", "an int", ...
std::string a_kind(Kind k) {
  const std::string n = kind_name(k);
  return (n[0] == 'i' ? "an " : "a ") + n;
}

VP make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

// A tensor whose data has not been read yet.
struct PendingTensor {
  std::string key;
  at::ScalarType dtype;
  int64_t storage_numel;
  int64_t offset;
  std::vector<int64_t> size;
  std::vector<int64_t> stride;
};

bool storage_dtype(const std::string& name, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> table[] = {
      {"FloatStorage", at::kFloat},   {"HalfStorage", at::kHalf}, {"BFloat16Storage", at::kBFloat16},
      {"DoubleStorage", at::kDouble}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},   {"CharStorage", at::kChar}, {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},
  };
  for (const auto& e : table) {
    if (name == e.first) {
      *out = e.second;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Pickle interpreter

class Unpickler {
 public:
  Unpickler(const std::string& path, const uint8_t* data, size_t size) : path_(path), p_(data), n_(size) {}

  VP run();
  std::vector<PendingTensor>& pending() { return pending_; }

 private:
  // One opcode each (run() reads it): the stream's framing, globals, memo, persistent ids and calls; the values
  // pushed as they are (strings, numbers, booleans, None); the containers and what fills them. False: not theirs.
  bool control_op(uint8_t op);
  bool literal_op(uint8_t op);
  bool container_op(uint8_t op);
  [[noreturn]] void unsupported(uint8_t op) const;

  [[noreturn]] void err(const std::string& what) const {
    bin_fail(path_, "data.pkl: " + what + " (at offset " + std::to_string(op_pos_) + ")");
  }

  void need(size_t k) const {
    if (k > n_ - pos_) err("pickle is truncated");
  }
  uint8_t u8() {
    need(1);
    return p_[pos_++];
  }
  uint64_t le(size_t bytes) {
    need(bytes);
    uint64_t v = 0;
    for (size_t j = 0; j < bytes; ++j) v |= static_cast<uint64_t>(p_[pos_ + j]) << (8 * j);
    pos_ += bytes;
    return v;
  }
  std::string bytes(uint64_t len) {
    if (len > n_ - pos_) err("pickle is truncated (string of " + std::to_string(len) + " bytes)");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  std::string utf8(uint64_t len) {  // like Python, reject invalid UTF-8
    std::string s = bytes(len);
    if (!valid_utf8(s)) err("string is not valid UTF-8 (corrupt pickle?)");
    return s;
  }
  static bool valid_utf8(const std::string& s) {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    size_t i = 0, n = s.size();
    while (i < n) {
      unsigned c = b[i];
      size_t len;
      uint32_t cp;
      if (c < 0x80) {
        ++i;
        continue;
      } else if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
      } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
      } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
      } else return false;
      if (len > n - i) return false;
      for (size_t k = 1; k < len; ++k) {
        if ((b[i + k] & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (b[i + k] & 0x3f);
      }
      // Overlong forms, surrogates (Python's utf-8 codec rejects them), > U+10FFFF.
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
          (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return false;
      i += len;
    }
    return true;
  }
  std::string line() {
    size_t start = pos_;
    while (pos_ < n_ && p_[pos_] != '\n') ++pos_;
    if (pos_ >= n_) err("pickle is truncated (unterminated GLOBAL name)");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;  // skip '\n'
    return s;
  }

  VP pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) err("pickle stack underflow");
    VP v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  VP& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) err("pickle stack underflow");
    return stack_.back();
  }
  std::vector<VP> pop_mark() {
    if (marks_.empty()) err("pickle MARK expected but not found");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<VP> out(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                        std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }
  void push(VP v) { stack_.push_back(std::move(v)); }
  // The literal opcodes' one step: a string of `len` bytes read from the stream, or an integer, onto the stack.
  void push_str(uint64_t len) {
    VP s = make(Kind::Str);
    s->s = utf8(len);
    push(std::move(s));
  }
  void push_int(int64_t i) {
    VP v = make(Kind::Int);
    v->i = i;
    push(std::move(v));
  }

  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) err("pickle memo key " + std::to_string(idx) + " is not defined");
    push(it->second);
  }

  VP make_global(const std::string& module, const std::string& name);
  VP call(const VP& callable, const VP& args);
  VP persistent_load(const VP& pid);
  VP rebuild_tensor(const std::vector<VP>& args);
  void dict_set(Value& d, VP k, VP v);
  int64_t as_int(const VP& v, const char* what) {
    if (v->kind == Kind::Int) return v->i;
    if (v->kind == Kind::Bool) return v->b ? 1 : 0;
    err(std::string(what) + " must be an int, got " + a_kind(v->kind));
  }

  const std::string& path_;
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<VP> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, VP> memo_;
  std::vector<PendingTensor> pending_;
};

void Unpickler::dict_set(Value& d, VP k, VP v) {
  if (k->kind == Kind::Str) {
    auto it = d.str_index.find(k->s);
    if (it != d.str_index.end()) {  // Python semantics: later value wins
      d.dict[it->second].second = std::move(v);
      return;
    }
    d.str_index.emplace(k->s, d.dict.size());
  }
  d.dict.emplace_back(std::move(k), std::move(v));
}

VP Unpickler::make_global(const std::string& module, const std::string& name) {
  VP g = make(Kind::Global);
  if (module == "collections" && name == "OrderedDict") {
    g->fn = GlobalFn::OrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g->fn = GlobalFn::RebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g->fn = GlobalFn::RebuildParameter;
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    g->fn = GlobalFn::RebuildParameterWithState;
  } else if (module == "torch" && storage_dtype(name, &g->dtype)) {
    g->fn = GlobalFn::StorageType;
  } else {
    err("unsupported global '" + module + "." + name +
        "' (only plain state dicts of tensors are supported; nothing is executed)");
  }
  return g;
}

VP Unpickler::persistent_load(const VP& pid) {
  // ('storage', storage_type, key, location, numel)
  if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::Str ||
      pid->items[0]->s != "storage")
    err("unsupported persistent id (expected ('storage', type, key, location, numel))");
  const VP& type = pid->items[1];
  const VP& key = pid->items[2];
  if (type->kind != Kind::Global || type->fn != GlobalFn::StorageType)
    err("persistent id: storage type is not a torch.*Storage class");
  if (key->kind != Kind::Str) err("persistent id: storage key is not a string");
  int64_t numel = as_int(pid->items[4], "persistent id: numel");
  if (numel < 0) err("persistent id: negative numel");
  VP s = make(Kind::Storage);
  s->dtype = type->dtype;
  s->key = key->s;
  s->numel = numel;
  return s;
}

VP Unpickler::rebuild_tensor(const std::vector<VP>& a) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  //                    backward_hooks[, metadata])
  if (a.size() != 6 && a.size() != 7) err("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + std::to_string(a.size()));
  if (a[0]->kind != Kind::Storage) err("_rebuild_tensor_v2: first argument is not a storage");
  const Value& st = *a[0];
  PendingTensor t;
  t.key = st.key;
  t.dtype = st.dtype;
  t.storage_numel = st.numel;
  t.offset = as_int(a[1], "_rebuild_tensor_v2: storage_offset");
  if (a[2]->kind != Kind::Tuple || a[3]->kind != Kind::Tuple) err("_rebuild_tensor_v2: size and stride must be tuples");
  if (a[2]->items.size() != a[3]->items.size()) err("_rebuild_tensor_v2: size and stride have different lengths");
  for (const VP& v : a[2]->items) t.size.push_back(as_int(v, "_rebuild_tensor_v2: size"));
  for (const VP& v : a[3]->items) t.stride.push_back(as_int(v, "_rebuild_tensor_v2: stride"));

  // Validate the view against the storage: every element must lie inside it.
  if (t.offset < 0) err("_rebuild_tensor_v2: negative storage_offset");
  int64_t numel = 1;
  int64_t last = t.offset;  // highest element index touched
  bool empty = false;
  for (size_t d = 0; d < t.size.size(); ++d) {
    if (t.size[d] < 0) err("_rebuild_tensor_v2: negative size");
    if (t.stride[d] < 0) err("_rebuild_tensor_v2: negative stride");
    if (t.size[d] == 0) empty = true;
    if (!mul_ok(numel, t.size[d], &numel)) err("_rebuild_tensor_v2: size overflows");
  }
  if (!empty) {
    for (size_t d = 0; d < t.size.size(); ++d) {
      int64_t span = 0;
      if (!mul_ok(t.size[d] - 1, t.stride[d], &span) || !add_ok(last, span, &last))
        err("_rebuild_tensor_v2: view extent overflows");
    }
    if (last >= t.storage_numel)
      err("tensor view (offset " + std::to_string(t.offset) + ", " + std::to_string(numel) +
          " elements) reaches element " + std::to_string(last) + " but storage '" + t.key + "' has only " +
          std::to_string(t.storage_numel) + " elements");
  }
  pending_.push_back(std::move(t));
  VP v = make(Kind::Tensor);
  v->tensor = pending_.size() - 1;
  return v;
}

VP Unpickler::call(const VP& callable, const VP& args) {
  if (callable->kind != Kind::Global) err("REDUCE on " + a_kind(callable->kind) + ", which is not callable");
  if (args->kind != Kind::Tuple) err("REDUCE arguments are not a tuple");
  const std::vector<VP>& a = args->items;
  switch (callable->fn) {
    case GlobalFn::OrderedDict: {
      VP d = make(Kind::Dict);
      if (a.empty()) return d;
      // OrderedDict(iterable_of_pairs)
      if (a.size() == 1 && (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple)) {
        for (const VP& pr : a[0]->items) {
          if ((pr->kind != Kind::Tuple && pr->kind != Kind::List) || pr->items.size() != 2)
            err("OrderedDict(...) argument is not a list of pairs");
          dict_set(*d, pr->items[0], pr->items[1]);
        }
        return d;
      }
      err("unsupported OrderedDict(...) arguments");
    }
    case GlobalFn::RebuildTensorV2: return rebuild_tensor(a);
    case GlobalFn::RebuildParameter:           // (data, requires_grad, backward_hooks)
    case GlobalFn::RebuildParameterWithState:  // (data, requires_grad, backward_hooks, state)
      if (a.empty() || a[0]->kind != Kind::Tensor) err("_rebuild_parameter: first argument is not a tensor");
      return a[0];
    case GlobalFn::StorageType: err("calling a torch.*Storage class is not supported");
  }
  err("unreachable");
}

VP Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= n_) err("pickle ended without STOP (truncated?)");
    const uint8_t op = p_[pos_++];
    if (op == '.') return pop();  // STOP
    if (!control_op(op) && !literal_op(op) && !container_op(op)) unsupported(op);
  }
}

bool Unpickler::control_op(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      uint8_t proto = u8();
      if (proto > 5) err("unsupported pickle protocol " + std::to_string(proto));
      return true;
    }
    case 0x95:  // FRAME: length only; the data follows inline
      le(8);
      return true;
    case 'c': {  // GLOBAL
      std::string module = line();
      std::string name = line();
      push(make_global(module, name));
      return true;
    }
    case 0x93: {  // STACK_GLOBAL (protocol 4)
      VP name = pop();
      VP module = pop();
      if (name->kind != Kind::Str || module->kind != Kind::Str) err("STACK_GLOBAL needs two strings");
      push(make_global(module->s, name->s));
      return true;
    }
    case 'q':  // BINPUT
      memo_put(u8());
      return true;
    case 'r':  // LONG_BINPUT
      memo_put(le(4));
      return true;
    case 0x94:  // MEMOIZE
      memo_put(memo_.size());
      return true;
    case 'h':  // BINGET
      memo_get(u8());
      return true;
    case 'j':  // LONG_BINGET
      memo_get(le(4));
      return true;
    case 'Q': {  // BINPERSID
      VP pid = pop();
      push(persistent_load(pid));
      return true;
    }
    case 'R': {  // REDUCE
      VP args = pop();
      VP fn = pop();
      push(call(fn, args));
      return true;
    }
    default: return false;
  }
}

bool Unpickler::literal_op(uint8_t op) {
  switch (op) {
    case 'X':  // BINUNICODE
      push_str(le(4));
      return true;
    case 0x8c:  // SHORT_BINUNICODE
      push_str(u8());
      return true;
    case 0x8d:  // BINUNICODE8
      push_str(le(8));
      return true;
    case 'J':  // BININT (signed 32-bit)
      push_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))));
      return true;
    case 'K':  // BININT1
      push_int(u8());
      return true;
    case 'M':  // BININT2
      push_int(static_cast<int64_t>(le(2)));
      return true;
    case 0x8a: {  // LONG1: n bytes, little-endian two's complement
      uint8_t len = u8();
      if (len > 8) err("LONG1 integer of " + std::to_string(len) + " bytes is too large");
      uint64_t raw = le(len);
      int64_t v = 0;
      if (len > 0) {
        if (len < 8 && (raw >> (8 * len - 1)) & 1) raw |= ~uint64_t(0) << (8 * len);  // sign-extend
        std::memcpy(&v, &raw, sizeof v);
      }
      push_int(v);
      return true;
    }
    case 'G': {  // BINFLOAT: big-endian double
      need(8);
      uint64_t raw = 0;
      for (int j = 0; j < 8; ++j) raw = (raw << 8) | p_[pos_ + j];
      pos_ += 8;
      VP v = make(Kind::Float);
      std::memcpy(&v->f, &raw, sizeof raw);
      push(std::move(v));
      return true;
    }
    case 0x88:    // NEWTRUE
    case 0x89: {  // NEWFALSE
      VP v = make(Kind::Bool);
      v->b = (op == 0x88);
      push(std::move(v));
      return true;
    }
    case 'N':  // NONE
      push(make(Kind::None));
      return true;
    default: return false;
  }
}

bool Unpickler::container_op(uint8_t op) {
  switch (op) {
    case '}':  // EMPTY_DICT
      push(make(Kind::Dict));
      return true;
    case ')':  // EMPTY_TUPLE
      push(make(Kind::Tuple));
      return true;
    case ']':  // EMPTY_LIST
      push(make(Kind::List));
      return true;
    case '(':  // MARK
      marks_.push_back(stack_.size());
      return true;
    case 't': {  // TUPLE
      VP t = make(Kind::Tuple);
      t->items = pop_mark();
      push(std::move(t));
      return true;
    }
    case 0x85:    // TUPLE1
    case 0x86:    // TUPLE2
    case 0x87: {  // TUPLE3
      size_t k = static_cast<size_t>(op - 0x84);
      VP t = make(Kind::Tuple);
      t->items.resize(k);
      for (size_t j = k; j-- > 0;) t->items[j] = pop();
      push(std::move(t));
      return true;
    }
    case 'b': {  // BUILD
      VP state = pop();
      VP& obj = top();
      // The state dict's OrderedDict carries `_metadata` as instance state:
      // irrelevant for loading weights, so ignored.
      if (obj->kind != Kind::Dict) err("BUILD on " + a_kind(obj->kind) + " is not supported");
      return true;
    }
    case 's': {  // SETITEM
      VP v = pop();
      VP k = pop();
      VP& d = top();
      if (d->kind != Kind::Dict) err("SETITEM on a non-dict");
      dict_set(*d, std::move(k), std::move(v));
      return true;
    }
    case 'u': {  // SETITEMS
      std::vector<VP> kv = pop_mark();
      if (kv.size() % 2 != 0) err("SETITEMS with an odd number of items");
      VP& d = top();
      if (d->kind != Kind::Dict) err("SETITEMS on a non-dict");
      for (size_t j = 0; j < kv.size(); j += 2) dict_set(*d, std::move(kv[j]), std::move(kv[j + 1]));
      return true;
    }
    case 'a': {  // APPEND
      VP v = pop();
      VP& l = top();
      if (l->kind != Kind::List) err("APPEND on a non-list");
      l->items.push_back(std::move(v));
      return true;
    }
    case 'e': {  // APPENDS
      std::vector<VP> vs = pop_mark();
      VP& l = top();
      if (l->kind != Kind::List) err("APPENDS on a non-list");
      for (VP& v : vs) l->items.push_back(std::move(v));
      return true;
    }
    default: return false;
  }
}

void Unpickler::unsupported(uint8_t op) const {
  std::string desc = hex_byte(op);
  if (op >= 0x20 && op < 0x7f) desc += std::string(" ('") + static_cast<char>(op) + "')";
  err("unsupported pickle opcode " + desc);
}

// ---------------------------------------------------------------------------
// File-level checks

// Looks at the first bytes so that non-zip inputs get a helpful message
// instead of a zip-library error.
void check_signature(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bin_fail(path, "cannot open file");
  unsigned char head[16] = {0};
  f.read(reinterpret_cast<char*>(head), sizeof head);
  const size_t got = static_cast<size_t>(f.gcount());
  if (got == 0) bin_fail(path, "file is empty");
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return;  // zip

  // torch < 1.6 ("legacy") checkpoints start with a pickled magic number:
  // PROTO n, LONG1 10 bytes 0x1950a86a20f9469cfc6c.
  static const unsigned char legacy_magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (got >= 14 && head[0] == 0x80 && std::memcmp(head + 2, legacy_magic, sizeof legacy_magic) == 0)
    bin_fail(path,
             "this is a legacy (pre-1.6, non-zip) PyTorch checkpoint, which is not supported; "
             "re-save it with torch >= 1.6 (torch.save(torch.load(f), f)) or convert it to "
             "model.safetensors");
  if (head[0] == 0x80)
    bin_fail(path,
             "this is a bare pickle, not a zip-format PyTorch checkpoint (legacy torch.save format?); "
             "re-save it with torch >= 1.6 or convert it to model.safetensors");
  if (got >= 9 && head[8] == '{') bin_fail(path, "this looks like a safetensors file, not a PyTorch .bin checkpoint");
  bin_fail(path, "not a PyTorch zip-format checkpoint (no ZIP signature at start of file)");
}

// The state dict as data.pkl describes it: each entry's name and tensor view, the storages not yet read.
struct PickledStateDict {
  std::vector<PendingTensor> pending;
  std::vector<std::pair<std::string, size_t>> entries;  // name -> pending index
};

// Reads and interprets data.pkl (after checking the archive's byte order).
PickledStateDict read_data_pkl(const std::string& path, caffe2::serialize::PyTorchStreamReader& reader) {
  if (reader.hasRecord("byteorder")) {
    at::DataPtr bo;
    size_t bo_size = 0;
    std::tie(bo, bo_size) = reader.getRecord("byteorder");
    std::string order(static_cast<const char*>(bo.get()), bo_size);
    if (order.rfind("little", 0) != 0)
      bin_fail(path, "checkpoint byte order is '" + order + "'; only little-endian is supported");
  }
  if (!reader.hasRecord("data.pkl"))
    bin_fail(path, "zip archive has no data.pkl record (not a torch.save checkpoint?)");
  at::DataPtr pkl;
  size_t pkl_size = 0;
  std::tie(pkl, pkl_size) = reader.getRecord("data.pkl");

  Unpickler up(path, static_cast<const uint8_t*>(pkl.get()), pkl_size);
  VP root = up.run();
  if (root->kind != Kind::Dict)
    bin_fail(path, "top-level object is " + a_kind(root->kind) + ", expected a state dict (dict of tensors)");
  PickledStateDict sd;
  for (const auto& kv : root->dict) {
    if (kv.first->kind != Kind::Str)
      bin_fail(path, std::string("state dict has a non-string key (") + kind_name(kv.first->kind) + ")");
    if (kv.second->kind != Kind::Tensor)
      bin_fail(path, "state dict entry '" + kv.first->s + "' is " + a_kind(kv.second->kind) +
                         ", expected a tensor (is this a full training checkpoint rather than a state dict?)");
    sd.entries.emplace_back(kv.first->s, kv.second->tensor);
  }
  sd.pending = std::move(up.pending());
  return sd;
}

// The entries by storage record: the keys in order of first use, and the entries that view each.
std::vector<std::pair<std::string, std::vector<size_t>>> entries_by_storage(const PickledStateDict& sd) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  std::unordered_map<std::string, size_t> index;  // key -> its place in groups
  for (size_t e = 0; e < sd.entries.size(); ++e) {
    const std::string& key = sd.pending[sd.entries[e].second].key;
    auto it = index.find(key);
    if (it == index.end()) {
      index.emplace(key, groups.size());
      groups.emplace_back(key, std::vector<size_t>{e});
    } else {
      groups[it->second].second.push_back(e);
    }
  }
  return groups;
}

// Reads one storage record and copies out the tensors of the entries that view it (into tensors[e]).
void read_storage(const std::string& path, caffe2::serialize::PyTorchStreamReader& reader, const std::string& key,
                  const std::vector<size_t>& uses, const PickledStateDict& sd, std::vector<at::Tensor>& tensors) {
  const std::string record = "data/" + key;
  if (!reader.hasRecord(record)) bin_fail(path, "missing storage record '" + record + "' in zip archive");
  at::DataPtr data;
  size_t nbytes = 0;
  std::tie(data, nbytes) = reader.getRecord(record);
  for (size_t e : uses) {
    const PendingTensor& t = sd.pending[sd.entries[e].second];
    const std::string& name = sd.entries[e].first;
    const int64_t item = static_cast<int64_t>(c10::elementSize(t.dtype));
    int64_t want = 0;
    if (!mul_ok(t.storage_numel, item, &want) || static_cast<uint64_t>(want) != nbytes)
      bin_fail(path, "storage record '" + record + "' (used by '" + name + "') has " + std::to_string(nbytes) +
                         " bytes, expected " + std::to_string(t.storage_numel) + " elements of " +
                         std::to_string(item) + " bytes (" + c10::toString(t.dtype) + ")");
    const auto opts = at::TensorOptions().dtype(t.dtype).device(at::kCPU);
    int64_t numel = 1;
    for (int64_t s : t.size) numel *= s;  // validated in rebuild_tensor
    if (numel == 0 || t.storage_numel == 0) {
      tensors[e] = at::empty(t.size, opts);
      continue;
    }
    at::Tensor whole = at::from_blob(data.get(), {t.storage_numel}, opts);
    tensors[e] = whole.as_strided(t.size, t.stride, t.offset).clone(at::MemoryFormat::Contiguous);
  }
}

}  // namespace

// ---------------------------------------------------------------------------

std::vector<std::pair<std::string, at::Tensor>> load_torch_bin(const std::string& path) {
  check_signature(path);

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  PickledStateDict sd;
  try {
    reader.reset(new caffe2::serialize::PyTorchStreamReader(path));
    sd = read_data_pkl(path, *reader);
  } catch (const c10::Error& e) {
    bin_fail(path, std::string("cannot read PyTorch zip archive: ") + e.what_without_backtrace());
  } catch (const std::runtime_error&) {
    throw;
  } catch (const std::exception& e) {
    bin_fail(path, std::string("reading data.pkl: ") + e.what());
  }

  // Materialize tensors one storage record at a time (grouped by key, in order of first use) so only one raw record
  // is held in memory at once.
  std::vector<at::Tensor> tensors(sd.entries.size());
  for (const auto& [key, uses] : entries_by_storage(sd)) {
    try {
      read_storage(path, *reader, key, uses, sd, tensors);
    } catch (const c10::Error& e) {
      bin_fail(path, "reading storage record 'data/" + key + "': " + e.what_without_backtrace());
    } catch (const std::runtime_error&) {
      throw;
    } catch (const std::exception& e) {
      bin_fail(path, "reading storage record 'data/" + key + "': " + e.what());
    }
  }

  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(sd.entries.size());
  for (size_t e = 0; e < sd.entries.size(); ++e)
    out.emplace_back(std::move(sd.entries[e].first), std::move(tensors[e]));
  return out;
}

}  // namespace petcore
