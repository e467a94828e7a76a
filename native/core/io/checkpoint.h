// Finding and reading the tensors of a Hugging Face model directory, and writing one back.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace petcore {

struct CheckpointFiles {
  std::string format;              // "safetensors", "safetensors-sharded", "pytorch", "pytorch-sharded"
  std::vector<std::string> files;  // absolute or dir-relative paths actually read
};

// Reads every tensor of the checkpoint in `dir`: model.safetensors, model.safetensors.index.json (+ shards),
// pytorch_model.bin or pytorch_model.bin.index.json, in that order of preference.
NamedTensors read_checkpoint(const std::string& dir, CheckpointFiles* files = nullptr);

// Writes `tensors` as model.safetensors, or as model-0000i-of-0000n.safetensors + index when their size exceeds
// max_shard_bytes (0: never shard). Every file is written atomically.
void write_checkpoint(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes = 0);

void make_directories(const std::string& dir);

}  // namespace petcore
