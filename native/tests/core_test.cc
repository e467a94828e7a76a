// Parity of the C++ core with the HF fixtures, without Node (for machines such as the GPU one).
//   core_test <tiny-bert dir> <tiny_bert_reference.safetensors> [cpu|cuda] [fp32|bf16]
//             [<tiny-gpt2 dir> <tiny_gpt2_reference.safetensors> [<family dir> <family_reference.safetensors> ...]]
// Prints each check and its error; exits 1 if any check is out of tolerance (with bf16 on CUDA, the bf16
// logits too, within a tolerance set by bf16's precision).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "distributed/distributed.h"
#include "io/safetensors.h"
#include "kernels/cpu_inference.h"
#include "kernels/onednn_attention.h"
#include "kernels/onednn_primitives.h"
#include "model/bert_model.h"
#include "model/classifier.h"
#include "model/model_family.h"
#include "model/scoring.h"
#include "train/cross_entropy.h"
#include "train/optimizer_step.h"
#include "train/trainer.h"

using namespace petcore;

static int failures = 0;

static void check(const char* what, double err, double tol, bool enforce) {
  const bool ok = err <= tol;
  std::printf("%-48s %.3e  (tolerance %.0e)%s\n", what, err, tol, ok ? "" : (enforce ? "  FAIL" : "  (reported)"));
  if (!ok && enforce) ++failures;
}

// A port the OS has free now (bound to 0, read back, released).
static int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

// c10d links and runs on this device: a group of one (rank 0 serves the TCPStore) all-reduces a tensor there —
// Gloo on CPU, NCCL on CUDA when the build has it — and passes a barrier. Skipped (and said) without c10d.
static void check_dist_group_of_one(const at::Device& device) {
  if (!DistGroup::available()) {
    std::printf("%-48s skipped: %s\n", "c10d group of one", DistGroup::unavailable_reason().c_str());
    return;
  }
  DistOptions o;
  o.master_port = free_port();
  o.timeout_ms = 60000;
  auto group = DistGroup::create(o);
  at::Tensor t = at::arange(1, 9, at::TensorOptions().dtype(at::kFloat).device(device));
  const at::Tensor want = t.clone();
  group->allreduce_sum(t);
  group->barrier();
  const std::string what = "c10d all-reduce, world size 1 (" + group->backend(device) + ")";
  check(what.c_str(), (t - want).abs().max().item<double>(), 0, true);
}

