// oneDNN's primitives called directly: the layer kernel's dense steps without autograd (matmul with the step's
// epilogue fused: bias, activation, residual sum), attention in place, batched matmuls, LayerNorm and row softmax,
// where this build has oneDNN's API for the very library LibTorch links (Debian's
// LibTorch + libdnnl-dev; CMakeLists.txt checks it). ATen sends fp32 GEMMs to the BLAS (OpenBLAS there), which
// oneDNN beats by 5-20 % on the layer's shapes on AVX-512 CPUs, and each fused epilogue saves a pass over the rows.
// fp32 stays fp32 (only the order of the sums inside a GEMM differs).
#pragma once
#include <string>

#include <ATen/ATen.h>

#include "model/config.h"

namespace petcore {
namespace onednn {

// Whether this build can call oneDNN directly (each model chooses: BertModel::set_onednn_kernels), and the
// version of the oneDNN it calls ("" when it cannot).
bool compiled();
std::string version();

// Whether oneDNN has bf16 kernels on this CPU (oneDNN 2.6 needs AVX-512: on an AVX2-only CPU every bf16 call
// returns false and the bf16 paths run ATen's ops). Probed once.
bool bf16_kernels();

// out = act((x w^T + b) + residual), with `act` and `residual` optional: x [M, K] and w [N, K] of one dtype (fp32
// or bf16), b [N] of that dtype, out [M, N] fp32 or x's dtype, residual [M, N] fp32 (out may be the residual
// itself); every operand with unit inner stride. Returns false where this build has no direct call or the operands
// do not fit it: the caller runs ATen's ops.
bool dense(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& out, const Activation* act,
           const at::Tensor& residual);

// Attention without autograd of query rows q [n, nh * dh] over one sequence's keys and values k, v [T, nh * dh]
// (fp32 or bf16; rows may be strided, as the fused projections' columns are) with the additive mask `mask_bias`
// [T], or [n, T] where each query has its own (causal attention) (fp32, contiguous; undefined: none): ctx [n, nh * dh]
// = softmax(q k^T * scale + mask) v per head, read and written in place (no head-major copies): scores and softmax in
// fp32 (the scale and mask fused into the first GEMM), the probabilities then in the values' dtype. Returns false where
// this build has no direct call or the operands do not fit (then nothing is written).
bool attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, float scale,
            const at::Tensor& mask_bias, at::Tensor& ctx);

// c = (a b) * scale + add, batched over the leading dims: a [..., M, K], b [..., K, N], c [..., M, N], any strides
// (views of the rows in place), a and b of one dtype (fp32 or bf16), c fp32 or that dtype, `add` (fp32, optional)
// broadcast to c's shape. Returns false where this build has no direct call or the operands do not fit.
bool matmul(const at::Tensor& a, const at::Tensor& b, at::Tensor& c, float scale = 1.f, const at::Tensor& add = {});

// LayerNorm of each row of x [M, N] (fp32, unit inner stride) with weight and bias [N] (fp32) into out [M, N] (fp32,
// may be x). Returns false where this build has no direct call or the operands do not fit.
bool layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, at::Tensor& out);

// Softmax (or log-softmax with `log`) of each row of x [N, V] (fp32 or bf16, unit inner stride), times `scale`,
// into out [N, V] (fp32 or bf16, contiguous), computed in fp32. Returns false where this build has no direct call or
// the operands do not fit (then nothing is written).
bool softmax_rows(const at::Tensor& x, at::Tensor& out, bool log, float scale = 1.f);

}  // namespace onednn
}  // namespace petcore
