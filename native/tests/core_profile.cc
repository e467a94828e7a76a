// Where the time of one scoring batch or one PET training step goes, by ATen op (LibTorch's legacy profiler).
// On pre-tokenized inputs written by scripts/gpu-inputs.js (the ones core_bench reads):
//   core_profile <model dir> <inputs.json> [--mode score|train] [--precision fp32|bf16] [--batch 32] [--length 128]
//                [--reps 5] [--threads 1] [--top 25] [--no-onednn] [--no-packing] [--shapes]
// score: the batch of `--batch` test sentences whose padded length is nearest `--length` (length-sorted, as the
// bench cuts them), scored at its [MASK] positions; train: the first training batch of the inputs, one full step
// (forward, backward, clipping, AdamW). The profiler records the calling thread only, so by default everything runs
// there on one thread (ops, OpenBLAS and the task path alike): the table is one core's work. Prints the wall time
// per rep without the profiler (at --threads) and, per op, self time (ms per rep, children excluded), calls per rep
// and its share.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "bench_inputs.h"
#include "model/bert_model.h"
#include "model/scoring.h"
#include "train/trainer.h"

using namespace petcore;
using namespace petcore::bench;
namespace prof = torch::autograd::profiler;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct OpTime {
  double self_us = 0;
  int64_t calls = 0;
};

// "name [shape][shape]..." of an event recorded with input shapes.
std::string shape_key(const prof::LegacyEvent& e) {
  std::string k = std::string(e.name()) + " ";
  for (const auto& s : e.shapes()) {
    k += "[";
    for (size_t i = 0; i < s.size(); ++i) k += std::string(i ? "," : "") + std::to_string(s[i]);
    k += "]";
  }
  return k;
}

