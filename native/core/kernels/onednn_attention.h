// Attention under autograd on the CPU through oneDNN (training): Q, K and V read in place from the fused
// projections' rows, the scale and padding mask fused into the QK^T product, the context written in place into its
// rows, and a backward of four oneDNN matmuls that write the projections' gradient in place. LibTorch's path for the
// same (head-major copies, batched GEMMs that OpenBLAS runs at a third of its rate on 128 x 128 x 64 blocks, a mask
// add, a cast of the scores) took about a quarter of an fp32 training step. The softmax and its backward stay in fp32.
#pragma once
#include <ATen/ATen.h>

#include "model/config.h"
#include "model/encoder_layer.h"

namespace petcore {

// Context [B * T, H] (qkv's dtype) of the rows qkv [B * T, 3H] (queries | keys | values, fp32 or bf16, the padded
// layout) under mask_bias [B, 1, 1, T], with dropout on the probabilities when train; autograd-capable with respect
// to qkv. Undefined where oneDNN is not called directly or the operands do not fit: the caller runs layer::attend.
at::Tensor onednn_attention(const BertConfig& c, const LayerOperands& w, const at::Tensor& qkv,
                            const at::Tensor& mask_bias, bool train);

}  // namespace petcore
