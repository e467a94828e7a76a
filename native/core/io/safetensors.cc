#include "io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "io/file_util.h"

namespace petcore {
namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  int64_t size;
};

const DtypeInfo kDtypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2}, {"F64", at::kDouble, 8},
    {"I64", at::kLong, 8},  {"I32", at::kInt, 4},   {"I16", at::kShort, 2},     {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},   {"BOOL", at::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

constexpr uint64_t kMaxHeader = 100ull << 20;

}  // namespace

NamedTensors read_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open safetensors file");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  auto corrupt = [&](const std::string& why) {
    return std::runtime_error(path + ": corrupt safetensors file: " + why);
  };
  if (file_size < 8)
    throw corrupt("file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > kMaxHeader || header_len > file_size - 8)
    throw corrupt("header length " + std::to_string(header_len) + " exceeds the file size " +
                  std::to_string(file_size));
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw corrupt("header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  NamedTensors out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (metadata && v.is_object())
        for (auto m = v.begin(); m != v.end(); ++m)
          if (m.value().is_string()) (*metadata)[m.key()] = m.value().get<std::string>();
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw corrupt("entry \"" + name + "\" lacks dtype/shape/data_offsets");
    if (!v["dtype"].is_string()) throw corrupt("entry \"" + name + "\" has a non-string dtype");
    const DtypeInfo* dt = dtype_by_name(v["dtype"].get<std::string>());
    if (!dt) throw corrupt("tensor \"" + name + "\" has unsupported dtype " + v["dtype"].dump());
    std::vector<int64_t> shape;
    if (!v["shape"].is_array()) throw corrupt("tensor \"" + name + "\" has a non-array shape");
    int64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw corrupt("tensor \"" + name + "\" has a bad dimension " + d.dump());
      shape.push_back(d.get<int64_t>());
      if (__builtin_mul_overflow(numel, shape.back(), &numel))
        throw corrupt("tensor \"" + name + "\" has a shape " + v["shape"].dump() + " too large to hold");
    }
    int64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(dt->size), &nbytes))
      throw corrupt("tensor \"" + name + "\" has a shape " + v["shape"].dump() + " too large to hold");
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw corrupt("tensor \"" + name + "\" has bad data_offsets " + off.dump());
    const uint64_t begin = off[0], end = off[1];
    if (begin > end || end > data_size)
      throw corrupt("tensor \"" + name + "\" data [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") runs past the end of the data (" + std::to_string(data_size) + " bytes; truncated file?)");
    if (end - begin != static_cast<uint64_t>(nbytes))
      throw corrupt("tensor \"" + name + "\" holds " + std::to_string(end - begin) + " bytes but its shape needs " +
                    std::to_string(nbytes));
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dt->type));
    if (numel > 0) {
      in.seekg(static_cast<std::streamoff>(data_start + begin));
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(end - begin));
      if (!in) throw corrupt("could not read tensor \"" + name + "\" (truncated file?)");
    }
    out.emplace_back(name, t);
  }
  return out;
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, at::Tensor>> sorted;
  for (const auto& [name, t] : tensors) sorted.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const DtypeInfo* dt = dtype_by_type(t.scalar_type());
    if (!dt) throw std::runtime_error("cannot save tensor \"" + name + "\": unsupported dtype");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dt->size;
    header[name] = {{"dtype", dt->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');  // data aligned to 8 bytes, as the reference writer does

  write_file_atomically(path, [&](std::ofstream& out) {
    unsigned char len_bytes[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& [name, t] : sorted)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  });
}

}  // namespace petcore
