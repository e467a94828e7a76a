#include "trainer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include <torch/torch.h>

#include "autocast.h"
#include "scoring.h"

namespace petcore {
namespace {

bool no_decay(const std::string& name) {
  return name.size() >= 5 && (name.compare(name.size() - 5, 5, ".bias") == 0 ||
                              name.find("LayerNorm.weight") != std::string::npos);
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

Trainer::Trainer(BertModel& model, const TrainableSpec& spec, const OptimConfig& cfg)
    : model_(model), spec_(spec), cfg_(cfg) {
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
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(cfg.lr)
                                                            .betas(std::make_tuple(cfg.beta1, cfg.beta2))
                                                            .eps(cfg.eps)
                                                            .weight_decay(wd));
  };
  if (!decay.empty()) groups.emplace_back(decay, options(cfg.weight_decay));
  if (!plain.empty()) groups.emplace_back(plain, options(0.0));
  optimizer_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.lr));
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

StepResult Trainer::forward_backward(const Batch& b, const LossSpec& loss, bool train) {
  const bool has_vocab = loss.vocab_positions.defined() && loss.vocab_positions.numel() > 0;
  const bool has_cand = loss.cand_positions.defined() && loss.cand_positions.numel() > 0;
  if (!has_vocab && !has_cand) throw std::runtime_error("the loss has no positions: give vocabulary or candidate targets");
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

  StepResult r;
  at::Tensor total;
  {
    CudaBf16Autocast autocast(cfg_.bf16, dev);
    at::Tensor word_emb;
    if (rows_param_.defined()) word_emb = model_.word_embeddings().index_put({rows_index_}, rows_param_);
    at::Tensor hidden = model_.encode(b, train, word_emb);
    if (has_vocab) {
      at::Tensor logits = model_.mlm_logits(gather_positions(hidden, vp), word_emb).to(at::kFloat);
      at::Tensor l = at::nll_loss(at::log_softmax(logits, 1), vt);
      r.vocab_loss = l.item<double>();
      total = l * loss.vocab_weight;
    }
    if (has_cand) {
      CandidateScores s = candidate_scores_from_hidden(model_, hidden, cp, cc, word_emb);
      at::Tensor l = at::nll_loss(at::log_softmax(s.logits.to(at::kFloat), 1), cl);
      r.cand_loss = l.item<double>();
      total = total.defined() ? total + l * loss.cand_weight : l * loss.cand_weight;
    }
  }
  r.loss = total.item<double>();
  if (!std::isfinite(r.loss)) throw std::runtime_error("the loss is not finite (" + std::to_string(r.loss) + ")");
  total.backward();
  return r;
}

StepResult Trainer::step(const Batch& b, const LossSpec& loss) {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  StepResult r = forward_backward(b, loss, true);
  if (cfg_.max_grad_norm > 0) {
    r.grad_norm = torch::nn::utils::clip_grad_norm_(params_, cfg_.max_grad_norm);
  } else {
    double sq = 0;
    for (const auto& p : params_)
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    r.grad_norm = std::sqrt(sq);
  }
  r.lr = lr_at(step_);
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(r.lr);
  optimizer_->step();
  ++step_;
  if (rows_param_.defined()) {
    at::NoGradGuard guard;
    model_.params()["bert.embeddings.word_embeddings.weight"].index_copy_(0, rows_index_, rows_param_.detach());
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