// The fused AdamW step (optimizer_step.cc) against LibTorch's per-tensor AdamW: the same parameters after a few full
// fine-tuning steps, and optimizer states that each can save and the other resume from.
static void check_fused_adamw(const std::string& dir, const at::Device& device,
                              std::map<std::string, at::Tensor>& ref) {
  const bool available = fused_optimizer_available(device);
  LossSpec loss;  // one MLM target at (0, 5)
  loss.vocab_positions = at::tensor({0L, 5L}, at::kLong).view({1, 2});
  loss.vocab_targets = at::tensor({2523L}, at::kLong);
  if (!available) {
    std::printf("%-48s (not in this LibTorch on %s: skipped)\n", "fused AdamW vs LibTorch AdamW", device.str().c_str());
  } else {
    OptimConfig cfg;
    cfg.lr = 1e-3;
    auto flat = [](BertModel& m) {
      std::vector<at::Tensor> all;
      for (auto& [name, t] : m.params()) all.push_back(t.detach().to(at::kCPU).reshape(-1));
      return at::cat(all);
    };
    TrainableSpec rows;  // frozen P-tuning: only embedding rows 1..8 learn
    rows.kind = TrainableSpec::Kind::EmbeddingRows;
    rows.rows = {1, 2, 3, 4, 5, 6, 7, 8};
    for (const auto& [what, spec] :
         {std::make_pair(std::string("full"), TrainableSpec()), std::make_pair(std::string("rows"), rows)}) {
      // `fused` for the first `steps` steps; then, given `resume`, a new trainer (fused or not) loads the state and
      // takes one more step.
      auto run = [&](bool fused, int steps, int resume) {
        auto m = BertModel::load(dir, device);
        Batch pb = m->check_batch(ref["ptuning_input_ids"], {}, {});
        const std::string state = "/tmp/pet_core_test_adamw_" + std::to_string(getpid()) + ".pt";
        {
          OptimConfig c = cfg;
          c.fused_adamw = fused;
          Trainer t(*m, spec, c);
          for (int i = 0; i < steps; ++i) t.step(pb, loss);
          if (resume >= 0) t.save_state(state);
        }
        if (resume >= 0) {
          OptimConfig c = cfg;
          c.fused_adamw = resume == 1;
          Trainer t(*m, spec, c);
          t.load_state(state);
          t.step(pb, loss);
          std::remove(state.c_str());
        }
        return flat(*m);
      };
      const at::Tensor start = flat(*BertModel::load(dir, device));
      const at::Tensor fused = run(true, 3, -1), plain = run(false, 3, -1);
      const double moved = (plain - start).abs().max().item<double>();
      auto line = [&](const char* text) { return std::string(text) + " (" + what + ")"; };
      check(line("AdamW steps move the weights (lr / max change)").c_str(), moved > 0 ? cfg.lr / moved : 1.0, 1.0,
            true);
      const double apart = (fused - plain).abs().max().item<double>();
      check(line("fused vs LibTorch AdamW, 3 steps (/ lr)").c_str(), apart / cfg.lr, 1e-2, true);
      // fused_adamw = false really takes LibTorch's step: its sums round differently somewhere in 3 steps.
      if (apart == 0) {
        std::printf("%s: fused and LibTorch's AdamW bit-identical (was the option ignored?)\n",
                    line("fused_adamw").c_str());
        ++failures;
      }
      const at::Tensor a = run(true, 2, 0), b = run(true, 2, 1), c = run(false, 2, 1);
      check(line("fused state resumed by LibTorch's (/ lr)").c_str(), (a - b).abs().max().item<double>() / cfg.lr, 1e-2,
            true);
      check(line("LibTorch state resumed by fused (/ lr)").c_str(), (c - b).abs().max().item<double>() / cfg.lr, 1e-2,
            true);
    }
  }
  if (available) {
    // A fused step must invalidate what is cached from the weights: bf16 scoring after a step equals a model loaded
    // fresh with the stepped weights (the CPU loop writes through raw pointers and bumps the version counters).
    OptimConfig cfg;
    cfg.lr = 1e-2;
    const at::Tensor& pos = loss.vocab_positions;
    auto m = BertModel::load(dir, device), fresh = BertModel::load(dir, device);
    Batch pb = m->check_batch(ref["ptuning_input_ids"], {}, {});
    const at::Tensor before_step = logits_at(*m, pb, pos, Precision::Bf16);  // fills the bf16 operand cache
    {
      Trainer t(*m, TrainableSpec(), cfg);
      t.step(pb, loss);
    }
    {
      at::NoGradGuard no_grad;
      for (auto& [name, t] : fresh->params()) t.copy_(m->params().at(name));
    }
    const at::Tensor after = logits_at(*m, pb, pos, Precision::Bf16);
    const at::Tensor want = logits_at(*fresh, pb, pos, Precision::Bf16);
    const double moved = (want - before_step).abs().max().item<double>();
    check("bf16 scoring after a fused step = fresh model", moved > 0 ? (after - want).abs().max().item<double>() : 1.0,
          1e-6, true);
  }
}

// Attention read and written in place through oneDNN (used where the scale 1/sqrt(head_dim) is a power of two:
// tiny-bert's head_dim 8 is not, so a config of head_dim 16 here) against attend() on the same rows: 2 sequences
// of 7 tokens, the second with 3 padded, 2 heads; all rows as queries, and one row alone (the last layer's case).
static void check_attention_in_place() {
  at::manual_seed(3);
  BertConfig c;
  c.hidden_size = 32;
  c.num_attention_heads = 2;
  const int64_t H = 32, T = 7;
  LayerOperands w;
  w.onednn = true;
  const at::Tensor am = at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, at::kLong).view({2, T});
  const at::Tensor mask = attention_mask_bias(am);
  const std::vector<bool> whole = unpadded(am);
  if (whole != std::vector<bool>{true, false}) {
    std::printf("unpadded: wrong rows\n");
    ++failures;
  }
  for (const at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    if (dt == at::kBFloat16 && !onednn::bf16_kernels()) {
      std::printf("attention in place (bf16): no oneDNN bf16 kernels on this CPU, the layer runs ATen's (skipped)\n");
      continue;
    }
    w.dtype = dt;
    const at::Tensor qkv = at::randn({2 * T, 3 * H}).to(dt);  // rows: queries | keys | values, as projected
    double err = 0;
    for (int64_t bi = 0; bi < 2; ++bi) {
      const at::Tensor seq = qkv.narrow(0, bi * T, T), q = seq.narrow(1, 0, H), k = seq.narrow(1, H, H),
                       v = seq.narrow(1, 2 * H, H);
      const at::Tensor m = mask.narrow(0, bi, 1);
      // As encode_in_tasks calls it: without the mask where the sequence has no padding (unpadded()).
      for (const int64_t first : {int64_t{0}, int64_t{3}}) {
        const int64_t n = first == 0 ? T : 1;
        at::Tensor got = at::full({n, H}, 7.0, at::TensorOptions().dtype(dt));
        if (!layer::attend_in_place(c, w, q.narrow(0, first, n), k, v,
                                    whole[static_cast<size_t>(bi)] ? at::Tensor() : m, got)) {
          std::printf("attention in place (%s): not run\n", dt == at::kFloat ? "fp32" : "bf16");
          ++failures;
          return;
        }
        const at::Tensor want =
            layer::attend(c, w, q.narrow(0, first, n).unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), m, false)[0];
        err = std::max(err, (got.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<double>());
      }
    }
    // bf16: the probabilities are rounded to bf16 in both, from scores that attend() rounds to bf16 first.
    check(dt == at::kFloat ? "oneDNN attention in place (fp32), max abs error"
                           : "oneDNN attention in place (bf16), max abs error",
          err, dt == at::kFloat ? 1e-6 : 3e-2, true);
  }
}

