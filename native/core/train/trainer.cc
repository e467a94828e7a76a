#include "train/trainer.h"

#include "train/cross_entropy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "kernels/autocast.h"
#include "model/classifier.h"
#include "model/prompt_encoder.h"
#include "model/scoring.h"
#include "train/optimizer_step.h"

namespace petcore {
namespace {

bool no_decay(const std::string& name) {
  // Biases and LayerNorm weights (BERT's "LayerNorm.weight", GPT-2's "ln_1" / "ln_2" / "ln_f") take no decay.
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  return (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) || has("LayerNorm.weight") ||
         has(".ln_1.weight") || has(".ln_2.weight") || has(".ln_f.weight");
}

at::Tensor checked_targets(const at::Tensor& t, int64_t n, int64_t upper, const at::Device& device, const char* what) {
  if (!t.defined() || t.dim() != 1 || t.size(0) != n)
    throw std::runtime_error(std::string(what) + " must hold one value per position (" + std::to_string(n) + ")");
  at::Tensor out = t.to(device, at::kLong);
  const int64_t lo = out.min().item<int64_t>(), hi = out.max().item<int64_t>();
  if (lo < 0 || hi >= upper)
    throw std::runtime_error(std::string(what) + " value " + std::to_string(lo < 0 ? lo : hi) + " is outside [0, " +
                             std::to_string(upper) + ")");
  return out;
}

}  // namespace

at::Tensor verbalizer_label_scores(const at::Tensor& cand_scores, int64_t examples, const at::Tensor& word_matrix,
                                   const at::Tensor& word_label, int64_t num_labels, bool logsumexp) {
  at::Tensor rows = cand_scores.reshape({examples, -1});                        // [N, S*C]
  at::Tensor words = at::matmul(rows, word_matrix.to(rows.scalar_type()).t());  // [N, W]
  at::Tensor member = at::one_hot(word_label, num_labels).t().to(at::kBool);    // [L, W]
  if (logsumexp) {
    at::Tensor masked = words.unsqueeze(1).masked_fill(member.logical_not().unsqueeze(0), -INFINITY);  // [N, L, W]
    return at::logsumexp(masked, {2});
  }
  at::Tensor avg = member.to(words.scalar_type());
  avg = avg / avg.sum(1, true);
  return at::matmul(words, avg.t());  // [N, L]
}

Trainer::Trainer(BertModel& model, const TrainableSpec& spec, const OptimConfig& cfg, std::shared_ptr<DistGroup> group)
    : model_(model), spec_(spec), cfg_(cfg), group_(std::move(group)) {
  if (!(cfg.lr > 0) || !std::isfinite(cfg.lr)) throw std::runtime_error("learning rate must be a positive number");
  if (cfg.weight_decay < 0) throw std::runtime_error("weight decay must be >= 0");
  if (cfg.warmup_steps < 0 || cfg.total_steps < 0) throw std::runtime_error("step counts must be >= 0");
  torch::manual_seed(cfg.seed);
  auto& all = model_.params();
  for (auto& [name, t] : all) t.requires_grad_(false);

  std::vector<at::Tensor> decay, plain;
  auto add = [&](const std::string& name, at::Tensor& t) {
    t.requires_grad_(true);
    params_.push_back(t);
    names_.push_back(name);
    (no_decay(name) ? plain : decay).push_back(t);
  };
  switch (spec.kind) {
    case TrainableSpec::Kind::All:
      for (auto& [name, t] : all) add(name, t);
      break;
    case TrainableSpec::Kind::Tensors: {
      if (spec.names.empty()) throw std::runtime_error("no tensor names given to train");
      std::set<std::string> seen;
      for (const auto& name : spec.names) {
        auto it = all.find(name);
        if (it == all.end()) throw std::runtime_error("cannot train \"" + name + "\": the model has no such tensor");
        if (!seen.insert(name).second) throw std::runtime_error("tensor \"" + name + "\" listed twice");
        add(name, it->second);
      }
      break;
    }
    case TrainableSpec::Kind::EmbeddingRows: {
      if (spec.rows.empty()) throw std::runtime_error("no embedding rows given to train");
      std::set<int64_t> seen;
      for (int64_t r : spec.rows) {
        if (r < 0 || r >= model_.config().vocab_size)
          throw std::runtime_error("embedding row " + std::to_string(r) + " is outside the vocabulary (size " +
                                   std::to_string(model_.config().vocab_size) + ")");
        if (!seen.insert(r).second) throw std::runtime_error("embedding row " + std::to_string(r) + " listed twice");
      }
      if (!spec.prompt_encoder.empty()) break;  // the encoder below produces these rows
      rows_index_ = at::tensor(spec.rows, at::kLong).to(model_.device());
      // The learned rows live in their own small tensor: the optimizer (and its state) sees only them, and the
      // full matrix is rebuilt functionally in each forward, so every other row stays bit-identical.
      rows_param_ = model_.word_embeddings().index_select(0, rows_index_).detach().clone().requires_grad_(true);
      params_.push_back(rows_param_);
      names_.push_back("rows");
      decay.push_back(rows_param_);
      break;
    }
  }
  std::vector<at::Tensor> prompt_params;
  if (!spec.prompt_encoder.empty()) {
    const auto& prow = spec.kind == TrainableSpec::Kind::EmbeddingRows ? spec.rows : spec.prompt_rows;
    if (prow.empty()) throw std::runtime_error("a prompt encoder needs the prompt's embedding rows");
    std::set<int64_t> seen;
    for (int64_t r : prow) {
      if (r < 0 || r >= model_.config().vocab_size || !seen.insert(r).second)
        throw std::runtime_error("prompt rows must be distinct ids inside the vocabulary (bad: " + std::to_string(r) +
                                 ")");
    }
    prompt_index_ = at::tensor(prow, at::kLong).to(model_.device());
    auto enc = std::make_shared<PromptEncoderImpl>(spec.prompt_encoder, static_cast<int64_t>(prow.size()),
                                                   model_.config().embedding_size);
    enc->to(model_.device());
    encoder_ = enc;
    for (auto& p : enc->named_parameters()) {
      params_.push_back(p.value());
      names_.push_back("prompt_encoder." + p.key());
      prompt_params.push_back(p.value());
    }
    at::NoGradGuard guard;
    model_.set_input_rows(prompt_index_, encode_prompt().detach());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(cfg.lr).betas(std::make_tuple(cfg.beta1, cfg.beta2)).eps(cfg.eps).weight_decay(wd));
  };
  if (!decay.empty()) groups.emplace_back(decay, options(cfg.weight_decay));
  if (!plain.empty()) groups.emplace_back(plain, options(0.0));
  for (size_t i = 0; i < groups.size(); ++i) group_lr_.push_back(cfg.lr);
  if (!prompt_params.empty()) {
    // Prompts want a larger learning rate than the model (the seed used 6e-4 for the rows).
    const double plr = spec.prompt_lr > 0 ? spec.prompt_lr : cfg.lr;
    auto o = options(0.0);
    o->lr(plr);
    groups.emplace_back(prompt_params, std::move(o));
    group_lr_.push_back(plr);
  }
  optimizer_ = std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(cfg.lr), cfg.fused_adamw);
  step_ = cfg.initial_step;
  if (group_) {
    // Every rank must start from the same weights and train the same way, or the all-reduced steps mean nothing.
    std::vector<std::pair<std::string, at::Tensor>> tensors(all.begin(), all.end());
    if (encoder_)
      for (const auto& p : encoder_->named_parameters()) tensors.emplace_back("prompt_encoder." + p.key(), p.value());
    group_->check_same("the model (a fingerprint of every weight)", tensors_fingerprint(tensors));
    std::ostringstream setup;
    setup << static_cast<int>(spec.kind) << "|" << spec.prompt_encoder << "|" << spec.prompt_lr << "|";
    for (const auto& n : names_) setup << n << ",";
    for (int64_t r : spec.rows) setup << r << ",";
    for (int64_t r : spec.prompt_rows) setup << r << ",";
    setup << "|" << cfg.lr << "|" << cfg.weight_decay << "|" << cfg.beta1 << "|" << cfg.beta2 << "|" << cfg.eps << "|"
          << cfg.warmup_steps << "|" << cfg.total_steps << "|" << cfg.max_grad_norm << "|" << cfg.seed << "|"
          << cfg.initial_step;
    group_->check_same("the training setup (trainable tensors, optimizer, schedule, seed)", setup.str());
    // Dropout draws from the default generator: one stream per rank (the same stream would drop the same units
    // in every rank's share of the batch).
    if (group_->world_size() > 1)
      torch::manual_seed(cfg.seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(group_->rank()));
  }
}

