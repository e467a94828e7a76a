#pragma once
#include <ATen/ATen.h>
#include <string>
#include <utility>
#include <vector>
namespace petcore {
// Loads a PyTorch zip-format state dict (pytorch_model.bin). Order = order in the file. Throws std::runtime_error.
std::vector<std::pair<std::string, at::Tensor>> load_torch_bin(const std::string& path);
}  // namespace petcore