// Attention mask of 3 sequences of 6 tokens, 7 of the 18 padded (the training-layer checks below).
static at::Tensor three_padded_sequences() {
  return at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0}, at::kLong).view({3, 6});
}

// Training packs a padded batch's real tokens (layer::forward with rows): with dropout on, the same generator state
// must give the padded layer's outputs and input gradient at those rows (the same dropout masks), and every weight
// the same gradient.
static void check_packed_layer(const BertModel& m) {
  BertConfig c = m.config();
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0.25;  // tiny-bert has none
  const at::Tensor am = three_padded_sequences();
  const int64_t B = am.size(0), T = am.size(1), H = c.hidden_size;
  const at::Tensor mask_bias = attention_mask_bias(am), rows = packed_rows(am);
  if (!rows.defined() || rows.size(0) != 11) {
    std::printf("packed rows of a batch with 7 of 18 padded: %s\n", rows.defined() ? "wrong count" : "none");
    ++failures;
    return;
  }
  at::manual_seed(5);
  const at::Tensor x = at::randn({B, T, H}), coeff = at::randn({rows.size(0), H});
  LayerOperands w = m.operands(0, Precision::Fp32);
  std::vector<at::Tensor*> weights = {&w.qkv_w, &w.attn_out_w, &w.inter_w, &w.out_w, &w.out_ln_w};
  auto run = [&](bool packed, at::Tensor* x_grad) {
    for (at::Tensor* t : weights) *t = t->detach().clone().requires_grad_(true);
    at::Tensor in = (packed ? x.view({B * T, H}).index_select(0, rows) : x).clone().requires_grad_(true);
    at::manual_seed(9);  // the same dropout draws
    at::Tensor y = layer::forward(c, w, in, mask_bias, true, packed ? rows : at::Tensor());
    if (!packed) y = y.view({B * T, H}).index_select(0, rows);
    (y * coeff).sum().backward();
    *x_grad = packed ? in.grad() : in.grad().view({B * T, H}).index_select(0, rows);
    std::vector<at::Tensor> g;
    for (at::Tensor* t : weights) g.push_back(t->grad());
    g.push_back(y.detach());
    return g;
  };
  at::Tensor gx_full, gx_packed;
  const std::vector<at::Tensor> full = run(false, &gx_full), packed = run(true, &gx_packed);
  double err = (gx_full - gx_packed).abs().max().item<double>();
  for (size_t i = 0; i < full.size(); ++i) err = std::max(err, (full[i] - packed[i]).abs().max().item<double>());
  check("packed vs padded layer, train: outputs and grads", err, 1e-5, true);
}

// The vocabulary cross-entropy (cross_entropy.h) against LibTorch's log_softmax + nll_loss: loss (relative) and the
// logits' gradient, fp32 and bf16 logits, with a weight on the loss (the backward's scale).
static void check_cross_entropy() {
  at::manual_seed(3);
  const at::Tensor base = at::randn({7, 300}) * 4, targets = at::randint(0, 300, {7}, at::kLong);
  for (const at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    auto run = [&](bool ours, std::string* node) {
      at::Tensor x = base.to(dt).clone().requires_grad_(true);
      at::Tensor l = ours ? cross_entropy(x, targets) : at::nll_loss(at::log_softmax(x.to(at::kFloat), 1), targets);
      if (node) *node = l.grad_fn() ? l.grad_fn()->name() : "";
      (l * 2.5).backward();
      return std::make_pair(l.detach(), x.grad().to(at::kFloat).clone());
    };
    std::string node;
    const auto a = run(true, &node), b = run(false, nullptr);
    double err = std::max(((a.first - b.first).abs() / b.first.abs()).item<double>(),
                          (a.second - b.second).abs().max().item<double>());
    // Where oneDNN is called directly the loss must come from our function, not the fallback (bf16 only where
    // oneDNN has bf16 kernels on this CPU; elsewhere LibTorch's ops are the path, checked the same way).
    const bool direct = onednn::compiled() && (dt == at::kFloat || onednn::bf16_kernels());
    if (direct && node.find("CrossEntropy") == std::string::npos) err = 1;
    // bf16: the gradient is written in bf16 (LibTorch's path rounds it once more, on the way back to bf16 logits).
    check(dt == at::kFloat ? "vocabulary cross-entropy vs LibTorch (fp32)"
                           : "vocabulary cross-entropy vs LibTorch (bf16)",
          err, dt == at::kFloat ? 1e-6 : 1e-2, true);
  }
}

