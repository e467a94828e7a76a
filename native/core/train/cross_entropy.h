// Cross-entropy over the vocabulary ([MASK] and MLM rows x ~20k columns): the largest element-wise work of a
// training step. LibTorch's log_softmax + nll_loss pass over the logits six times (a cast to fp32, the log-softmax
// and its backward, a zeroed one-hot gradient, a cast back for bf16 GEMMs); here oneDNN's softmax reads the logits
// in their own dtype once in forward (the loss needs only each row's log-normaliser and target) and once in backward
// (softmax - one-hot, written in the logits' dtype).
#pragma once
#include <ATen/ATen.h>

namespace petcore {

// Mean over the rows of -log softmax(logits)[target], fp32, autograd-capable. logits [N, V] fp32 or bf16, targets
// [N] int64 in [0, V). Where oneDNN is not called directly (other builds, other devices), LibTorch's ops in fp32.
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace petcore