void Trainer::save_state(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  optimizer_->save(archive);
  archive.write("pet_step", at::tensor(step_, at::kLong));
  // Dropout draws from the default generator: keep its state so that a resumed run continues identically.
  archive.write("pet_cpu_rng", at::detail::getDefaultCPUGenerator().get_state());
  if (encoder_)
    for (const auto& p : encoder_->named_parameters())
      archive.write("pet_prompt_encoder." + p.key(), p.value().detach());
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(path + ": cannot rename the temporary file into place");
}

void Trainer::load_state(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot read the optimizer state: " + e.what_without_backtrace());
  }
  optimizer_->load(archive);
  at::Tensor step;
  archive.read("pet_step", step);
  step_ = step.item<int64_t>();
  at::Tensor rng;
  archive.read("pet_cpu_rng", rng);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  if (group_ && group_->world_size() > 1) {
    // Rank 0 saved its generator; each rank derives its own dropout stream from it, as at the start.
    auto gen = at::detail::getDefaultCPUGenerator();
    uint64_t base;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      base = gen.get<at::CPUGeneratorImpl>()->random64();
    }
    torch::manual_seed(base + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(group_->rank()));
  }
  if (encoder_) {
    at::NoGradGuard guard;
    for (auto& p : encoder_->named_parameters()) {
      at::Tensor t;
      archive.read("pet_prompt_encoder." + p.key(), t);
      p.value().copy_(t);
    }
    model_.set_input_rows(prompt_index_, encode_prompt().detach());
  }
}