// Training attention through oneDNN (onednn_attention.h) against LibTorch's ops (layer::attend): a layer with dropout
// on a padded batch, the same generator state, its outputs and every gradient (input, projections, the rest).
static void check_onednn_attention_layer(const BertModel& m) {
  if (!onednn::compiled()) {
    std::printf("%-48s (no direct oneDNN calls in this build: skipped)\n", "oneDNN vs ATen attention, train");
    return;
  }
  BertConfig c = m.config();
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0.25;
  c.num_attention_heads = 2;  // head_dim 16: the direct path needs a power-of-two sqrt (tiny-bert's 8 has none)
  const at::Tensor am = three_padded_sequences();
  const int64_t B = am.size(0), T = am.size(1), H = c.hidden_size;
  const at::Tensor mask_bias = attention_mask_bias(am);
  at::manual_seed(5);
  const at::Tensor x = at::randn({B, T, H}), coeff = at::randn({B, T, H}) * am.unsqueeze(2);
  for (const Precision p : {Precision::Fp32, Precision::Bf16}) {
    LayerOperands w = m.operands(0, p);
    std::vector<at::Tensor*> weights = {&w.qkv_w, &w.attn_out_w, &w.inter_w, &w.out_ln_w};
    auto run = [&](bool onednn) {
      w.onednn = onednn;
      std::vector<at::Tensor*> used;
      for (at::Tensor* t : weights)
        if (t->defined()) *t = t->detach().clone().requires_grad_(true), used.push_back(t);
      at::Tensor in = x.clone().requires_grad_(true);
      at::manual_seed(9);
      const at::Tensor y = layer::forward(c, w, in, mask_bias, true);
      (y * coeff).sum().backward();
      std::vector<at::Tensor> g = {y.detach(), in.grad()};
      for (at::Tensor* t : used) g.push_back(t->grad().to(at::kFloat));
      return g;
    };
    // The direct path must really run (else both sides would be ATen's).
    LayerOperands probe = m.operands(0, p);
    const at::Tensor qkv = at::randn({B * T, 3 * H}).to(probe.dtype);
    const bool ran = onednn_attention(c, probe, qkv, mask_bias, true).defined();
    if (p == Precision::Bf16 && !onednn::bf16_kernels()) {
      // oneDNN 2.6 has no bf16 kernels on an AVX2-only CPU: the layer must fall back to ATen's ops.
      check("oneDNN bf16 attention falls back (no bf16 kernels)", ran ? 1 : 0, 0.5, true);
      continue;
    }
    const std::vector<at::Tensor> a = run(true), b = run(false);
    double err = ran ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i)
      err = std::max(err, ((a[i] - b[i]).abs().max() / b[i].abs().max().clamp_min(1e-6)).item<double>());
    // bf16: LibTorch's path rounds the scores to bf16 before the softmax, oneDNN's keeps them fp32.
    check(p == Precision::Fp32 ? "oneDNN vs ATen attention, train (fp32, relative)"
                               : "oneDNN vs ATen attention, train (bf16, relative)",
          err, p == Precision::Fp32 ? 1e-5 : 5e-2, true);
  }
}

using Reference = std::map<std::string, at::Tensor>;

static Reference read_reference(const std::string& path) {
  Reference ref;
  for (auto& [name, t] : read_safetensors(path)) ref[name] = t;
  return ref;
}

// (row, column) of every position of the batch, row by row: [B * T, 2].
static at::Tensor all_positions(const Batch& b) {
  const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
  return at::stack({at::arange(B).repeat_interleave(T), at::arange(T).repeat({B})}, 1);
}

// A causal or family model's forward pass against HF's: embedding output, last hidden state and the logits at every
// position within `tol`; with `with_bf16`, the bf16 logits within 2^-5 of the largest |logit| (the bound argued at
// BERT's bf16 check in main). Returns the fp32 logits [B, T, V].
static at::Tensor check_forward(const std::string& prefix, BertModel& model, const Batch& b, Reference& ref, double tol,
                                bool with_bf16) {
  const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
  const auto label = [&](const char* what) { return prefix + ": " + what; };
  check(label("embedding output, max abs error").c_str(),
        (model.embed(b, false).cpu() - ref["embedding_output"]).abs().max().item<double>(), tol, true);
  check(label("last hidden state, max abs error").c_str(),
        (model.encode(b, false).cpu() - ref["last_hidden"]).abs().max().item<double>(), tol, true);
  const at::Tensor pos = all_positions(b);
  const at::Tensor logits = logits_at(model, b, pos).view({B, T, -1});
  check(label("logits (all positions), max abs error").c_str(), (logits - ref["logits"]).abs().max().item<double>(),
        tol, true);
  if (with_bf16) {
    const at::Tensor l = logits_at(model, b, pos, Precision::Bf16).view({B, T, -1});
    const double scale = ref["logits"].abs().max().item<double>();
    check(label("bf16 logits, max abs error").c_str(), (l - ref["logits"]).abs().max().item<double>(), scale / 32,
          true);
  }
  return logits;
}

