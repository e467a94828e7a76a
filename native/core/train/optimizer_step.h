// The optimizer step without a kernel per tensor: on CUDA (LibTorch >= 2.1) AdamW runs PyTorch's fused multi-tensor
// kernel and gradient clipping its foreach norm/scale, where the per-tensor loops of torch::optim::AdamW and
// torch::nn::utils::clip_grad_norm_ would launch ~10 kernels per parameter tensor (~2,000 a step for a bert-base),
// which is what bounds a training step on a GPU; on the CPU AdamW is one pass over each tensor (LibTorch's makes ~10).
#pragma once
#include <map>
#include <vector>

#include <torch/torch.h>

namespace petcore {

// Whether this build has fused paths on `device`: on the CPU our own one-pass loop (any LibTorch; the same formula
// as torch::optim::AdamW, rounding may differ in the last bit), on CUDA PyTorch's kernel (LibTorch >= 2.1). Each
// trainer takes them unless its OptimConfig says fused_adamw = false (LibTorch's per-tensor AdamW and clipping).
bool fused_optimizer_available(const at::Device& device);

// torch::optim::AdamW with the same options, state and archive format (a checkpoint written by either loads into
// the other); step() is one fused kernel per parameter group where `fused` and fused_optimizer_available(), else
// torch::optim::AdamW's own step.
class FusedAdamW : public torch::optim::AdamW {
 public:
  FusedAdamW(const std::vector<torch::optim::OptimizerParamGroup>& groups, const torch::optim::AdamWOptions& defaults,
             bool fused = true);
  torch::Tensor step(LossClosure closure = nullptr) override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  bool fused_step();
  bool fused_;
  // Per parameter: its step count as the float tensor on the device that the fused kernel reads, and the host count
  // it mirrors (AdamWParamState::step stays the authority that save() writes).
  struct DeviceStep {
    at::Tensor value;
    int64_t mirrors = -1;
  };
  std::map<const void*, DeviceStep> device_steps_;
};

// Scales the gradients of `params` so that their global L2 norm is at most max_norm; returns that norm (before
// scaling) as a 0-dim tensor on the gradients' device, without waiting for the device (foreach kernels where `fused`
// and the build has them, else torch::nn::utils::clip_grad_norm_).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm, bool fused = true);

}  // namespace petcore