at::Tensor Trainer::encode_prompt() { return std::static_pointer_cast<PromptEncoderImpl>(encoder_)->forward(); }

NamedTensors Trainer::prompt_encoder_tensors() const {
  NamedTensors out;
  if (!encoder_) return out;
  for (const auto& p : encoder_->named_parameters())
    out.emplace_back("prompt_encoder." + p.key(), p.value().detach().to(at::kCPU).contiguous().clone());
  return out;
}

Trainer::~Trainer() {
  for (auto& [name, t] : model_.params()) t.requires_grad_(false);
}

int64_t Trainer::trainable_numel() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.numel();
  return n;
}

double Trainer::lr_at(int64_t step) const {
  // HF's linear schedule: warm up from 0, then decay linearly to 0 at total_steps.
  double f = 1.0;
  if (cfg_.warmup_steps > 0 && step < cfg_.warmup_steps)
    f = static_cast<double>(step) / static_cast<double>(cfg_.warmup_steps);
  else if (cfg_.total_steps > 0)
    f = std::max(0.0, static_cast<double>(cfg_.total_steps - step) /
                          std::max<double>(1.0, static_cast<double>(cfg_.total_steps - cfg_.warmup_steps)));
  return cfg_.lr * f;
}

StepResult Trainer::forward_backward(const Batch& b, const LossSpec& loss, bool train, DistShare* share) {
  const bool has_vocab = loss.vocab_positions.defined() && loss.vocab_positions.numel() > 0;
  const bool has_cand = loss.cand_positions.defined() && loss.cand_positions.numel() > 0;
  const bool has_label = loss.label_positions.defined() && loss.label_positions.numel() > 0;
  const bool has_cls = loss.cls_labels.defined() || loss.cls_teacher_logits.defined();
  if (!has_vocab && !has_cand && !has_label && !has_cls)
    throw std::runtime_error("the loss has no positions: give vocabulary, candidate, label or classifier targets");
  const at::Device dev = model_.device();
  // Validate before any computation so that bad input never leaves half-accumulated gradients behind.
  at::Tensor vp, vt, cp, cc, cl;
  if (has_vocab) {
    vp = check_positions(loss.vocab_positions, b);
    vt = checked_targets(loss.vocab_targets, vp.size(0), model_.config().vocab_size, dev, "vocabulary target");
  }
  if (has_cand) {
    cp = check_positions(loss.cand_positions, b);
    cc = check_candidates(model_, loss.candidates, cp.size(0), dev);
    cl = checked_targets(loss.cand_labels, cp.size(0), cc.size(-1), dev, "candidate label");
  }

  at::Tensor lp, lc, wm, wl, lt;
  int64_t num_labels = 0;
  if (has_label) {
    lp = check_positions(loss.label_positions, b);
    lc = check_candidates(model_, loss.label_candidates, lp.size(0), dev);
    if (lc.dim() != 1) throw std::runtime_error("label candidates must be one shared list");
    if (!loss.word_label.defined() || loss.word_label.dim() != 1 || loss.word_label.numel() == 0)
      throw std::runtime_error("wordLabel must give the label of each verbalizer word");
    wl = loss.word_label.to(dev, at::kLong);
    num_labels = wl.max().item<int64_t>() + 1;
    if (wl.min().item<int64_t>() < 0 || at::bincount(wl.cpu()).min().item<int64_t>() == 0)
      throw std::runtime_error("wordLabel must map words to labels 0..L-1, each label with a word");
    if (!loss.label_targets.defined() || loss.label_targets.dim() != 1 || loss.label_targets.numel() == 0 ||
        lp.size(0) % loss.label_targets.numel() != 0)
      throw std::runtime_error(
          "labelTargets must hold one label per example, and labelPositions the same number of slots for each");
    const int64_t n = loss.label_targets.numel(), slots = lp.size(0) / n;
    if (!loss.word_matrix.defined() || loss.word_matrix.dim() != 2 || loss.word_matrix.size(0) != wl.size(0) ||
        loss.word_matrix.size(1) != slots * lc.size(0))
      throw std::runtime_error("wordMatrix must be [words, slots x candidates] = [" + std::to_string(wl.size(0)) +
                               ", " + std::to_string(slots * lc.size(0)) + "]");
    wm = loss.word_matrix.to(dev, at::kFloat);
    lt = checked_targets(loss.label_targets, n, num_labels, dev, "label target");
  }
  at::Tensor cy, ct;
  if (has_cls) {
    const int64_t L = require_classifier(model_);
    const int64_t B = b.input_ids.size(0);
    if (loss.cls_labels.defined()) cy = checked_targets(loss.cls_labels, B, L, dev, "classifier label");
    if (loss.cls_teacher_logits.defined()) {
      if (loss.cls_teacher_logits.dim() != 2 || loss.cls_teacher_logits.size(0) != B ||
          loss.cls_teacher_logits.size(1) != L)
        throw std::runtime_error("teacher logits must be [batch, labels] = [" + std::to_string(B) + ", " +
                                 std::to_string(L) + "]");
      if (!(loss.cls_temperature > 0)) throw std::runtime_error("the distillation temperature must be > 0");
      ct = loss.cls_teacher_logits.to(dev, at::kFloat);
    }
  }

  StepResult r;
  if (share) {
    // Each component's loss is a mean over its own count (masked tokens, candidate slots, examples, rows), which
    // differs between ranks: scaling each local mean by local / global count makes the sum over ranks the mean over
    // the global batch, as one process would compute it.
    const double counts[4] = {
        has_vocab ? static_cast<double>(vp.size(0)) : 0, has_cand ? static_cast<double>(cp.size(0)) : 0,
        has_label ? static_cast<double>(lt.size(0)) : 0, has_cls ? static_cast<double>(b.input_ids.size(0)) : 0};
    share_counts(counts, share);
    if (share->stopped) return r;
  }
  at::Tensor total;
  int component = 0;
  auto add = [&](const at::Tensor& l, double w) {
    double s = 1;
    if (share) {
      s = share->scale[component];
      share->scaled_loss[component] = l.item<double>() * s;
      share->scaled_loss[4] += l.item<double>() * s * w;
    }
    total = total.defined() ? total + l * (w * s) : l * (w * s);
  };
  {
    CudaBf16Autocast autocast(cfg_.bf16, dev);
    // Learned rows replace their embeddings on both sides (tied); a prompt encoder's output on the input only.
    RowOverride rows;
    if (rows_param_.defined()) rows = RowOverride{rows_index_, rows_param_, true};
    else if (encoder_) rows = RowOverride{prompt_index_, encode_prompt(), false};
    const RowOverride* word_emb = rows.rows.defined() ? &rows : nullptr;
    const Precision precision = kernel_precision(cfg_.bf16 ? Precision::Bf16 : Precision::Fp32, dev);
    at::Tensor hidden = model_.encode(b, train, word_emb, cfg_.recompute, precision);
    // One MLM-head pass over the rows of every loss that reads the vocabulary: the tied decoder is cast for the
    // GEMM and its gradient formed and accumulated once (split's backward concatenates the parts' gradients).
    at::Tensor vocab_logits, cand_logits, label_logits;
    {
      std::vector<at::Tensor> rows_of;
      std::vector<int64_t> sizes;
      for (const at::Tensor* pos : {&vp, &cp, &lp})
        if (pos->defined()) rows_of.push_back(gather_positions(hidden, *pos)), sizes.push_back(pos->size(0));
      if (!rows_of.empty()) {
        const at::Tensor all =
            model_.mlm_logits(rows_of.size() == 1 ? rows_of[0] : at::cat(rows_of), word_emb, precision);
        const std::vector<at::Tensor> parts =
            rows_of.size() == 1 ? std::vector<at::Tensor>{all} : all.split_with_sizes(sizes);
        size_t k = 0;
        if (has_vocab) vocab_logits = parts[k++];
        if (has_cand) cand_logits = parts[k++];
        if (has_label) label_logits = parts[k++];
      }
    }
    if (has_vocab) {
      at::Tensor l = cross_entropy(vocab_logits, vt);
      r.vocab_loss = l.item<double>();
      component = 0;
      add(l, loss.vocab_weight);
    }
    if (has_cand) {
      CandidateScores s = candidate_scores_from_logits(cand_logits, cc);
      at::Tensor l = at::nll_loss(at::log_softmax(s.logits.to(at::kFloat), 1), cl);
      r.cand_loss = l.item<double>();
      component = 1;
      add(l, loss.cand_weight);
    }
    if (has_label) {
      CandidateScores s = candidate_scores_from_logits(label_logits, lc);
      at::Tensor scores = s.logits.to(at::kFloat);
      if (loss.label_logprob) scores = scores - s.log_z.to(at::kFloat).unsqueeze(1);
      at::Tensor label_scores = verbalizer_label_scores(scores, lt.size(0), wm, wl, num_labels, loss.label_logsumexp);
      at::Tensor l = at::nll_loss(at::log_softmax(label_scores, 1), lt);
      r.label_loss = l.item<double>();
      component = 2;
      add(l, loss.label_weight);
    }
    if (has_cls) {
      const at::Tensor at_ = summary_positions(model_, b);
      at::Tensor z =
          classifier_logits(model_, hidden.index({at_.select(1, 0), at_.select(1, 1)}), train).to(at::kFloat);
      at::Tensor l;
      if (ct.defined()) {
        // PET's distillation: KL(softmax(teacher / T) || softmax(student / T)), batch mean, times T^2.
        const double T = loss.cls_temperature;
        at::Tensor p = at::log_softmax(z / T, 1), q = at::softmax(ct / T, 1);
        l = (q * (at::log(q.clamp_min(1e-30)) - p)).sum(1).mean() * (T * T);
      } else {
        l = at::nll_loss(at::log_softmax(z, 1), cy);
      }
      r.cls_loss = l.item<double>();
      component = 3;
      add(l, loss.cls_weight);
    }
  }
  r.loss = total.item<double>();
  if (!std::isfinite(r.loss)) throw std::runtime_error("the loss is not finite (" + std::to_string(r.loss) + ")");
  total.backward();
  return r;
}

