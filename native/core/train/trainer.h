// Training primitives: losses at chosen positions, backward, AdamW with a schedule, clipping, and a spec of
// which parameters may change (everything, named tensors, or only some rows of the word-embedding matrix).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "distributed/distributed.h"
#include "model/bert_model.h"

namespace torch {
namespace optim {
class Optimizer;
}
namespace nn {
class Module;
}
}  // namespace torch

namespace petcore {

struct TrainableSpec {
  enum class Kind { All, Tensors, EmbeddingRows };
  Kind kind = Kind::All;
  std::vector<std::string> names;  // Kind::Tensors: HF names
  std::vector<int64_t> rows;       // Kind::EmbeddingRows: word-embedding rows (e.g. the [unusedN] prompt tokens)
  // P-tuning's prompt encoder ("lstm" or "mlp"; empty: none) producing the input embeddings of `prompt_rows`
  // (EmbeddingRows: rows) with its own learning rate; with Kind::All the model trains too.
  std::string prompt_encoder;
  std::vector<int64_t> prompt_rows;
  double prompt_lr = 0;  // 0: the model's learning rate
};

// The seed where the caller gives none (training, a new classifier head): the options table's `seed` default
// (lib/options.ts), which test/unit/41 holds this to.
constexpr uint64_t kDefaultSeed = 42;

struct OptimConfig {
  double lr = 1e-4;
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;     // 0: constant learning rate after warm-up
  double max_grad_norm = 1.0;  // <= 0: no clipping
  uint64_t seed = kDefaultSeed;
  bool bf16 = false;         // bf16 GEMMs: the layer kernel's bf16 on CPU, autocast on CUDA; fp32 master weights
  int64_t initial_step = 0;  // resuming: the schedule continues from here
  bool recompute = false;    // recompute each layer's activations in backward (less memory)
  bool fused_adamw = true;   // AdamW and clipping fused (optimizer_step.h) where the build has it; else LibTorch's
};

// The loss, a weighted sum of the parts that are given:
//  vocab: CE over the vocabulary at vocab_positions (targets = token ids) — MLM, or PET with the label token;
//  cand:  CE over the candidates at cand_positions (labels = index into the candidates);
//  label: PET's verbalizer loss. label_positions holds S [MASK] slots per example, in order ([N*S, 2]); the
//         candidate scores there (logits, or log-probabilities when label_logprob) form a [N, S*C] row per example;
//         word scores = rows x word_matrix^T ([W, S*C], one row per verbalizer word), label scores = the mean (or
//         log-sum-exp when label_logsumexp) of the words of each label (word_label [W]); CE with label_targets [N];
//  cls:   the sequence classifier: CE with cls_labels [B], or KL to softmax(cls_teacher_logits / T) times T^2.
struct LossSpec {
  at::Tensor vocab_positions, vocab_targets;
  at::Tensor cand_positions, candidates, cand_labels;
  at::Tensor label_positions, label_candidates, word_matrix, word_label, label_targets;
  bool label_logprob = false, label_logsumexp = false;
  at::Tensor cls_labels, cls_teacher_logits;
  double cls_temperature = 1.0;
  double vocab_weight = 1.0, cand_weight = 1.0, label_weight = 1.0, cls_weight = 1.0;
};

// [N, L] label scores of PET's verbalizer from candidate scores (see LossSpec); shared by training and tests.
at::Tensor verbalizer_label_scores(const at::Tensor& cand_scores, int64_t examples, const at::Tensor& word_matrix,
                                   const at::Tensor& word_label, int64_t num_labels, bool logsumexp);

struct StepResult {
  double loss = 0, vocab_loss = 0, cand_loss = 0, label_loss = 0, cls_loss = 0, grad_norm = 0, lr = 0;
  int64_t step = 0;
  bool stopped = false;     // distributed: some rank asked to stop; no step was taken
  double allreduce_ms = 0;  // distributed: time spent in the step's all-reduces
};

// Data-parallel training: the part of a step's loss each component (vocab, cand, label, cls) contributes.
struct DistShare {
  bool stop = false;                        // this rank asks every rank to stop before the step
  bool stopped = false;                     // some rank asked
  double scale[4] = {1, 1, 1, 1};           // local count / global count of each component's mean
  double scaled_loss[5] = {0, 0, 0, 0, 0};  // each component's mean times scale; [4]: their weighted sum
  double comm_ms = 0;
};

class Trainer {
 public:
  // With `group`, every step all-reduces the gradients of what learns across its ranks (data parallelism): each
  // rank passes its share of the global batch, and all ranks take the step of one process on the whole batch.
  Trainer(BertModel& model, const TrainableSpec& spec, const OptimConfig& cfg,
          std::shared_ptr<DistGroup> group = nullptr);
  ~Trainer();

  // One optimizer step on the batch. Dropout is on; other rows / frozen tensors are never written.
  StepResult step(const Batch& b, const LossSpec& loss);
  // Distributed form: b and loss may be null (this rank's share of the global batch is empty, it still takes part
  // in the collectives); `stop` on any rank makes every rank return `stopped` without a step.
  StepResult step(const Batch* b, const LossSpec* loss, bool stop);
  // Loss and the gradients of the trainable tensors ("rows" for embedding-row training), without an update.
  StepResult loss_and_grads(const Batch& b, const LossSpec& loss, bool train, NamedTensors* grads);

  int64_t steps_done() const { return step_; }
  // The optimizer's state (AdamW moments and step counts) and our step counter, for resuming a run.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);
  int64_t trainable_numel() const;
  // The prompt encoder's tensors (named "prompt_encoder.*"), for saving with an adapter.
  NamedTensors prompt_encoder_tensors() const;
  const TrainableSpec& spec() const { return spec_; }

 private:
  StepResult forward_backward(const Batch& b, const LossSpec& loss, bool train, DistShare* share = nullptr);
  // Sums the components' counts and the stop flags over the ranks; sets share->scale / stopped.
  void share_counts(const double local[4], DistShare* share);
  // Sums the gradients (one flat buffer per dtype) and the scaled losses over the ranks, in place.
  void reduce_gradients(StepResult& r, DistShare& share);
  StepResult finish_step(StepResult r);
  double lr_at(int64_t step) const;

  BertModel& model_;
  TrainableSpec spec_;
  OptimConfig cfg_;
  std::vector<at::Tensor> params_;  // what the optimizer owns
  std::vector<std::string> names_;
  at::Tensor rows_index_, rows_param_;          // EmbeddingRows: the rows being learned
  std::shared_ptr<torch::nn::Module> encoder_;  // PromptEncoderImpl
  at::Tensor prompt_index_;
  at::Tensor encode_prompt();
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t step_ = 0;
  std::vector<double> group_lr_;
  std::shared_ptr<DistGroup> group_;  // each parameter group's base learning rate
};

}  // namespace petcore
