// Training primitives: losses at chosen positions, backward, AdamW with a schedule, clipping, and a spec of
// which parameters may change (everything, named tensors, or only some rows of the word-embedding matrix).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "bert_model.h"

namespace torch {
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace petcore {

struct TrainableSpec {
  enum class Kind { All, Tensors, EmbeddingRows };
  Kind kind = Kind::All;
  std::vector<std::string> names;  // Kind::Tensors: HF names
  std::vector<int64_t> rows;       // Kind::EmbeddingRows: word-embedding rows (e.g. the [unusedN] prompt tokens)
};

struct OptimConfig {
  double lr = 1e-4;
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;     // 0: constant learning rate after warm-up
  double max_grad_norm = 1.0;  // <= 0: no clipping
  uint64_t seed = 42;
  bool bf16 = false;           // autocast on CUDA
};

// The loss: vocab_weight * CE over the vocabulary at vocab_positions (targets = token ids)
//         + cand_weight  * CE over the candidates at cand_positions (labels = index into the candidates).
struct LossSpec {
  at::Tensor vocab_positions, vocab_targets;
  at::Tensor cand_positions, candidates, cand_labels;
  double vocab_weight = 1.0, cand_weight = 1.0;
};

struct StepResult {
  double loss = 0, vocab_loss = 0, cand_loss = 0, grad_norm = 0, lr = 0;
  int64_t step = 0;
};

class Trainer {
 public:
  Trainer(BertModel& model, const TrainableSpec& spec, const OptimConfig& cfg);
  ~Trainer();

  // One optimizer step on the batch. Dropout is on; other rows / frozen tensors are never written.
  StepResult step(const Batch& b, const LossSpec& loss);
  // Loss and the gradients of the trainable tensors ("rows" for embedding-row training), without an update.
  StepResult loss_and_grads(const Batch& b, const LossSpec& loss, bool train, NamedTensors* grads);

  int64_t steps_done() const { return step_; }
  int64_t trainable_numel() const;
  const TrainableSpec& spec() const { return spec_; }

 private:
  StepResult forward_backward(const Batch& b, const LossSpec& loss, bool train);
  double lr_at(int64_t step) const;

  BertModel& model_;
  TrainableSpec spec_;
  OptimConfig cfg_;
  std::vector<at::Tensor> params_;       // what the optimizer owns
  std::vector<std::string> names_;
  at::Tensor rows_index_, rows_param_;   // EmbeddingRows: the rows being learned
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t step_ = 0;
};

}  // namespace petcore