// GPT-2 (GPT2LMHeadModel) against HF on tiny-gpt2: three right-padded rows (embeddings, last hidden state after
// ln_f, logits at every position), the P-tuning LM loss and the gradient of the prompt rows; and the branches of
// one pass (several continuations of a prefix) equal to separate passes.
static void check_gpt2(const std::string& dir, const std::string& ref_path, const at::Device& device, bool bf16) {
  Reference ref = read_reference(ref_path);
  auto model = BertModel::load(dir, device);
  if (model->config().family != Family::Gpt2) {
    std::printf("%s: not loaded as a GPT-2\n", dir.c_str());
    ++failures;
    return;
  }
  Batch b = model->check_batch(ref["input_ids"], {}, ref["attention_mask"]);
  const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
  const at::Tensor pos = all_positions(b);
  {
    c10::InferenceMode guard;
    // CPU: the layer kernel's bf16 GEMMs; CUDA: autocast
    const at::Tensor logits = check_forward("gpt2", *model, b, ref, 1e-5, bf16 || device.is_cpu());
    model->set_task_scheduling(false);
    const at::Tensor plain = logits_at(*model, b, pos).view({B, T, -1});
    model->set_task_scheduling(true);
    check("gpt2: plain vs task-scheduled logits", (plain - logits).abs().max().item<double>(), 1e-5, true);
    // Only some positions: on the task path the last layer runs for those rows alone (causal rows of the mask).
    const at::Tensor some = at::tensor({0L, 3L, 1L, 0L, 2L, 13L}, at::kLong).view({3, 2});
    const at::Tensor at_some = logits_at(*model, b, some);
    const at::Tensor want_some = at::stack({ref["logits"][0][3], ref["logits"][1][0], ref["logits"][2][13]});
    check("gpt2: logits at 3 positions, max abs error", (at_some - want_some).abs().max().item<double>(), 1e-5, true);
    if (device.is_cpu() && onednn::compiled()) {
      model->set_onednn_kernels(false);
      const at::Tensor aten = logits_at(*model, b, pos).view({B, T, -1});
      model->set_onednn_kernels(true);
      check("gpt2: oneDNN vs ATen kernels, logits", (aten - logits).abs().max().item<double>(), 1e-5, true);
    }
    // Branches: row 0's first 6 tokens as the prefix, then two continuations of 3 tokens each in one sequence
    // (positions 6..8 for both, each branch seeing the prefix and itself) = each continuation in its own pass.
    const at::Tensor ids = ref["input_ids"][0];
    const at::Tensor a = at::tensor({2523L, 4007L, 511L}, at::kLong), c = at::tensor({679L, 4007L, 6230L}, at::kLong);
    const at::Tensor prefix = ids.narrow(0, 0, 6);
    const at::Tensor joint = at::cat({prefix, a, c}).unsqueeze(0);
    const at::Tensor positions = at::cat({at::arange(9), at::arange(6, 9)}).unsqueeze(0);
    const at::Tensor branches =
        at::cat({at::zeros({6}, at::kLong), at::ones({3}, at::kLong), at::full({3}, 2, at::kLong)}).unsqueeze(0);
    Batch jb = model->check_batch(joint, {}, {}, positions, branches);
    const at::Tensor jp = at::stack({at::zeros({6}, at::kLong), at::arange(6, 12)}, 1);
    const at::Tensor joint_logits = logits_at(*model, jb, jp);
    Batch sb = model->check_batch(at::stack({at::cat({prefix, a}), at::cat({prefix, c})}), {}, {});
    const at::Tensor sp =
        at::stack({at::cat({at::zeros({3}, at::kLong), at::ones({3}, at::kLong)}), at::arange(6, 9).repeat({2})}, 1);
    const at::Tensor separate = logits_at(*model, sb, sp);
    check("gpt2: two branches in one pass vs two passes", (joint_logits - separate).abs().max().item<double>(), 1e-5,
          true);
  }
  // P-tuning as in the seed's gpt.py: the LM loss over the whole sequence (positions 0..n-2 predict 1..n-1), only
  // the prompt rows 1..8 learning; their gradient holds both sides of the tied head.
  TrainableSpec spec;
  spec.kind = TrainableSpec::Kind::EmbeddingRows;
  spec.rows = {1, 2, 3, 4, 5, 6, 7, 8};
  Trainer trainer(*model, spec, OptimConfig());
  Batch pb = model->check_batch(ref["ptuning_input_ids"], {}, {});
  const int64_t n = pb.input_ids.size(1);
  LossSpec loss;
  loss.vocab_positions = at::stack({at::zeros({n - 1}, at::kLong), at::arange(n - 1)}, 1);
  loss.vocab_targets = ref["ptuning_input_ids"][0].narrow(0, 1, n - 1);
  NamedTensors grads;
  StepResult r = trainer.loss_and_grads(pb, loss, false, &grads);
  const double ref_loss = ref["ptuning_loss"].item<double>();
  check("gpt2: p-tuning LM loss, relative error", std::abs(r.loss - ref_loss) / std::abs(ref_loss), 1e-5, true);
  const at::Tensor g = grads.at(0).second.cpu(), rg = ref["ptuning_grad_rows_1_8"];
  check("gpt2: p-tuning grad rows 1..8, max relative error", ((g - rg).abs().max() / rg.abs().max()).item<double>(),
        1e-5, true);
}

