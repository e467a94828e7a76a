// Inference at [MASK] positions: full-vocabulary logits, or the scores of a few candidate tokens.
#pragma once
#include <ATen/ATen.h>

#include "model/bert_model.h"

namespace petcore {

struct CandidateScores {
  at::Tensor logits;  // [M, C] raw logits of the candidates
  at::Tensor log_z;   // [M] log-sum-exp over the full vocabulary: log p = logit - log_z
};

// positions: [M, 2] (row, column) pairs into the batch. Throws for positions outside the batch.
at::Tensor check_positions(const at::Tensor& positions, const Batch& b);

// Full-vocabulary logits at the positions, eval mode, no autograd: [M, V] (CPU, fp32).
at::Tensor logits_at(const BertModel& m, const Batch& b, const at::Tensor& positions,
                     Precision precision = Precision::Fp32);

// candidates: [C] shared by every position, or [M, C] one list per position. The MLM head runs only at the
// positions; the normaliser still covers the whole vocabulary, so log-probabilities are exact.
// precision: the encoder's GEMMs (bf16: oneDNN on CPU, autocast on CUDA). The candidates' logits stay fp32; the
// normaliser is fp32 too, except on the CPU task path in bf16, where its vocabulary GEMM runs in bf16 (a copy of the
// decoder kept with the model), as autocast runs it on CUDA.
CandidateScores score_candidates(const BertModel& m, const Batch& b, const at::Tensor& positions,
                                 const at::Tensor& candidates, Precision precision = Precision::Fp32);

// The core of the above, differentiable (training calls it too): the full-vocabulary logits [M, V] at the positions
// (any precision; BertModel::mlm_logits) -> (logits [M, C], log_z [M]), the normaliser in fp32.
CandidateScores candidate_scores_from_logits(const at::Tensor& vocab_logits, const at::Tensor& candidates);

// Validates candidate ids ([C] or [M, C]) against the vocabulary; returns them as int64 on `device`.
at::Tensor check_candidates(const BertModel& m, const at::Tensor& candidates, int64_t M, const at::Device& device);

// Hidden rows at the positions: [M, H].
at::Tensor gather_positions(const at::Tensor& hidden, const at::Tensor& positions);

}  // namespace petcore
