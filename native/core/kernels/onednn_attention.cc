#include "kernels/onednn_attention.h"

#include <stdexcept>

#include <torch/torch.h>

#include "kernels/onednn_primitives.h"

namespace petcore {
namespace {

// Heads of block `block` of the rows, no copy: rows [B * T, W] whose columns [block * H, (block + 1) * H) hold nh
// heads of dh -> [B, nh, T, dh], or its transpose [B, nh, dh, T].
at::Tensor heads(const at::Tensor& rows, int64_t B, int64_t nh, int64_t dh, int64_t block, bool transposed = false) {
  const int64_t T = rows.size(0) / B, H = nh * dh;
  const at::Tensor h = rows.narrow(1, block * H, H).view({B, T, nh, dh});
  return transposed ? h.permute({0, 2, 3, 1}) : h.permute({0, 2, 1, 3});
}

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("oneDNN attention: ") + what);
}

struct Attention : public torch::autograd::Function<Attention> {
  // factor: what the scores are multiplied by (1 when the queries come pre-scaled).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv, const at::Tensor& mask_bias,
                            int64_t nh, double factor, double p, bool train) {
    const int64_t B = mask_bias.size(0), T = mask_bias.size(-1), H = qkv.size(1) / 3, dh = H / nh;
    // probabilities [B, nh, T, T] fp32: q k^T * factor + mask, then softmax in place
    at::Tensor probs = at::empty({B, nh, T, T}, qkv.options().dtype(at::kFloat));
    check(onednn::matmul(heads(qkv, B, nh, dh, 0), heads(qkv, B, nh, dh, 1, true), probs, static_cast<float>(factor),
                         mask_bias),
          "scores");
    at::Tensor flat = probs.view({B * nh * T, T});
    check(onednn::softmax_rows(flat, flat, false), "softmax");
    at::Tensor mask = train && p > 0 ? dropout_mask(probs, p) : at::Tensor();
    const at::Tensor dropped = mask.defined() ? probs * mask : probs;
    const at::Tensor used = dropped.to(qkv.scalar_type());  // what multiplies the values
    at::Tensor out = at::empty({B * T, H}, qkv.options());
    at::Tensor out_heads = heads(out, B, nh, dh, 0);
    check(onednn::matmul(used, heads(qkv, B, nh, dh, 2), out_heads), "context");
    ctx->save_for_backward({qkv, probs, mask.defined() ? mask : at::Tensor(), used});
    ctx->saved_data["nh"] = nh;
    ctx->saved_data["factor"] = factor;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &qkv = saved[0], &probs = saved[1], &mask = saved[2], &used = saved[3];
    const int64_t nh = ctx->saved_data["nh"].toInt();
    const double factor = ctx->saved_data["factor"].toDouble();
    const int64_t B = probs.size(0), T = probs.size(2), H = qkv.size(1) / 3, dh = H / nh;
    const at::Tensor dout = grads[0].to(qkv.scalar_type()).contiguous();
    const at::Tensor dout_heads = heads(dout, B, nh, dh, 0);
    at::Tensor dqkv = at::empty_like(qkv, at::MemoryFormat::Contiguous);
    // values: dV = P^T dOut
    at::Tensor dv = heads(dqkv, B, nh, dh, 2);
    check(onednn::matmul(used.transpose(-1, -2), dout_heads, dv), "values' gradient");
    // probabilities: dP = dOut V^T (fp32), through the dropout mask, then softmax's backward
    at::Tensor dprobs = at::empty({B, nh, T, T}, probs.options());
    check(onednn::matmul(dout_heads, heads(qkv, B, nh, dh, 2, true), dprobs), "probabilities' gradient");
    if (mask.defined()) dprobs.mul_(mask);
    // in place: each row's dot product is read before the row is written
    at::_softmax_backward_data_out(dprobs, dprobs, probs, -1, at::kFloat);
    if (factor != 1) dprobs.mul_(factor);
    const at::Tensor ds = dprobs.to(qkv.scalar_type());
    // queries: dQ = dS K; keys: dK = dS^T Q
    at::Tensor dq = heads(dqkv, B, nh, dh, 0), dk = heads(dqkv, B, nh, dh, 1);
    check(onednn::matmul(ds, heads(qkv, B, nh, dh, 1), dq), "queries' gradient");
    check(onednn::matmul(ds.transpose(-1, -2), heads(qkv, B, nh, dh, 0), dk), "keys' gradient");
    return {dqkv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor onednn_attention(const BertConfig& c, const LayerOperands& w, const at::Tensor& qkv,
                            const at::Tensor& mask_bias, bool train) {
  if (!w.onednn || !onednn::compiled() || !qkv.device().is_cpu() || qkv.dim() != 2 || !qkv.is_contiguous() ||
      (qkv.scalar_type() != at::kFloat && qkv.scalar_type() != at::kBFloat16) || mask_bias.dim() != 4 ||
      !mask_bias.is_contiguous() || mask_bias.scalar_type() != at::kFloat)
    return {};
  const int64_t H = c.hidden_size, nh = c.num_attention_heads;
  if (qkv.size(1) != 3 * H || qkv.size(0) != mask_bias.size(0) * mask_bias.size(-1) || qkv.size(0) == 0) return {};
  float factor;
  if (!exact_score_factor(c, w, &factor)) return {};
  try {
    return Attention::apply(qkv, mask_bias, nh, factor, c.attention_probs_dropout_prob, train);
  } catch (const std::runtime_error&) {
    return {};  // oneDNN has no implementation for these operands: LibTorch's ops
  }
}

}  // namespace petcore
