// The forward pass for inference on CPU (eval, no autograd), split into tasks on a small thread pool: row chunks
// for projections, feed-forward and LayerNorm, one sequence per task for attention; each task runs
// single-threaded ops and single-threaded BLAS on cache-sized pieces. On a 2-core machine this avoids ATen's
// OpenMP team and OpenBLAS's own threads fighting over the cores, and roughly doubles throughput at batch 32.
// The tasks run the pieces of the one layer kernel (encoder_layer.h) that BertModel::layer_forward() runs over the
// whole batch; BertModel::set_task_scheduling(false) turns the task path off (for comparisons).
#pragma once
#include <functional>

#include <ATen/ATen.h>

#include "model/bert_model.h"

namespace petcore {

// Threads for the task path, or 0 where the plain path runs: training, autograd on, non-CPU devices, no
// OpenMP runtime found; with a model, also where its task scheduling is off.
int inference_tasks(const at::Device& device, bool train);
int inference_tasks(const BertModel& m, bool train);

// The encoder on the task path. Without `positions`: last hidden states [B, T, H]. With validated (row, column)
// pairs [M, 2] (int64): only the last hidden states there, [M, H] — the last layer runs for those rows only.
at::Tensor encode_in_tasks(const BertModel& m, const Batch& b, const RowOverride* rows, int threads,
                           const at::Tensor& positions, Precision precision = Precision::Fp32);

// Full-vocabulary logits h [M, H] x decoder [V, H]^T + bias, over vocabulary slices in tasks (fp32); with
// `onednn` each slice one oneDNN call (layer::dense).
at::Tensor decode_in_tasks(const at::Tensor& h, const at::Tensor& decoder, const at::Tensor& bias, int threads,
                           bool onednn = false);

// The vocabulary's log-normaliser log sum_v exp(h W_v + b_v) per row of h [M, E] (fp32) over decoder W [V, E] and
// bias b [V] (fp32 or bf16: h goes to W's dtype, logits and sums are fp32), in vocabulary slices on the pool: each
// slice's logits stay in its thread's cache and only their row maxima and sums of exponentials leave it. -> [M] fp32.
at::Tensor log_normaliser_in_tasks(const at::Tensor& h, const at::Tensor& decoder, const at::Tensor& bias, int threads,
                                   bool onednn = false);

// The last hidden states at validated positions [M, 2] -> [M, H], without autograd: the task path where it is
// on, else a gather from BertModel::encode().
at::Tensor encode_at_positions(const BertModel& m, const Batch& b, const at::Tensor& positions,
                               Precision precision = Precision::Fp32);

// Runs f under the task path's thread settings where that path is on (ops and OpenBLAS single-threaded in the
// caller), so that no OpenMP/OpenBLAS worker woken by small ops around the model spins against the pool.
void in_inference_scope(const BertModel& m, const std::function<void()>& f);

}  // namespace petcore