// Two optimizer steps of `trainer` on (batch, loss) lower the loss: prints "before -> after" and counts a failure
// otherwise.
static void two_steps_lower(const std::string& label, Trainer& trainer, const Batch& batch, const LossSpec& loss) {
  const StepResult first = trainer.loss_and_grads(batch, loss, false, nullptr);
  trainer.step(batch, loss);
  trainer.step(batch, loss);
  const StepResult after = trainer.loss_and_grads(batch, loss, false, nullptr);
  const bool ok = std::isfinite(first.loss) && after.loss < first.loss;
  std::printf("%-48s %.4f -> %.4f%s\n", label.c_str(), first.loss, after.loss, ok ? "" : "  FAIL");
  if (!ok) ++failures;
}

// A model family's fixture (families/<name>_reference.safetensors: RoBERTa, XLM-R, ALBERT, ERNIE): the embedding
// output, the last hidden state and the logits at every position (the batch has padding) within 1e-5 of HF's, the
// MLM loss of the masked batch within 1e-5 relative, bf16 logits within 2^-5 of the largest |logit| (as BERT's
// above); then two steps of each way the library trains lower their loss: full MLM (fp32), and each from a fresh load
// in the run's precision PET's candidate loss at the masked positions, frozen P-tuning (only some word-embedding rows
// move, every other weight stays bit for bit), and the [CLS] classifier.
static void check_family(const std::string& dir, const std::string& ref_path, const at::Device& device, bool bf16) {
  Reference ref = read_reference(ref_path);
  auto model = BertModel::load(dir, device);
  const std::string name = family_name(model->config().family);
  const auto label = [&](const char* what) { return name + ": " + what; };
  const Batch b = model->check_batch(ref["input_ids"], ref["token_type_ids"], ref["attention_mask"]);
  {
    c10::InferenceMode guard;
    check_forward(name, *model, b, ref, 1e-5, bf16 || device.is_cpu());  // CPU: bf16 GEMMs; CUDA: autocast
  }
  // The MLM case: every position whose label is not -100, as (row, column) and its target.
  const at::Tensor labels = ref["mlm_labels"];
  const at::Tensor scored = labels.ne(-100).nonzero();
  const at::Tensor targets = labels.index({scored.select(1, 0), scored.select(1, 1)});
  LossSpec mlm;
  mlm.vocab_positions = scored;
  mlm.vocab_targets = targets;
  const Batch masked = model->check_batch(ref["masked_input_ids"], ref["token_type_ids"], ref["attention_mask"]);
  OptimConfig cfg;
  cfg.lr = 1e-3;
  {
    Trainer trainer(*model, TrainableSpec(), cfg);
    const StepResult first = trainer.loss_and_grads(masked, mlm, false, nullptr);
    const double ref_loss = ref["mlm_loss"].item<double>();
    check(label("MLM loss, relative error").c_str(), std::abs(first.loss - ref_loss) / std::abs(ref_loss), 1e-5, true);
    two_steps_lower(label("MLM loss before / after 2 steps"), trainer, masked, mlm);
  }
  // The other ways train in the run's precision (bf16: the layer kernel's bf16 GEMMs on CPU, autocast on CUDA).
  OptimConfig run_cfg = cfg;
  run_cfg.bf16 = bf16;
  {
    // PET: CE over the candidates (the masked positions' own targets) at those positions.
    const auto [cands, index] = at::_unique(targets, true, true);
    LossSpec pet;
    pet.cand_positions = scored;
    pet.candidates = cands;
    pet.cand_labels = index;
    auto fresh = BertModel::load(dir, device);
    Trainer trainer(*fresh, TrainableSpec(), run_cfg);
    two_steps_lower(label("PET candidate loss before / after 2 steps"), trainer, masked, pet);
  }
  {
    // Frozen P-tuning: the rows of the first row's first 4 distinct tokens after the leading special token stand in for
    // the prompt rows (a BPE vocabulary has no [unused*]; the library takes the rows its prompt tokens map to).
    auto fresh = BertModel::load(dir, device);
    const std::string& word = model_names(fresh->config().family).word;
    std::map<std::string, at::Tensor> before;
    for (const auto& [n, t] : fresh->params()) before[n] = t.detach().clone();
    TrainableSpec spec;
    spec.kind = TrainableSpec::Kind::EmbeddingRows;
    const at::Tensor row0 = ref["masked_input_ids"][0];
    for (int64_t i = 1; i < row0.size(0) && spec.rows.size() < 4; ++i)
      if (std::find(spec.rows.begin(), spec.rows.end(), row0[i].item<int64_t>()) == spec.rows.end())
        spec.rows.push_back(row0[i].item<int64_t>());
    const at::Tensor rows = at::tensor(spec.rows, at::kLong).to(device);
    Trainer trainer(*fresh, spec, run_cfg);
    two_steps_lower(label("P-tuning (frozen) MLM loss, 2 steps"), trainer, masked, mlm);
    double others = 0, moved = 0;
    for (const auto& [n, t] : fresh->params()) {
      at::Tensor d = (t.detach() - before[n]).abs();
      if (n == word) {
        moved = d.index_select(0, rows).max().item<double>();
        d.index_fill_(0, rows, 0);
      }
      others = std::max(others, d.max().item<double>());
    }
    check(label("P-tuning: every other weight, max change").c_str(), others, 0, true);
    if (!(moved > 0)) {
      std::printf("%s: P-tuning: the prompt rows did not move  FAIL\n", name.c_str());
      ++failures;
    }
  }
  {
    // The [CLS] classifier (fine-tuning's baseline), two labels.
    auto fresh = BertModel::load(dir, device);
    ensure_classifier(*fresh, 2, kDefaultSeed);
    LossSpec cls;
    cls.cls_labels = at::tensor({0L, 1L, 0L}, at::kLong);
    Trainer trainer(*fresh, TrainableSpec(), run_cfg);
    two_steps_lower(label("classifier loss before / after 2 steps"), trainer, b, cls);
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s <tiny-bert dir> <tiny_bert_reference.safetensors> [cpu|cuda] [fp32|bf16] [<tiny-gpt2 dir> "
                 "<tiny_gpt2_reference.safetensors> [<family dir> <family_reference.safetensors> ...]]\n",
                 argv[0]);
    return 2;
  }
  const std::string device_name = argc > 3 ? argv[3] : "cpu";
  const bool bf16 = argc > 4 && std::string(argv[4]) == "bf16";
  try {
    Reference ref = read_reference(argv[2]);
    const at::Device device(device_name);
    auto model = BertModel::load(argv[1], device);
    Batch b = model->check_batch(ref["input_ids"], ref["token_type_ids"], ref["attention_mask"]);
    {
      c10::InferenceMode guard;
      at::Tensor emb = model->embed(b, false).cpu();
      check("embedding output, max abs error", (emb - ref["embedding_output"]).abs().max().item<double>(), 1e-4, true);
      at::Tensor last = model->encode(b, false).cpu();
      check("last hidden state, max abs error", (last - ref["last_hidden"]).abs().max().item<double>(), 1e-4, true);
      const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
      const at::Tensor pos = all_positions(b);
      at::Tensor logits = logits_at(*model, b, pos).view({B, T, -1});
      check("logits (all positions), max abs error", (logits - ref["logits"]).abs().max().item<double>(), 1e-4, true);
      if (device.is_cpu()) {
        // The inference scope keeps the caller's thread count for its tasks (its guard sets this thread's
        // OpenMP count to 1; a regression once made every scoring call single-threaded).
        const int threads_before = at::get_num_threads();
        at::set_num_threads(2);
        const int outside = inference_tasks(device, false);
        int inside = -1;
        in_inference_scope(*model, [&] { inside = inference_tasks(device, false); });
        std::printf("inference tasks outside / inside the scope       %d / %d\n", outside, inside);
        if (inside != outside) ++failures;
        at::set_num_threads(threads_before);
      }
      {
        // The one layer kernel scheduled as one plain pass instead of tasks: the same numbers.
        model->set_task_scheduling(false);
        at::Tensor plain = logits_at(*model, b, pos).view({B, T, -1});
        model->set_task_scheduling(true);
        check("plain vs task-scheduled logits, max abs error", (plain - logits).abs().max().item<double>(), 1e-5, true);
      }
      {
        // Candidate scores: their logits and the vocabulary's normaliser (on the task path over vocabulary slices,
        // never forming [M, V]) against HF's logits, shared [C] and per-position [M, C] candidates alike.
        const at::Tensor ref_logits = ref["logits"].view({B * T, -1});
        const at::Tensor ref_log_z = at::logsumexp(ref_logits, {1});
        const at::Tensor shared = at::tensor({3, 7, 11}, at::kLong);
        const at::Tensor own = at::arange(B * T * 2, at::kLong).remainder(ref_logits.size(1)).view({B * T, 2});
        for (const at::Tensor& c : {shared, own}) {
          CandidateScores s = score_candidates(*model, b, pos, c);
          const at::Tensor want = c.dim() == 1 ? ref_logits.index_select(1, c) : ref_logits.gather(1, c);
          check(c.dim() == 1 ? "candidate logits [C], max abs error" : "candidate logits [M, C], max abs error",
                (s.logits - want).abs().max().item<double>(), 1e-4, true);
          check("log-normaliser, max abs error", (s.log_z - ref_log_z).abs().max().item<double>(), 1e-4, true);
        }
        {
          // bf16: the encoder's GEMMs and (CPU task path) the normaliser's vocabulary GEMM; errors as below.
          const CandidateScores h = score_candidates(*model, b, pos, shared, Precision::Bf16);
          const double scale = ref_logits.abs().max().item<double>();
          check("bf16 log-normaliser, max abs error", (h.log_z - ref_log_z).abs().max().item<double>(), scale / 32,
                true);
        }
      }
      if (device.is_cpu() && onednn::compiled()) {
        // The dense steps through ATen's ops instead of oneDNN: fp32 both, only the order of sums differs.
        model->set_onednn_kernels(false);
        at::Tensor aten = logits_at(*model, b, pos).view({B, T, -1});
        model->set_onednn_kernels(true);
        check("oneDNN vs ATen kernels, logits, max abs error", (aten - logits).abs().max().item<double>(), 1e-5, true);
        check_attention_in_place();
      }
      if (bf16 || device.is_cpu()) {  // CPU: the layer kernel's bf16 GEMMs; CUDA: autocast
        CandidateScores s = score_candidates(*model, b, pos, at::arange(model->config().vocab_size), Precision::Bf16);
        at::Tensor l = s.logits.view({B, T, -1});
        // The tolerance, from bf16's precision: bf16 keeps 8 significant bits, so rounding a value to bf16 moves
        // it by at most u = 2^-8 (~3.9e-3) of its size. Under autocast the tiny BERT (2 layers, hidden 32) runs
        // 18 matmuls in bf16 (per layer Q, K, V, QK^T, attention x V, attention output, intermediate, output;
        // the MLM head's transform and decoder), each rounding its inputs and its output, while layer norm,
        // softmax and the normaliser stay fp32; each LayerNorm rescales, so the errors add from layer to layer
        // rather than compound. The logits are at most 0.74 in size here (rms 0.15): the decoder's own output
        // rounding is already up to u x 0.74 ~ 2.9e-3, and the other roundings, of the same relative size and
        // largely independent, add like a random walk (a few u). Allowed: 8 u of the largest |logit|, i.e.
        // 2^-5 of it (~0.023 here), ~6x the 3.7e-3 seen on an H100. A fault rather than rounding (wrong or
        // unconverted weights, a layer skipped, an overflow, NaN) is off by about the logits' own size and fails.
        const double scale = ref["logits"].abs().max().item<double>();
        check("bf16 logits, max abs error", (l - ref["logits"]).abs().max().item<double>(), scale / 32, true);
      }
    }
    TrainableSpec spec;
    spec.kind = TrainableSpec::Kind::EmbeddingRows;
    spec.rows = {1, 2, 3, 4, 5, 6, 7, 8};
    Trainer trainer(*model, spec, OptimConfig());
    Batch pb = model->check_batch(ref["ptuning_input_ids"], {}, {});
    LossSpec loss;
    loss.vocab_positions = at::tensor({0L, 5L}, at::kLong).view({1, 2});
    loss.vocab_targets = at::tensor({2523L}, at::kLong);
    NamedTensors grads;
    StepResult r = trainer.loss_and_grads(pb, loss, false, &grads);
    const double ref_loss = ref["ptuning_loss"].item<double>();
    check("p-tuning loss, relative error", std::abs(r.loss - ref_loss) / std::abs(ref_loss), 1e-5, true);
    at::Tensor g = grads.at(0).second, rg = ref["ptuning_grad_rows_1_8"];
    check("p-tuning grad rows 1..8, max relative error", ((g - rg).abs().max() / rg.abs().max()).item<double>(), 1e-5,
          true);
    {
      // classify() runs the last layer at the [CLS] rows only (CPU task path): it must equal a linear head on
      // HF's last hidden state at [CLS].
      ensure_classifier(*model, 3, 7);
      const at::Tensor want = at::linear(ref["last_hidden"].select(1, 0), model->param("classifier.weight").cpu(),
                                         model->param("classifier.bias").cpu());
      check("classifier logits at [CLS], max abs error", (classify(*model, b) - want).abs().max().item<double>(), 1e-4,
            true);
    }
    if (device.is_cpu()) check_packed_layer(*model);
    if (device.is_cpu()) check_onednn_attention_layer(*model);
    if (device.is_cpu()) check_cross_entropy();
    check_fused_adamw(argv[1], device, ref);
    check_dist_group_of_one(device);
    if (argc > 6) check_gpt2(argv[5], argv[6], device, bf16);
    for (int i = 7; i + 1 < argc; i += 2) check_family(argv[i], argv[i + 1], device, bf16);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::printf(failures == 0 ? "core_test: all checks passed\n" : "core_test: %d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
