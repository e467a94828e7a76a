// Reading and writing the safetensors format (8-byte header length, JSON header, raw little-endian data).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

namespace petcore {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Reads every tensor (CPU, the file's dtype) in header order. Throws std::runtime_error naming the file and
// the problem for a missing, truncated or corrupt file.
NamedTensors read_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// Writes atomically (temp file + rename). Tensors are written contiguous, on CPU, in name order.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace petcore
