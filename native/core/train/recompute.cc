#include "train/recompute.h"

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace petcore {
namespace {

at::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const at::Tensor& s) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

// Packed rows travel through autograd as a tensor: an empty one stands for none (an undefined tensor cannot).
at::Tensor unpacked(const at::Tensor& rows) { return rows.numel() > 0 ? rows : at::Tensor(); }

struct RecomputedLayer : public torch::autograd::Function<RecomputedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& mask_bias,
                            const at::Tensor& rows, int64_t model, int64_t layer, bool train, int64_t precision) {
    ctx->save_for_backward({x, mask_bias, rows});
    ctx->saved_data["model"] = model;
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["train"] = train;
    ctx->saved_data["precision"] = precision;
    ctx->saved_data["rng"] = cpu_rng_state();
    at::NoGradGuard no_grad;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): saved_data holds IValues, so the model travels as its address.
    return reinterpret_cast<const BertModel*>(model)->layer_forward(layer, x, mask_bias, train,
                                                                    static_cast<Precision>(precision), unpacked(rows));
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the address forward() saved.
    const auto* m = reinterpret_cast<const BertModel*>(ctx->saved_data["model"].toInt());
    at::Tensor x = saved[0].detach().requires_grad_(true);
    const at::Tensor now = cpu_rng_state();
    set_cpu_rng_state(ctx->saved_data["rng"].toTensor());  // the same dropout masks as in forward
    at::Tensor y;
    {
      at::AutoGradMode grad(true);
      y = m->layer_forward(ctx->saved_data["layer"].toInt(), x, saved[1], ctx->saved_data["train"].toBool(),
                           static_cast<Precision>(ctx->saved_data["precision"].toInt()), unpacked(saved[2]));
    }
    set_cpu_rng_state(now);
    // Weight gradients accumulate into the parameters' .grad as usual; the input's gradient is returned.
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor recomputed_layer(const BertModel& m, int64_t i, const at::Tensor& x, const at::Tensor& mask_bias, bool train,
                            Precision precision, const at::Tensor& rows) {
  // The layer's own weights are invisible to the autograd graph here: the input must require grad for backward
  // to reach this function at all (its gradient is then computed and simply not used).
  at::Tensor in = x.requires_grad() ? x : x.detach().requires_grad_(true);
  const at::Tensor packed = rows.defined() ? rows : at::empty({0}, mask_bias.options().dtype(at::kLong));
  return RecomputedLayer::apply(in, mask_bias, packed, reinterpret_cast<int64_t>(&m), i, train,
                                static_cast<int64_t>(precision));
}

}  // namespace petcore
