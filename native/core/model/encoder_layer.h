// One encoder layer, written once for every family. Its pieces work on any rows: the whole batch at once (training,
// recomputation, the plain path) or cache-sized pieces scheduled on the CPU task pool (cpu_inference.cc).
//   input_norm: rows of x -> what the projections read (x itself; pre-LayerNorm: LayerNorm(x))
//   project:    those rows -> fused query/key/value projections
//   attend:     queries of some rows x keys/values of their sequences -> attention context
//   finish:     context + residual -> attention output, LayerNorm, feed-forward, LayerNorm (post-LayerNorm, BERT), or
//               residual sum, LayerNorm, feed-forward, residual sum (pre-LayerNorm, GPT-2)
// The variants are the config's named options (config.h): pre_norm, and causal, which only the attention bias
// (attention_bias()) carries.
// Precision::Bf16 runs the GEMMs (projections, QK^T, attention x V, feed-forward) in bf16 (oneDNN on CPU) while
// the residual stream, softmax and LayerNorm stay fp32; the fp32 master weights are what trains.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/config.h"

namespace petcore {

enum class Precision { Fp32, Bf16 };

// "fp32" / "bf16"; throws std::invalid_argument for anything else.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);
// The precision the layer kernel runs in on `device`: on CUDA, bf16 comes from autocast (autocast.h) around
// fp32 operands, so the kernel itself stays fp32 there.
inline Precision kernel_precision(Precision p, const at::Device& device) {
  return device.is_cuda() ? Precision::Fp32 : p;
}

// The HF tensors of one encoder layer, resolved once at load (no name look-ups per call; model_family.h). The two
// LayerNorms are the first and the second of the layer: after attention's and the feed-forward's residual sums in
// BERT, before attention and before the feed-forward in pre-LayerNorm layers (GPT-2's ln_1, ln_2).
struct LayerWeights {
  at::Tensor query_w, query_b, key_w, key_b, value_w, value_b;
  at::Tensor attn_out_w, attn_out_b, attn_ln_w, attn_ln_b;
  at::Tensor inter_w, inter_b, out_w, out_b, out_ln_w, out_ln_b;
};

// What the kernel multiplies with: the GEMM weights in the compute dtype, LayerNorm parameters fp32. Built from
// LayerWeights; differentiable with respect to them. Query/key/value are one [3H, H] matrix (one GEMM whose output
// rows are dense, which oneDNN's fastest kernels need; queries pre-divided by sqrt(head_dim) when that is a power
// of two: exact, so results equal dividing the scores). In fp32 that matrix is the only copy; the rest are the
// weights themselves.
struct LayerOperands {
  at::Tensor qkv_w, qkv_b;
  at::Tensor attn_out_w, attn_out_b, inter_w, inter_b, out_w, out_b;
  at::Tensor attn_ln_w, attn_ln_b, out_ln_w, out_ln_b;
  bool queries_scaled = false;
  at::ScalarType dtype = at::kFloat;
  // On the CPU, oneDNN directly rather than ATen's ops: without autograd the dense steps and attention
  // (onednn_primitives.h), under autograd attention (onednn_attention.h).
  bool onednn = false;
};

LayerOperands make_operands(const LayerWeights& w, const BertConfig& c, Precision p, bool fused_attention);

// The feed-forward activation of the config (HF's "gelu", "gelu_new"/"gelu_pytorch_tanh", "relu").
at::Tensor activation(const at::Tensor& x, Activation a);
// The same in place (no autograd).
at::Tensor& activation_(at::Tensor& x, Activation a);

// Dropout as at::dropout (zero with probability p, scale the rest by 1 / (1 - p)) when train and 0 < p < 1, else x
// itself. On CPU the mask comes from a counter-based hash (splitmix64) of the element index and one 64-bit draw from
// the default CPU generator, filled on ATen's threads: ATen's bernoulli_ draws every element from mt19937 on one
// thread (~6 ns per element, about a sixth of a bf16 training step at batch 32 x 128). The draw keeps the masks a
// function of the generator's state (seeded runs repeat; recomputation restores the state and gets the same masks);
// the stream differs from at::dropout's. Elsewhere at::dropout. With `rows` (int64 [n]) x [n, W] holds packed rows:
// its row i takes the mask of row rows[i] of the padded tensor, so packing does not change the masks.
at::Tensor apply_dropout(const at::Tensor& x, double p, bool train, const at::Tensor& rows = {});
// That mask itself (0 or 1 / (1 - p), x's shape and dtype) for a CPU fp32/bf16 x and 0 < p < 1: one draw.
at::Tensor dropout_mask(const at::Tensor& x, double p, const at::Tensor& rows = {});

// Whether attend() uses LibTorch's fused attention (LibTorch 2.x, non-CPU tensors); its queries are not
// pre-scaled.
bool fused_attention(const at::Device& device);

// What the attention scores are multiplied by inside a fused GEMM: 1 where the queries come pre-scaled, else
// 1 / sqrt(head_dim) where that equals dividing (a power of two). False: no exact factor.
bool exact_score_factor(const BertConfig& c, const LayerOperands& w, float* factor);

// Additive attention mask [B, 1, 1, T] (fp32): 0 where attended, the lowest float where padded (as HF does).
at::Tensor attention_mask_bias(const at::Tensor& attention_mask);

// The attention bias of a batch for this config: attention_mask_bias() where every query sees the same keys, else
// [B, 1, T, T]: causal attention (c.causal: a token sees itself and what precedes it) and branches (branch_ids
// [B, T], optional: a token of branch k > 0 sees the shared tokens, branch 0, and its own branch only, so that
// several continuations of one prefix read the prefix's keys and values in one pass).
at::Tensor attention_bias(const BertConfig& c, const at::Tensor& attention_mask, const at::Tensor& branch_ids = {});

// The rows of `bias` (attention_bias()) for the queries at columns [col, col + n) of sequence bi: [1, 1, n or 1, T].
at::Tensor query_bias(const at::Tensor& bias, int64_t bi, int64_t col, int64_t n);

// Per sequence of attention_mask [B, T]: whether it has no padding (all ones), so that its attention needs no mask.
std::vector<bool> unpadded(const at::Tensor& attention_mask);

// The rows (of the flattened [B * T] batch) that hold real tokens (attention_mask 1), int64, or an undefined tensor
// where packing would not pay: no padding to speak of (under 5 % of the rows), or nothing but padding. With
// `multiple` > 1 padded rows are added up to a multiple of it (in order).
at::Tensor packed_rows(const at::Tensor& attention_mask, int64_t multiple = 1);

namespace layer {

// y = x w^T + b in w's dtype (x is cast to it); into `out` when given (no autograd), else a new tensor. With
// `onednn` and no autograd one oneDNN call (onednn_primitives.h), else ATen's addmm.
at::Tensor dense(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor out = {},
                 bool onednn = false);

// Without autograd: act((x w^T + b) + residual), `act` and `residual` (fp32) optional; fp32 out with a residual,
// else w's dtype. With `onednn` one oneDNN call with the epilogue fused, else ATen's ops in that order.
at::Tensor dense_epilogue(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const Activation* act,
                          const at::Tensor& residual, bool onednn);

// Without autograd: LayerNorm of y [..., H] (fp32, contiguous; written in place where oneDNN runs it) with g, b.
at::Tensor layer_norm_(at::Tensor y, const at::Tensor& g, const at::Tensor& b, double eps, bool onednn);
// LayerNorm into a new tensor (autograd-capable; through oneDNN where `onednn` and no autograd).
at::Tensor layer_norm(const at::Tensor& y, const at::Tensor& g, const at::Tensor& b, double eps, bool onednn);

// What the projections of rows x [n, H] (fp32) read: x, or in pre-LayerNorm layers LayerNorm(x) (a new tensor).
at::Tensor input_norm(const BertConfig& c, const LayerOperands& w, const at::Tensor& x);

// Projections of rows x [n, H] (fp32) -> [n, 3H] (queries | keys | values) in the compute dtype, or `blocks` of
// them from `first` (1, 2: keys and values; 0, 1: queries). Into `out` when given (no autograd).
at::Tensor project(const LayerOperands& w, const at::Tensor& x, int64_t first = 0, int64_t blocks = 3,
                   const at::Tensor& out = {});

// Attention of queries q [B, n, H] over keys k and values v [B, T, H] with mask_bias [B, 1, 1, T] -> context
// [B, n, H] (compute dtype); into `out` ([B * n, H]) when given. Dropout on the probabilities when train.
at::Tensor attend(const BertConfig& c, const LayerOperands& w, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const at::Tensor& mask_bias, bool train, at::Tensor out = {});

// Without autograd: the attention of one sequence, query rows q [n, H] over keys and values k, v [T, H] (rows, any
// row stride) with mask_bias [1, 1, 1 or n, T] (query_bias(); undefined: none), into out [n, H], read and written in
// place through oneDNN (no head-major copies), where w.onednn is on and the scale is exact (a power of two). False:
// nothing done.
bool attend_in_place(const BertConfig& c, const LayerOperands& w, const at::Tensor& q, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& mask_bias, at::Tensor out);

// The same on heads: qh [B, nh, n, dh], kh and vh [B, nh, T, dh] (any strides; oneDNN copies operands that are
// neither contiguous nor transposed, OpenBLAS is faster on contiguous ones) -> context [B, nh, n, dh].
at::Tensor attend_heads(const BertConfig& c, const LayerOperands& w, const at::Tensor& qh, const at::Tensor& kh,
                        const at::Tensor& vh, const at::Tensor& mask_bias, bool train);

// Attention output, dropout, residual x, LayerNorm, feed-forward, dropout, residual, LayerNorm (pre-LayerNorm: the
// second LayerNorm before the feed-forward, none after it): ctx [n, H] (compute dtype), x [n, H] fp32 -> [n, H] fp32.
// `rows`: x holds those rows of the padded batch (dropout masks).
at::Tensor finish(const BertConfig& c, const LayerOperands& w, const at::Tensor& ctx, const at::Tensor& x, bool train,
                  const at::Tensor& rows = {});

// The whole layer on x [B, T, H] (fp32): the pieces over every row. Autograd-capable. With `rows` (int64,
// packed_rows()) x is [n, H], those rows of the [B * T] padded batch: projections, feed-forward and LayerNorms run on
// them alone, attention in the padded layout; the result is [n, H] too.
at::Tensor forward(const BertConfig& c, const LayerOperands& w, const at::Tensor& x, const at::Tensor& mask_bias,
                   bool train, const at::Tensor& rows = {});

}  // namespace layer
}  // namespace petcore