StepResult Trainer::step(const Batch& b, const LossSpec& loss) {
  if (group_) return step(&b, &loss, false);
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  return finish_step(forward_backward(b, loss, true));
}

StepResult Trainer::step(const Batch* b, const LossSpec* loss, bool stop) {
  if (!group_) {
    if (!b || !loss)
      throw std::runtime_error("a step needs a batch (an empty share exists only in distributed training)");
    if (stop) {
      StepResult r;
      r.step = step_;
      r.stopped = true;
      return r;
    }
    return step(*b, *loss);
  }
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  DistShare share;
  share.stop = stop;
  StepResult r;
  if (b && loss) {
    r = forward_backward(*b, *loss, true, &share);
  } else {
    const double none[4] = {0, 0, 0, 0};
    share_counts(none, &share);  // an empty share: no loss, zero gradients, but the same collectives
  }
  if (share.stopped) {
    for (auto& p : params_) p.mutable_grad() = at::Tensor();
    r = StepResult{};
    r.stopped = true;
    r.step = step_;
    r.allreduce_ms = share.comm_ms;
    return r;
  }
  reduce_gradients(r, share);
  return finish_step(r);
}

void Trainer::share_counts(const double local[4], DistShare* share) {
  at::Tensor t = at::tensor({local[0], local[1], local[2], local[3], share->stop ? 1.0 : 0.0}, at::kDouble);
  const auto t0 = std::chrono::steady_clock::now();
  group_->allreduce_sum(t);
  share->comm_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double* g = t.data_ptr<double>();
  share->stopped = g[4] > 0;
  for (int k = 0; k < 4; ++k) share->scale[k] = g[k] > 0 ? local[k] / g[k] : 0.0;
}

