// The pre-tokenized inputs that scripts/gpu-inputs.js writes (test sentences with their [MASK] positions and gold
// labels, the verbalizer's candidates and words, PET training steps), read and batched one way for core_bench and
// core_profile. Header-only: gpu-check.sh's direct build compiles each executable from its own file.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "model/bert_model.h"

namespace petcore {
namespace bench {

struct Example {
  std::vector<int64_t> ids, types, mask;
  int64_t gold = -1;
};

struct TrainStep {
  std::vector<int64_t> rows;  // example indices
  std::vector<int64_t> mlm;   // (row, column) pairs, flattened
};

struct Inputs {
  std::vector<Example> examples;
  std::vector<int64_t> candidates;
  std::vector<std::vector<std::vector<int64_t>>> words;  // [label][word][slot] -> candidate index
  int64_t slots = 1, pad = 0, mask_id = 103;
  std::vector<TrainStep> steps;
  int64_t train_batch = 32;
  double lr = 1e-4;
  std::optional<uint64_t> seed;  // the inputs' train.seed (scripts/gpu-inputs.js writes it); none: OptimConfig's
};

// `limit` > 0 keeps the first `limit` examples (and the training steps whose examples all survived).
inline Inputs read_inputs(const std::string& path, int64_t limit) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open (run scripts/gpu-prepare.sh)");
  nlohmann::json j = nlohmann::json::parse(f);
  Inputs in;
  for (const auto& e : j.at("examples")) {
    Example x;
    x.ids = e.at("ids").get<std::vector<int64_t>>();
    x.mask = e.at("mask").get<std::vector<int64_t>>();
    x.types = e.contains("types") ? e.at("types").get<std::vector<int64_t>>() : std::vector<int64_t>(x.ids.size(), 0);
    x.gold = e.value("gold", -1);
    in.examples.push_back(std::move(x));
    if (limit > 0 && static_cast<int64_t>(in.examples.size()) >= limit) break;
  }
  if (in.examples.empty()) throw std::runtime_error(path + ": no examples");
  in.candidates = j.at("candidates").get<std::vector<int64_t>>();
  in.words = j.at("words").get<std::vector<std::vector<std::vector<int64_t>>>>();
  in.slots = j.at("slots").get<int64_t>();
  in.pad = j.at("special").at("pad").get<int64_t>();
  in.mask_id = j.at("special").at("mask").get<int64_t>();
  const auto& t = j.at("train");
  in.train_batch = t.at("batch_size").get<int64_t>();
  in.lr = t.value("lr", 1e-4);
  if (t.contains("seed")) in.seed = t.at("seed").get<uint64_t>();
  const int64_t n = static_cast<int64_t>(in.examples.size());
  for (const auto& s : t.at("steps")) {
    TrainStep st;
    st.rows = s.at("rows").get<std::vector<int64_t>>();
    st.mlm = s.at("mlm").get<std::vector<int64_t>>();
    // with --limit, keep the steps whose examples all survived
    if (std::all_of(st.rows.begin(), st.rows.end(), [&](int64_t r) { return r < n; }))
      in.steps.push_back(std::move(st));
  }
  return in;
}

// Stable sort by length, cut in order (lib/batch.ts lengthBuckets).
inline std::vector<std::vector<int64_t>> length_buckets(const std::vector<Example>& ex, int64_t bs) {
  std::vector<int64_t> order(ex.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ex[a].ids.size() < ex[b].ids.size(); });
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < order.size(); i += bs)
    out.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + static_cast<size_t>(bs)));
  return out;
}

// Right-padded CPU tensors; ids overridden at (row, col) pairs by `mask_id` when `mlm` is given.
inline Batch make_batch(const BertModel& m, const Inputs& in, const std::vector<int64_t>& rows,
                        const std::vector<int64_t>* mlm = nullptr) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (int64_t r : rows) T = std::max<int64_t>(T, in.examples[r].ids.size());
  at::Tensor ids = at::full({B, T}, in.pad, at::kLong), types = at::zeros({B, T}, at::kLong),
             att = at::zeros({B, T}, at::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  auto pt = types.accessor<int64_t, 2>();
  auto pa = att.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Example& e = in.examples[rows[b]];
    for (size_t c = 0; c < e.ids.size(); ++c) {
      pi[b][c] = e.ids[c];
      pt[b][c] = e.types[c];
      pa[b][c] = 1;
    }
  }
  if (mlm)
    for (size_t k = 0; k + 1 < mlm->size(); k += 2) pi[(*mlm)[k]][(*mlm)[k + 1]] = in.mask_id;
  return m.check_batch(ids, types, att);
}

inline at::Tensor mask_positions(const Inputs& in, const std::vector<int64_t>& rows) {
  std::vector<int64_t> p;
  for (size_t b = 0; b < rows.size(); ++b)
    for (int64_t col : in.examples[rows[b]].mask) {
      p.push_back(static_cast<int64_t>(b));
      p.push_back(col);
    }
  return at::tensor(p, at::kLong).view({-1, 2});
}

}  // namespace bench
}  // namespace petcore
