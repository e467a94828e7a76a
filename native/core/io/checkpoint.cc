#include "io/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "io/file_util.h"
#include "io/torch_bin.h"

namespace petcore {
namespace {

NamedTensors read_sharded(const std::string& dir, const std::string& index_name, bool safetensors,
                          CheckpointFiles* files) {
  const std::string index_path = join_path(dir, index_name);
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_text_file(index_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(index_path + ": invalid JSON: " + e.what());
  }
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    throw std::runtime_error(index_path + ": no \"weight_map\" object");
  std::map<std::string, std::set<std::string>> by_file;  // shard -> names the index promises
  std::vector<std::string> order;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw std::runtime_error(index_path + ": weight_map entry \"" + it.key() + "\" is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      throw std::runtime_error(index_path + ": shard name \"" + shard + "\" must be a plain file name");
    if (!by_file.count(shard)) order.push_back(shard);
    by_file[shard].insert(it.key());
  }
  NamedTensors out;
  for (const auto& shard : order) {
    const std::string path = join_path(dir, shard);
    if (!file_exists(path)) throw std::runtime_error(index_path + ": shard " + shard + " is missing");
    NamedTensors part = safetensors ? read_safetensors(path) : load_torch_bin(path);
    if (files) files->files.push_back(path);
    std::set<std::string> seen;
    for (auto& nt : part) {
      seen.insert(nt.first);
      out.push_back(std::move(nt));
    }
    for (const auto& name : by_file[shard])
      if (!seen.count(name))
        throw std::runtime_error(index_path + ": tensor \"" + name + "\" is not in its shard " + shard);
  }
  return out;
}

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i, n);
  return buf;
}

}  // namespace

NamedTensors read_checkpoint(const std::string& dir, CheckpointFiles* files) {
  CheckpointFiles local;
  CheckpointFiles& f = files ? *files : local;
  if (file_exists(join_path(dir, "model.safetensors"))) {
    f.format = "safetensors";
    f.files = {join_path(dir, "model.safetensors")};
    return read_safetensors(f.files[0]);
  }
  if (file_exists(join_path(dir, "model.safetensors.index.json"))) {
    f.format = "safetensors-sharded";
    return read_sharded(dir, "model.safetensors.index.json", true, &f);
  }
  if (file_exists(join_path(dir, "pytorch_model.bin"))) {
    f.format = "pytorch";
    f.files = {join_path(dir, "pytorch_model.bin")};
    return load_torch_bin(f.files[0]);
  }
  if (file_exists(join_path(dir, "pytorch_model.bin.index.json"))) {
    f.format = "pytorch-sharded";
    return read_sharded(dir, "pytorch_model.bin.index.json", false, &f);
  }
  throw std::runtime_error(dir +
                           ": no weights found (looked for model.safetensors, model.safetensors.index.json, "
                           "pytorch_model.bin, pytorch_model.bin.index.json)");
}

void make_directories(const std::string& dir) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST)
      throw std::runtime_error(partial + ": cannot create directory: " + std::strerror(errno));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw std::runtime_error(dir + ": not a directory");
}

void write_checkpoint(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes) {
  make_directories(dir);
  uint64_t total = 0;
  for (const auto& nt : tensors) total += static_cast<uint64_t>(nt.second.numel()) * nt.second.element_size();
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    write_safetensors(join_path(dir, "model.safetensors"), tensors);
    // A stale index would shadow nothing (model.safetensors is preferred) but would confuse other readers.
    std::remove(join_path(dir, "model.safetensors.index.json").c_str());
    return;
  }
  // Greedy packing in the given order, as HF's save_pretrained does.
  std::vector<NamedTensors> shards(1);
  uint64_t current = 0;
  for (const auto& nt : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(nt.second.numel()) * nt.second.element_size();
    if (current > 0 && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += bytes;
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i + 1, shards.size());
    write_safetensors(join_path(dir, name), shards[i]);
    for (const auto& nt : shards[i]) weight_map[nt.first] = name;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  write_file_atomically(join_path(dir, "model.safetensors.index.json"),
                        [&](std::ofstream& out) { out.write(text.data(), static_cast<std::streamsize>(text.size())); });
  std::remove(join_path(dir, "model.safetensors").c_str());
}

}  // namespace petcore