void Trainer::reduce_gradients(StepResult& r, DistShare& share) {
  // One flat buffer per dtype, one all-reduce each. The fp32 buffer also carries, per parameter, whether its
  // gradient exists on some rank (an unused tensor must stay without a gradient: AdamW would otherwise decay it),
  // and the scaled losses, so that every rank reports the global batch's loss.
  std::map<at::ScalarType, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < params_.size(); ++i) by_dtype[params_[i].scalar_type()].push_back(i);
  by_dtype[at::kFloat];  // the flags and losses travel in fp32 even when no parameter is fp32
  const size_t n = params_.size();
  const at::Device dev = params_.empty() ? model_.device() : params_[0].device();
  std::vector<float> extra(n + 5);
  for (size_t i = 0; i < n; ++i) extra[i] = params_[i].grad().defined() ? 1.f : 0.f;
  for (int k = 0; k < 5; ++k) extra[n + k] = static_cast<float>(share.scaled_loss[k]);
  std::vector<float> summed_extra;
  for (auto& [dtype, idx] : by_dtype) {
    std::vector<at::Tensor> parts;
    for (size_t i : idx) {
      const at::Tensor& p = params_[i];
      parts.push_back(p.grad().defined() ? p.grad().detach().reshape({-1}).to(dtype)
                                         : at::zeros({p.numel()}, p.options().dtype(dtype)));
    }
    if (dtype == at::kFloat) parts.push_back(at::tensor(extra, at::kFloat).to(dev));
    if (parts.empty()) continue;
    at::Tensor flat = at::cat(parts);
    const auto t0 = std::chrono::steady_clock::now();
    group_->allreduce_sum(flat);
    share.comm_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    int64_t off = 0;
    std::vector<std::pair<size_t, at::Tensor>> slices;
    for (size_t i : idx) {
      const int64_t k = params_[i].numel();
      slices.emplace_back(i, flat.narrow(0, off, k).view(params_[i].sizes()));
      off += k;
    }
    if (dtype == at::kFloat) {
      at::Tensor e = flat.narrow(0, off, static_cast<int64_t>(n + 5)).to(at::kCPU).contiguous();
      summed_extra.assign(e.data_ptr<float>(), e.data_ptr<float>() + n + 5);
    }
    for (auto& [i, g] : slices) params_[i].mutable_grad() = g;
  }
  for (size_t i = 0; i < n; ++i)
    if (summed_extra[i] == 0.f) params_[i].mutable_grad() = at::Tensor();
  r.vocab_loss = summed_extra[n];
  r.cand_loss = summed_extra[n + 1];
  r.label_loss = summed_extra[n + 2];
  r.cls_loss = summed_extra[n + 3];
  r.loss = summed_extra[n + 4];  // the weighted sum of the components: what one process reports
  r.allreduce_ms = share.comm_ms;
}