// Self time per op name (with `shapes`, per op name and input shapes) over all recorded threads (push/pop pairs
// nest per thread).
std::map<std::string, OpTime> self_times(const prof::thread_event_lists& lists, bool shapes) {
  std::map<std::string, OpTime> out;
  for (const auto& list : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double child_us;
    };
    std::vector<Open> stack;
    for (const auto& e : list) {
      const std::string kind = e.kindStr();
      if (kind == "push") {
        stack.push_back({&e, 0});
      } else if (kind == "pop" && !stack.empty()) {
        const Open o = stack.back();
        stack.pop_back();
        const double dur = o.push->cpuElapsedUs(e);
        OpTime& t = out[shapes ? shape_key(*o.push) : o.push->name()];
        t.self_us += dur - o.child_us;
        t.calls += 1;
        if (!stack.empty()) stack.back().child_us += dur;
      }
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  std::string mode = "score", precision = "fp32";
  int64_t batch = 32, length = 128, reps = 5, threads = 1, top = 25;
  bool onednn = true, packing = true, shapes = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--mode") mode = next();
    else if (a == "--precision") precision = next();
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--length") length = std::stoll(next());
    else if (a == "--reps") reps = std::stoll(next());
    else if (a == "--threads") threads = std::stoll(next());
    else if (a == "--top") top = std::stoll(next());
    else if (a == "--no-onednn") onednn = false;
    else if (a == "--no-packing") packing = false;
    else if (a == "--shapes") shapes = true;
    else pos.push_back(a);
  }
  if (pos.size() != 2 || (mode != "score" && mode != "train")) {
    std::fprintf(
        stderr,
        "usage: core_profile <model dir> <inputs.json> [--mode score|train] [--precision fp32|bf16] "
        "[--batch 32] [--length 128] [--reps 5] [--threads 1] [--top 25] [--no-onednn] [--no-packing] [--shapes]\n");
    return 2;
  }
  try {
    at::set_num_threads(static_cast<int>(threads));
    const Precision p = parse_precision(precision);
    const Inputs in = read_inputs(pos[1], 0);
    const at::Tensor cands = at::tensor(in.candidates, at::kLong);
    auto model = BertModel::load(pos[0], at::kCPU);
    model->set_onednn_kernels(onednn);
    model->set_row_packing(packing);

    std::function<void()> work;
    std::string what;
    std::unique_ptr<Trainer> trainer;
    Batch b;
    LossSpec loss;
    if (mode == "score") {
      // the full length-sorted batch whose padded length is nearest --length
      const auto buckets = length_buckets(in.examples, batch);
      std::vector<int64_t> rows = buckets.front();  // fewer examples than --batch: all of them
      int64_t best_diff = INT64_MAX;
      for (const auto& bucket : buckets) {
        if (static_cast<int64_t>(bucket.size()) < batch) continue;
        const int64_t T = static_cast<int64_t>(in.examples[bucket.back()].ids.size());
        if (std::abs(T - length) < best_diff) best_diff = std::abs(T - length), rows = bucket;
      }
      b = make_batch(*model, in, rows);
      const at::Tensor positions = mask_positions(in, rows);
      work = [&, positions] { score_candidates(*model, b, positions, cands, p); };
      what = "score";
    } else {
      if (in.steps.empty()) throw std::runtime_error(pos[1] + ": no training steps");
      const TrainStep& st = in.steps.front();
      b = make_batch(*model, in, st.rows, &st.mlm);
      std::vector<int64_t> targets, cand_labels;
      for (size_t k = 0; k + 1 < st.mlm.size(); k += 2)
        targets.push_back(in.examples.at(st.rows.at(st.mlm[k])).ids.at(st.mlm[k + 1]));
      for (int64_t r : st.rows) {
        const Example& e = in.examples.at(r);
        for (size_t slot = 0; slot < e.mask.size(); ++slot) cand_labels.push_back(in.words.at(e.gold)[0][slot]);
      }
      loss.cand_positions = mask_positions(in, st.rows);
      loss.candidates = cands;
      loss.cand_labels = at::tensor(cand_labels, at::kLong);
      loss.vocab_positions = at::tensor(st.mlm, at::kLong).view({-1, 2});
      loss.vocab_targets = at::tensor(targets, at::kLong);
      OptimConfig cfg;
      cfg.seed = 42;
      cfg.bf16 = p == Precision::Bf16;
      trainer.reset(new Trainer(*model, TrainableSpec(), cfg));
      work = [&] { trainer->step(b, loss); };
      what = "train step";
    }
    std::fprintf(stderr, "core_profile: %s %s, batch %lld x %lld tokens, %d thread(s)\n", what.c_str(),
                 precision.c_str(), static_cast<long long>(b.input_ids.size(0)),
                 static_cast<long long>(b.input_ids.size(1)), at::get_num_threads());
    for (int k = 0; k < 2; ++k) work();
    std::vector<double> wall;
    for (int64_t k = 0; k < reps; ++k) {
      const double t0 = now_ms();
      work();
      wall.push_back(now_ms() - t0);
    }
    std::sort(wall.begin(), wall.end());
    prof::thread_event_lists events;
    double profiled = 0;
    {
      prof::TLSLegacyProfilerGuard guard(
          torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, shapes),
          [&](const prof::thread_event_lists& e) { events = e; });
      const double t0 = now_ms();
      for (int64_t k = 0; k < reps; ++k) work();
      profiled = now_ms() - t0;
    }
    const auto times = self_times(events, shapes);
    std::vector<std::pair<std::string, OpTime>> sorted(times.begin(), times.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& x, const auto& y) { return x.second.self_us > y.second.self_us; });
    double total = 0;
    for (const auto& [n, t] : sorted) total += t.self_us;
    std::printf(
        "wall ms per rep (no profiler): min %.2f median %.2f max %.2f; profiled %.2f ms per rep, ops' self time %.2f\n",
        wall.front(), wall[wall.size() / 2], wall.back(), profiled / reps, total / 1000 / reps);
    std::printf("%-44s %10s %8s %6s\n", "op", "self ms", "calls", "share");
    for (int64_t k = 0; k < std::min<int64_t>(top, sorted.size()); ++k) {
      const auto& [n, t] = sorted[k];
      std::printf("%-44s %10.3f %8.1f %5.1f%%\n", n.c_str(), t.self_us / 1000 / reps,
                  static_cast<double>(t.calls) / reps, 100 * t.self_us / total);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_profile: %s\n", e.what());
    return 1;
  }
  return 0;
}
