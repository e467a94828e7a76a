#include "train/cross_entropy.h"

#include <torch/torch.h>

#include "kernels/onednn_primitives.h"

namespace petcore {
namespace {

// The rows' log-softmax at their targets: -(mean) is the loss. Undefined where oneDNN cannot run it.
at::Tensor target_log_probs(const at::Tensor& logits, const at::Tensor& targets) {
  at::Tensor logp = at::empty(logits.sizes(), logits.options().dtype(at::kFloat));
  if (!onednn::softmax_rows(logits, logp, /*log=*/true)) return {};
  return logp.gather(1, targets.unsqueeze(1)).squeeze(1);
}

struct CrossEntropy : public torch::autograd::Function<CrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            const at::Tensor& picked) {
    ctx->save_for_backward({logits, targets});
    return -picked.mean();
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& logits = saved[0];
    const at::Tensor& targets = saved[1];
    // d loss / d logits = (softmax - one-hot) * g / N
    const float scale = grads[0].item<float>() / static_cast<float>(logits.size(0));
    at::Tensor g = at::empty(logits.sizes(), logits.options());
    if (!onednn::softmax_rows(logits, g, /*log=*/false, scale))
      g = at::softmax(logits, 1, at::kFloat).mul_(scale).to(logits.scalar_type());
    g.scatter_add_(1, targets.unsqueeze(1), at::full({logits.size(0), 1}, -scale, g.options()));
    return {g, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  if (logits.device().is_cpu() && logits.dim() == 2 && logits.size(0) > 0 && logits.stride(1) == 1 &&
      (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kBFloat16)) {
    at::Tensor picked;
    {
      at::NoGradGuard no_grad;
      picked = target_log_probs(logits, targets);
    }
    if (picked.defined()) return CrossEntropy::apply(logits, targets, picked);
  }
  return at::nll_loss(at::log_softmax(logits.to(at::kFloat), 1), targets);
}

}  // namespace petcore