StepResult Trainer::finish_step(StepResult r) {
  const at::Tensor grad_norm = clip_grad_norm(params_, cfg_.max_grad_norm, cfg_.fused_adamw);  // <= 0: measured only
  r.lr = lr_at(step_);
  auto& groups = optimizer_->param_groups();
  for (size_t i = 0; i < groups.size(); ++i)
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(r.lr / cfg_.lr * group_lr_[i]);
  optimizer_->step();
  r.grad_norm = grad_norm.item<double>();  // read once the step is queued: the device is not waited on before
  ++step_;
  if (encoder_) {
    at::NoGradGuard guard;
    model_.set_input_rows(prompt_index_, encode_prompt().detach());
  }
  if (rows_param_.defined()) {
    at::NoGradGuard guard;
    model_.params()[model_.names().word].index_copy_(0, rows_index_, rows_param_.detach());
  }
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  r.step = step_;
  return r;
}

StepResult Trainer::loss_and_grads(const Batch& b, const LossSpec& loss, bool train, NamedTensors* grads) {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  StepResult r = forward_backward(b, loss, train);
  double sq = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor g = params_[i].grad().defined() ? params_[i].grad().detach() : at::zeros_like(params_[i]);
    sq += g.pow(2).sum().item<double>();
    if (grads) grads->emplace_back(names_[i], g.to(at::kCPU, at::kFloat).contiguous().clone());
  }
  r.grad_norm = std::sqrt(sq);
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  r.step = step_;
  return r;
}

}  // namespace petcore
