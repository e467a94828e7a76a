#include "train/optimizer_step.h"

#include <sstream>
#include <string>
#include <type_traits>

#include <ATen/Parallel.h>

#include <torch/version.h>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define PET_MLM_HAVE_FUSED_ADAMW 1
#else
#define PET_MLM_HAVE_FUSED_ADAMW 0
#endif

namespace petcore {

bool fused_optimizer_available(const at::Device& device) {
  if (device.is_cpu()) return true;  // our own loop (adamw_cpu)
#if PET_MLM_HAVE_FUSED_ADAMW
  return device.is_cuda();
#else
  return false;
#endif
}

namespace {

// Gradients the fused paths take: dense fp32, all on one device where the fused paths are on (on the CPU, of
// contiguous parameters: the one-pass loop walks their memory).
bool fusable(const std::vector<at::Tensor>& params, bool fused) {
  if (!fused) return false;
  bool any = false;
  at::Device device(at::kCPU);
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (!any) device = p.device();
    any = true;
    if (p.device() != device || g.device() != device || p.scalar_type() != at::kFloat ||
        g.scalar_type() != at::kFloat || g.is_sparse() || p.sizes() != g.sizes() || (p.is_cpu() && !p.is_contiguous()))
      return false;
  }
  return any && fused_optimizer_available(device);
}

// One AdamW step of one CPU tensor in a single pass over its elements (LibTorch's AdamW makes ~10 passes: for a
// word-embedding matrix of 21k x 256 that was ~40 ms of a 600 ms training step). The arithmetic of
// torch::optim::AdamW, element by element in fp32: decay, moments, bias-corrected denominator, update.
void adamw_cpu(at::Tensor& p, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, int64_t step,
               const torch::optim::AdamWOptions& o) {
  const at::Tensor g = grad.contiguous();
  const double b1 = std::get<0>(o.betas()), b2 = std::get<1>(o.betas());
  const float decay = static_cast<float>(1 - o.lr() * o.weight_decay());
  const float beta1 = static_cast<float>(b1), beta2 = static_cast<float>(b2);
  const float one_minus_b1 = static_cast<float>(1 - b1), one_minus_b2 = static_cast<float>(1 - b2);
  const float step_size = static_cast<float>(o.lr() / (1 - std::pow(b1, static_cast<double>(step))));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(b2, static_cast<double>(step))));
  const float eps = static_cast<float>(o.eps());
  float* P = p.data_ptr<float>();
  float* M = exp_avg.data_ptr<float>();
  float* V = exp_avg_sq.data_ptr<float>();
  const float* G = g.data_ptr<float>();
  at::parallel_for(0, p.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float gi = G[i];
      const float m = M[i] * beta1 + one_minus_b1 * gi;
      const float v = V[i] * beta2 + one_minus_b2 * gi * gi;
      M[i] = m;
      V[i] = v;
      P[i] = P[i] * decay - step_size * (m / (std::sqrt(v) / bc2_sqrt + eps));
    }
  });
  // Written through raw pointers: bump the version counters as an in-place op would, or caches keyed by them (the
  // model's bf16 operand copies) would keep the old weights.
  for (at::Tensor* t : {&p, &exp_avg, &exp_avg_sq}) t->unsafeGetTensorImpl()->bump_version();
}

// The optimizer's state map is keyed by the parameter's TensorImpl: as a pointer in newer LibTorch, as its printed
// address in older ones. Build whichever the headers declare, exactly as torch::optim::AdamW does.
template <typename Map>
typename Map::key_type state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace

FusedAdamW::FusedAdamW(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                       const torch::optim::AdamWOptions& defaults, bool fused)
    : torch::optim::AdamW(groups, defaults), fused_(fused) {}

void FusedAdamW::load(torch::serialize::InputArchive& archive) {
  torch::optim::AdamW::load(archive);
  device_steps_.clear();  // the loaded step counts are re-read from the state at the next step
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (!closure && fused_step()) return {};
  return torch::optim::AdamW::step(closure);
}

bool FusedAdamW::fused_step() {
  std::vector<at::Tensor> all;
  for (auto& group : param_groups_) {
    if (static_cast<torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
    all.insert(all.end(), group.params().begin(), group.params().end());
  }
  if (!fusable(all, fused_)) return false;
  at::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = state_key<decltype(state_)>(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      if (p.device().is_cpu()) {  // (fusable: p is contiguous; the loop also needs its state so)
        if (!st.exp_avg().is_contiguous()) st.exp_avg(st.exp_avg().contiguous());
        if (!st.exp_avg_sq().is_contiguous()) st.exp_avg_sq(st.exp_avg_sq().contiguous());
        st.step(st.step() + 1);
        at::Tensor exp_avg = st.exp_avg(), exp_avg_sq = st.exp_avg_sq();
        adamw_cpu(p, p.grad(), exp_avg, exp_avg_sq, st.step(), o);
        continue;
      }
#if PET_MLM_HAVE_FUSED_ADAMW
      DeviceStep& ds = device_steps_[p.unsafeGetTensorImpl()];
      if (!ds.value.defined() || ds.mirrors != st.step() || ds.value.device() != p.device())
        ds.value = at::full({}, static_cast<double>(st.step()), p.options().dtype(at::kFloat));
      st.step(st.step() + 1);
      ds.mirrors = st.step();
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(st.exp_avg());
      exp_avg_sqs.push_back(st.exp_avg_sq());
      steps.push_back(ds.value);
#endif
    }
    if (params.empty()) continue;
#if PET_MLM_HAVE_FUSED_ADAMW
    at::_foreach_add_(steps, 1);  // as torch.optim's fused path: the kernel reads the incremented count
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, o.lr(), std::get<0>(o.betas()),
                      std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
#endif
  }
  return true;
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm, bool fused) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return at::zeros({}, at::kDouble);
#if PET_MLM_HAVE_FUSED_ADAMW
  if (fusable(params, fused)) {
    // torch.nn.utils.clip_grad_norm_'s foreach form: two multi-tensor kernels and no host round trip.
    at::Tensor total = at::stack(at::_foreach_norm(grads, 2)).norm(2);
    if (max_norm > 0) at::_foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_max(1.0));
    return total;
  }
#endif
  if (max_norm > 0) return at::scalar_tensor(torch::nn::utils::clip_grad_norm_(params, max_norm), at::kDouble);
  at::Tensor sq = at::zeros({}, grads[0].options().dtype(at::kDouble));
  for (const auto& g : grads) sq = sq + g.pow(2).sum().to(at::kDouble);
  return sq.sqrt();
}

}  // namespace petcore
