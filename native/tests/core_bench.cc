// Throughput of the C++ core without Node (for machines such as the GPU one), on pre-tokenized inputs written by
// scripts/gpu-inputs.js: zero-shot candidate scoring (sentences/s at several batch sizes over length-sorted,
// padded batches) and PET training steps/s (the step lib/bench/ours.ts runs: CE over the verbalizer candidates at
// the [MASK] plus MLM CE at the masked tokens, backward, clipping, AdamW), in fp32 and bf16 (autocast on CUDA, the
// layer kernel's bf16 GEMMs on CPU). scripts/gpu/hf_bench.py runs the same work with HF transformers.
//   core_bench <model dir> <inputs.json> [cpu|cuda] [--batch-sizes 1,8,32,128] [--max-batches 300] [--warmup 2]
//              [--precisions fp32,bf16] [--limit N] [--train-steps 20] [--train-warmup 2] [--no-score] [--no-train]
//              [--threads N] [--out result.json]
// --max-batches: a batch size with more batches than this times that many, evenly spaced over the length-sorted
// batches (so their lengths represent the whole set). The last stdout line is a JSON summary; --out gets it with
// the per-example labels and label scores of the largest batch size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include "bench_inputs.h"
#include "model/bert_model.h"
#include "model/scoring.h"
#include "train/trainer.h"

using namespace petcore;
using namespace petcore::bench;
using json = nlohmann::json;

namespace {

struct Options {
  std::string model, inputs, device = "cpu", out;
  std::vector<int64_t> batch_sizes{1, 8, 32, 128};
  std::vector<std::string> precisions;
  int64_t max_batches = 300, warmup = 2, limit = 0, train_steps = 20, train_warmup = 2, threads = 0;
  bool score = true, train = true;
};

// The message without LibTorch's backtrace.
std::string message(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// At most `max` batches, evenly spaced (index floor(k * n / max)); hf_bench.py picks the same ones.
std::vector<std::vector<int64_t>> pick_batches(const std::vector<std::vector<int64_t>>& all, int64_t max) {
  const int64_t n = static_cast<int64_t>(all.size());
  if (max <= 0 || n <= max) return all;
  std::vector<std::vector<int64_t>> out;
  for (int64_t k = 0; k < max; ++k) out.push_back(all[k * n / max]);
  return out;
}

// Label scores of one example from its slots' candidate logits (PET: mean over a label's words of the sum over
// slots; raw logits for single-slot verbalizers, log-probabilities otherwise) — lib/pet/label-scores.ts.
std::vector<double> label_scores(const Inputs& in, const float* logits, const float* log_z) {
  const int64_t C = static_cast<int64_t>(in.candidates.size());
  std::vector<double> out;
  for (const auto& ws : in.words) {
    double sum = 0;
    for (const auto& w : ws) {
      double s = 0;
      for (size_t slot = 0; slot < w.size(); ++slot) {
        s += logits[slot * C + w[slot]];
        if (in.slots != 1) s -= log_z[slot];
      }
      sum += s;
    }
    out.push_back(sum / static_cast<double>(ws.size()));
  }
  return out;
}

void sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

double percentile(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const double pos = p / 100.0 * static_cast<double>(xs.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(xs.size() - 1, lo + 1);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - static_cast<double>(lo));
}

json bench_scoring(const BertModel& m, const Inputs& in, const Options& o, bool bf16, std::vector<int64_t>* labels_out,
                   std::vector<std::vector<double>>* scores_out) {
  const at::Device dev = m.device();
  const at::Tensor cands = at::tensor(in.candidates, at::kLong);
  const int64_t N = static_cast<int64_t>(in.examples.size()), S = in.slots,
                C = static_cast<int64_t>(in.candidates.size());
  json by_bs = json::array();
  double best = 0;
  int64_t best_bs = 0, label_changes = 0;
  std::vector<int64_t> labels(N, -1);
  std::vector<std::vector<double>> scores(N);
  for (int64_t bs : o.batch_sizes) {
    const auto all = length_buckets(in.examples, bs);
    const auto batches = pick_batches(all, o.max_batches);
    auto run = [&](const std::vector<int64_t>& rows, bool record) {
      Batch b = make_batch(m, in, rows);
      CandidateScores s = score_candidates(m, b, mask_positions(in, rows), cands,
                                           bf16 ? Precision::Bf16 : Precision::Fp32);  // CPU results: synchronizes
      if (!record) return;
      const float* lg = s.logits.data_ptr<float>();
      const float* lz = s.log_z.data_ptr<float>();
      for (size_t k = 0; k < rows.size(); ++k) {
        std::vector<double> ls = label_scores(in, lg + k * S * C, lz + k * S);
        const int64_t label = std::max_element(ls.begin(), ls.end()) - ls.begin();
        const int64_t i = rows[k];
        if (labels[i] >= 0 && labels[i] != label) ++label_changes;
        labels[i] = label;
        scores[i] = ls;
      }
    };
    for (int64_t w = 0; w < std::min<int64_t>(o.warmup, batches.size()); ++w) run(batches[w], false);
    sync(dev);
    std::vector<double> lat;
    int64_t sentences = 0, padded = 0, real = 0;
    const double t0 = now_s();
    for (const auto& rows : batches) {
      const double tb = now_s();
      run(rows, true);
      lat.push_back((now_s() - tb) * 1000);
      int64_t T = 0;
      for (int64_t r : rows) {
        T = std::max<int64_t>(T, in.examples[r].ids.size());
        real += in.examples[r].ids.size();
      }
      padded += T * static_cast<int64_t>(rows.size());
      sentences += static_cast<int64_t>(rows.size());
    }
    sync(dev);
    const double secs = now_s() - t0;
    const double rate = sentences / secs;
    if (rate > best) {
      best = rate;
      best_bs = bs;
    }
    by_bs.push_back({{"batch_size", bs},
                     {"batches", batches.size()},
                     {"of_batches", all.size()},
                     {"sentences", sentences},
                     {"seconds", secs},
                     {"sentences_per_s", rate},
                     {"p50_ms", percentile(lat, 50)},
                     {"p95_ms", percentile(lat, 95)},
                     {"padded_tokens", padded},
                     {"real_tokens", real}});
    std::fprintf(stderr, "core_bench: score %s batch %lld: %.1f sentences/s (%zu of %zu batches, %.2f s)\n",
                 bf16 ? "bf16" : "fp32", static_cast<long long>(bs), rate, batches.size(), all.size(), secs);
  }
  int64_t correct = 0, labeled = 0, covered = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (labels[i] < 0) continue;
    ++covered;
    if (in.examples[i].gold >= 0) {
      ++labeled;
      if (labels[i] == in.examples[i].gold) ++correct;
    }
  }
  if (labels_out) *labels_out = labels;
  if (scores_out) *scores_out = scores;
  return {{"by_batch_size", by_bs},
          {"best_batch_size", best_bs},
          {"best_sentences_per_s", best},
          {"accuracy", labeled ? json(static_cast<double>(correct) / labeled) : json(nullptr)},
          {"correct", correct},
          {"labeled", labeled},
          {"covered", covered},
          {"label_changes", label_changes}};
}

json bench_training(const std::string& dir, const Inputs& in, const Options& o, const at::Device& dev, bool bf16) {
  if (in.steps.empty()) throw std::runtime_error("the inputs hold no training batches (or --limit removed them all)");
  auto model = BertModel::load(dir, dev);  // fresh weights for each precision
  OptimConfig cfg;
  cfg.lr = in.lr;
  if (in.seed) cfg.seed = *in.seed;
  cfg.bf16 = bf16;
  Trainer trainer(*model, TrainableSpec(), cfg);
  const at::Tensor cands = at::tensor(in.candidates, at::kLong);
  const int64_t total = o.train_warmup + o.train_steps;
  struct Prepared {
    Batch batch;
    LossSpec loss;
    int64_t T;
  };
  std::vector<Prepared> prepared;
  for (int64_t s = 0; s < total; ++s) {
    const TrainStep& st = in.steps[s % in.steps.size()];
    Prepared p;
    p.batch = make_batch(*model, in, st.rows, &st.mlm);
    p.T = p.batch.input_ids.size(1);
    std::vector<int64_t> targets, cand_labels;
    for (size_t k = 0; k + 1 < st.mlm.size(); k += 2)
      targets.push_back(in.examples[st.rows[st.mlm[k]]].ids[st.mlm[k + 1]]);
    for (int64_t r : st.rows) {
      const Example& e = in.examples[r];
      if (e.gold < 0) throw std::runtime_error("a training row has no label");
      for (size_t slot = 0; slot < e.mask.size(); ++slot) cand_labels.push_back(in.words[e.gold][0][slot]);
    }
    p.loss.cand_positions = mask_positions(in, st.rows);
    p.loss.candidates = cands;
    p.loss.cand_labels = at::tensor(cand_labels, at::kLong);
    if (!targets.empty()) {
      p.loss.vocab_positions = at::tensor(st.mlm, at::kLong).view({-1, 2});
      p.loss.vocab_targets = at::tensor(targets, at::kLong);
    }
    prepared.push_back(std::move(p));
  }
  std::vector<double> losses, lat;
  for (int64_t s = 0; s < o.train_warmup; ++s) trainer.step(prepared[s].batch, prepared[s].loss);
  sync(dev);
  const double t0 = now_s();
  double mean_t = 0;
  for (int64_t s = o.train_warmup; s < total; ++s) {
    const double tb = now_s();
    StepResult r = trainer.step(prepared[s].batch, prepared[s].loss);  // reads the loss: synchronizes each step
    lat.push_back((now_s() - tb) * 1000);
    losses.push_back(r.loss);
    mean_t += static_cast<double>(prepared[s].T);
  }
  sync(dev);
  const double secs = now_s() - t0;
  std::fprintf(stderr, "core_bench: train %s: %.2f steps/s (batch %lld, %lld steps, loss %.4f -> %.4f)\n",
               bf16 ? "bf16" : "fp32", o.train_steps / secs, static_cast<long long>(in.train_batch),
               static_cast<long long>(o.train_steps), losses.front(), losses.back());
  return {{"batch_size", in.train_batch},
          {"steps", o.train_steps},
          {"seconds", secs},
          {"steps_per_s", o.train_steps / secs},
          {"p50_ms", percentile(lat, 50)},
          {"p95_ms", percentile(lat, 95)},
          {"mean_seq_len", mean_t / o.train_steps},
          {"first_loss", losses.front()},
          {"last_loss", losses.back()},
          {"losses", losses}};
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s <model dir> <inputs.json> [cpu|cuda] [--batch-sizes 1,8,32,128] [--max-batches 300] "
               "[--warmup 2] [--precisions fp32,bf16] [--limit N] [--train-steps 20] [--train-warmup 2] "
               "[--no-score] [--no-train] [--threads N] [--out result.json]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // What the library sets before LibTorch loads (lib/native.ts): idle OpenMP workers sleep instead of spinning, where
  // spinning ones took the cores from OpenBLAS's threads (fp32 training at 2 threads ran at half its speed). libgomp
  // reads the variable when it loads, before main, so the bench runs itself again with it set; one the user set wins.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) {
    execv("/proc/self/exe", argv);  // returns only if it failed: go on as started
  }
  Options o;
  std::vector<std::string> pos;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--batch-sizes") {
        o.batch_sizes.clear();
        for (const auto& s : split(next(), ',')) o.batch_sizes.push_back(std::stoll(s));
      } else if (a == "--precisions") {
        o.precisions = split(next(), ',');
      } else if (a == "--max-batches") {
        o.max_batches = std::stoll(next());
      } else if (a == "--warmup") {
        o.warmup = std::stoll(next());
      } else if (a == "--limit") {
        o.limit = std::stoll(next());
      } else if (a == "--train-steps") {
        o.train_steps = std::stoll(next());
      } else if (a == "--train-warmup") {
        o.train_warmup = std::stoll(next());
      } else if (a == "--threads") {
        o.threads = std::stoll(next());
      } else if (a == "--out") {
        o.out = next();
      } else if (a == "--no-score") {
        o.score = false;
      } else if (a == "--no-train") {
        o.train = false;
      } else if (a.rfind("--", 0) == 0) {
        throw std::invalid_argument("unknown option " + a);
      } else {
        pos.push_back(a);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_bench: %s\n", e.what());
    return usage(argv[0]);
  }
  if (pos.size() < 2 || pos.size() > 3 || o.train_steps < 1 || o.train_warmup < 0) return usage(argv[0]);
  o.model = pos[0];
  o.inputs = pos[1];
  if (pos.size() > 2) o.device = pos[2];
  for (int64_t bs : o.batch_sizes)
    if (bs < 1) return usage(argv[0]);

  json result;
  int rc = 0;
  try {
    const at::Device device(o.device);
    if (device.is_cuda() && !torch::cuda::is_available())
      throw std::runtime_error(
          "CUDA was asked for, but this LibTorch has no usable CUDA device (a CPU-only build, "
          "libtorch_cuda not linked in, or no GPU/driver)");
    if (device.is_cpu())
      at::set_num_threads(
          static_cast<int>(o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency())));
    if (o.precisions.empty()) o.precisions = {"fp32", "bf16"};
    for (const auto& p : o.precisions)
      if (p != "fp32" && p != "bf16") throw std::invalid_argument("precision must be fp32 or bf16, got " + p);
    const Inputs in = read_inputs(o.inputs, o.limit);

    const double t0 = now_s();
    auto model = BertModel::load(o.model, device);
    sync(device);
    const double load_s = now_s() - t0;
    const auto& c = model->config();
    result = {{"side", "ours"},
              {"model", o.model},
              {"device", o.device},
              {"torch", TORCH_VERSION},
              {"threads", at::get_num_threads()},
              {"n", in.examples.size()},
              {"load_s", load_s},
              {"config",
               {{"hidden", c.hidden_size},
                {"layers", c.num_hidden_layers},
                {"heads", c.num_attention_heads},
                {"intermediate", c.intermediate_size},
                {"vocab", c.vocab_size}}},
              {"max_batches", o.max_batches},
              {"score", json::object()},
              {"train", json::object()},
              {"errors", json::array()}};
    json full;  // per-example results of the first precision
    for (const auto& p : o.precisions) {
      const bool bf16 = p == "bf16";
      if (o.score) {
        try {
          std::vector<int64_t> labels;
          std::vector<std::vector<double>> scores;
          result["score"][p] = bench_scoring(*model, in, o, bf16, &labels, &scores);
          full[p] = {{"labels", labels}, {"scores", scores}};
        } catch (const std::exception& e) {
          result["errors"].push_back("score " + p + ": " + message(e));
          rc = 1;
        }
      }
    }
    model.reset();
    if (o.train) {
      for (const auto& p : o.precisions) {
        const bool bf16 = p == "bf16";
        try {
          result["train"][p] = bench_training(o.model, in, o, device, bf16);
        } catch (const std::exception& e) {
          result["errors"].push_back("train " + p + ": " + message(e));
          rc = 1;
        }
      }
    }
    if (!o.out.empty()) {
      json file = result;
      file["per_example"] = full;
      std::ofstream f(o.out);
      f << file.dump() << "\n";
      if (!f) throw std::runtime_error(o.out + ": cannot write");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_bench: error: %s\n", message(e).c_str());
    result["fatal"] = message(e);
    rc = 1;
  }
  std::printf("%s\n", result.dump().c_str());
  return rc;
}
