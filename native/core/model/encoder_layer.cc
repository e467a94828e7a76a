#include "model/encoder_layer.h"

#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/version.h>

#include "kernels/onednn_attention.h"
#include "kernels/onednn_primitives.h"

namespace petcore {
namespace {

// a + b, in place into a where no autograd graph is being recorded.
at::Tensor plus(const at::Tensor& a, const at::Tensor& b) { return at::GradMode::is_enabled() ? a + b : a.add_(b); }

at::Tensor to_float(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }

uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The i-th 32-bit draw of the stream: one half of the hash of i / 2.
inline uint32_t draw(uint64_t seed, uint64_t i) {
  const uint64_t h = splitmix64(seed + 0x9e3779b97f4a7c15ULL * ((i >> 1) + 1));
  return static_cast<uint32_t>((i & 1) ? h >> 32 : h);
}

// mask[i] = scale where the i-th 32-bit draw is >= threshold, else 0 (two draws per hash).
template <typename T>
void fill_dropout_mask(T* mask, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  const T keep = static_cast<T>(scale), drop = static_cast<T>(0.f);
  at::parallel_for(0, (n + 1) / 2, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const uint64_t h = splitmix64(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(k + 1));
      mask[2 * k] = static_cast<uint32_t>(h) >= threshold ? keep : drop;
      if (2 * k + 1 < n) mask[2 * k + 1] = static_cast<uint32_t>(h >> 32) >= threshold ? keep : drop;
    }
  });
}

// The same for packed rows: row i of mask [rows, width] takes the draws of row rows[i] of the padded tensor.
template <typename T>
void fill_dropout_mask_rows(T* mask, const int64_t* rows, int64_t n_rows, int64_t width, uint64_t seed,
                            uint32_t threshold, float scale) {
  const T keep = static_cast<T>(scale), drop = static_cast<T>(0.f);
  at::parallel_for(0, n_rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(width, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint64_t base = static_cast<uint64_t>(rows[i]) * static_cast<uint64_t>(width);
      for (int64_t c = 0; c < width; ++c) mask[i * width + c] = draw(seed, base + c) >= threshold ? keep : drop;
    }
  });
}

// sqrt(head_dim) is a power of two: multiplying by its inverse equals dividing by it.
bool power_of_two_sqrt(int64_t head_dim) {
  const double scale = std::sqrt(static_cast<double>(head_dim));
  return std::exp2(std::round(std::log2(scale))) == scale;
}

}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  throw std::invalid_argument("precision must be 'fp32' or 'bf16', got '" + name + "'");
}

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

at::Tensor dropout_mask(const at::Tensor& x, double p, const at::Tensor& rows) {
  const at::ScalarType t = x.scalar_type();
  if (rows.defined() &&
      (x.dim() != 2 || rows.dim() != 1 || rows.size(0) != x.size(0) || rows.scalar_type() != at::kLong))
    throw std::invalid_argument("dropout: packed rows must index the rows of a 2-D tensor");
  uint64_t seed;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = gen.get<at::CPUGeneratorImpl>()->random64();
  }
  const uint32_t threshold = static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  at::Tensor mask = at::empty(x.sizes(), x.options().requires_grad(false));
  if (rows.defined()) {
    const at::Tensor r = rows.contiguous();
    if (t == at::kFloat)
      fill_dropout_mask_rows(mask.data_ptr<float>(), r.data_ptr<int64_t>(), x.size(0), x.size(1), seed, threshold,
                             scale);
    else
      fill_dropout_mask_rows(mask.data_ptr<at::BFloat16>(), r.data_ptr<int64_t>(), x.size(0), x.size(1), seed,
                             threshold, scale);
  } else if (t == at::kFloat) {
    fill_dropout_mask(mask.data_ptr<float>(), mask.numel(), seed, threshold, scale);
  } else {
    fill_dropout_mask(mask.data_ptr<at::BFloat16>(), mask.numel(), seed, threshold, scale);
  }
  return mask;
}

at::Tensor apply_dropout(const at::Tensor& x, double p, bool train, const at::Tensor& rows) {
  if (!train || p <= 0) return x;
  const at::ScalarType t = x.scalar_type();
  if (!x.device().is_cpu() || p >= 1 || (t != at::kFloat && t != at::kBFloat16)) return at::dropout(x, p, train);
  return x * dropout_mask(x, p, rows);
}

at::Tensor activation(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::Gelu: return at::gelu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::Relu: return at::relu(x);
  }
  return x;
}

at::Tensor& activation_(at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::Gelu: return at::gelu_(x);
    case Activation::GeluTanh: return at::gelu_(x, "tanh");
    case Activation::Relu: return at::relu_(x);
  }
  return x;
}

bool fused_attention(const at::Device& device) {
#if TORCH_VERSION_MAJOR >= 2
  return !device.is_cpu();
#else
  return false;
#endif
}

LayerOperands make_operands(const LayerWeights& w, const BertConfig& c, Precision p, bool fused) {
  LayerOperands o;
  o.dtype = p == Precision::Bf16 ? at::kBFloat16 : at::kFloat;
  auto gemm = [&](const at::Tensor& t) { return t.to(o.dtype); };
  const double scale = std::sqrt(static_cast<double>(c.head_dim()));
  o.queries_scaled = !fused && power_of_two_sqrt(c.head_dim());
  const at::Tensor qw = o.queries_scaled ? w.query_w / scale : w.query_w;
  const at::Tensor qb = o.queries_scaled ? w.query_b / scale : w.query_b;
  o.qkv_w = gemm(at::cat({qw, w.key_w, w.value_w}, 0));
  o.qkv_b = gemm(at::cat({qb, w.key_b, w.value_b}, 0));
  o.attn_out_w = gemm(w.attn_out_w);
  o.attn_out_b = gemm(w.attn_out_b);
  o.inter_w = gemm(w.inter_w);
  o.inter_b = gemm(w.inter_b);
  o.out_w = gemm(w.out_w);
  o.out_b = gemm(w.out_b);
  o.attn_ln_w = w.attn_ln_w;
  o.attn_ln_b = w.attn_ln_b;
  o.out_ln_w = w.out_ln_w;
  o.out_ln_b = w.out_ln_b;
  return o;
}

bool exact_score_factor(const BertConfig& c, const LayerOperands& w, float* factor) {
  if (w.queries_scaled) return *factor = 1.f, true;
  if (!power_of_two_sqrt(c.head_dim())) return false;
  *factor = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim())));
  return true;
}

at::Tensor attention_mask_bias(const at::Tensor& attention_mask) {
  const at::Tensor keep = attention_mask.to(at::kFloat).unsqueeze(1).unsqueeze(2);
  return (1.0 - keep) * std::numeric_limits<float>::lowest();
}

at::Tensor attention_bias(const BertConfig& c, const at::Tensor& attention_mask, const at::Tensor& branch_ids) {
  if (!c.causal && !branch_ids.defined()) return attention_mask_bias(attention_mask);
  const int64_t T = attention_mask.size(1);
  at::Tensor allowed = attention_mask.ne(0).unsqueeze(1).unsqueeze(2);  // [B, 1, 1, T]: the key is a token
  if (c.causal) allowed = allowed.logical_and(at::ones({T, T}, allowed.options()).tril().view({1, 1, T, T}));
  if (branch_ids.defined()) {
    const at::Tensor key = branch_ids.unsqueeze(1).unsqueeze(2), query = branch_ids.unsqueeze(1).unsqueeze(3);
    allowed = allowed.logical_and(key.eq(0).logical_or(key.eq(query)));
  }
  allowed = allowed.expand({attention_mask.size(0), 1, T, T});
  return at::zeros(allowed.sizes(), attention_mask.options().dtype(at::kFloat))
      .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
}

at::Tensor query_bias(const at::Tensor& bias, int64_t bi, int64_t col, int64_t n) {
  const at::Tensor seq = bias.narrow(0, bi, 1);
  return seq.size(2) == 1 ? seq : seq.narrow(2, col, n);
}

std::vector<bool> unpadded(const at::Tensor& attention_mask) {
  const at::Tensor all = attention_mask.eq(1).all(1).to(at::kCPU);
  const bool* p = all.data_ptr<bool>();
  return std::vector<bool>(p, p + all.numel());
}

at::Tensor packed_rows(const at::Tensor& attention_mask, int64_t multiple) {
  const at::Tensor flat = attention_mask.reshape({-1});
  at::Tensor rows = flat.nonzero().squeeze(1);
  const int64_t n = rows.size(0), total = flat.numel();
  if (n == 0 || n * 20 >= total * 19) return {};
  const int64_t want = std::min(total, (n + multiple - 1) / multiple * multiple);
  if (want > n) {
    // Some padded rows too, up to a multiple: fewer distinct GEMM shapes (each new one costs oneDNN a primitive).
    const at::Tensor pads = flat.eq(0).nonzero().squeeze(1).narrow(0, 0, want - n);
    rows = std::get<0>(at::sort(at::cat({rows, pads})));
  }
  return rows;
}

namespace layer {

at::Tensor dense(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor out, bool onednn) {
  const at::Tensor in = x.scalar_type() == w.scalar_type() ? x : x.to(w.scalar_type());
  if (onednn && !at::GradMode::is_enabled()) {
    at::Tensor o = out.defined() ? out : at::empty({in.size(0), w.size(0)}, in.options());
    if (onednn::dense(in, w, b, o, nullptr, {})) return o;
  }
  if (out.defined()) return at::addmm_out(out, b, in, w.t());
  return at::addmm(b, in, w.t());
}

at::Tensor dense_epilogue(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const Activation* act,
                          const at::Tensor& residual, bool onednn) {
  const at::Tensor in = x.scalar_type() == w.scalar_type() ? x : x.to(w.scalar_type());
  if (onednn) {
    at::Tensor out =
        at::empty({in.size(0), w.size(0)}, in.options().dtype(residual.defined() ? at::kFloat : w.scalar_type()));
    if (onednn::dense(in, w, b, out, act, residual)) return out;
  }
  at::Tensor y = dense(in, w, b, {}, false);
  if (residual.defined()) y = to_float(y).add_(residual);
  if (act) activation_(y, *act);
  return y;
}

at::Tensor layer_norm_(at::Tensor y, const at::Tensor& g, const at::Tensor& b, double eps, bool onednn) {
  const int64_t H = y.size(-1);
  at::Tensor rows = y.view({-1, H});
  if (onednn && onednn::layer_norm(rows, g, b, eps, rows)) return y;
  return at::layer_norm(y, {H}, g, b, eps);
}

at::Tensor layer_norm(const at::Tensor& y, const at::Tensor& g, const at::Tensor& b, double eps, bool onednn) {
  const int64_t H = y.size(-1);
  if (onednn && !at::GradMode::is_enabled() && y.is_contiguous()) {
    at::Tensor out = at::empty_like(y);
    at::Tensor out_rows = out.view({-1, H});
    if (onednn::layer_norm(y.view({-1, H}), g, b, eps, out_rows)) return out;
  }
  return at::layer_norm(y, {H}, g, b, eps);
}

at::Tensor input_norm(const BertConfig& c, const LayerOperands& w, const at::Tensor& x) {
  return c.pre_norm ? layer_norm(x, w.attn_ln_w, w.attn_ln_b, c.layer_norm_eps, w.onednn) : x;
}

at::Tensor project(const LayerOperands& w, const at::Tensor& x, int64_t first, int64_t blocks, const at::Tensor& out) {
  const int64_t H = x.size(-1);
  if (first == 0 && blocks == 3) return dense(x, w.qkv_w, w.qkv_b, out, w.onednn);
  return dense(x, w.qkv_w.narrow(0, first * H, blocks * H), w.qkv_b.narrow(0, first * H, blocks * H), out, w.onednn);
}

at::Tensor attend_heads(const BertConfig& c, const LayerOperands& w, const at::Tensor& qh, const at::Tensor& kh,
                        const at::Tensor& vh, const at::Tensor& mask_bias, bool train) {
  const int64_t dh = c.head_dim();
  const double p = train ? c.attention_probs_dropout_prob : 0.0;
#if TORCH_VERSION_MAJOR >= 2
  if (!w.queries_scaled && fused_attention(qh.device()))  // flash / memory-efficient kernels on CUDA
    return at::scaled_dot_product_attention(qh, kh, vh, mask_bias.to(qh.scalar_type()), p, false);
#endif
  // Without autograd the scores are scaled, masked and normalised in place (no tensor per step).
  const bool in_place = !at::GradMode::is_enabled();
  at::Tensor scores = to_float(at::matmul(qh, kh.transpose(-1, -2)));  // [B, nh, n, T]
  if (!w.queries_scaled) {
    const double scale = std::sqrt(static_cast<double>(dh));
    scores = in_place ? scores.div_(scale) : scores / scale;
  }
  scores = plus(scores, mask_bias);
  // softmax in fp32 whatever the GEMMs ran in
  at::Tensor probs = in_place ? at::softmax_out(scores, scores, -1) : at::softmax(scores, -1);
  probs = apply_dropout(probs, p, train);
  return at::matmul(probs.to(vh.scalar_type()), vh);  // [B, nh, n, dh]
}

bool attend_in_place(const BertConfig& c, const LayerOperands& w, const at::Tensor& q, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& mask_bias, at::Tensor out) {
  float factor;
  if (at::GradMode::is_enabled() || !w.onednn || !exact_score_factor(c, w, &factor)) return false;
  return onednn::attend(q, k, v, c.num_attention_heads, factor,
                        mask_bias.defined() ? mask_bias.reshape({-1}) : at::Tensor(), out);
}

at::Tensor attend(const BertConfig& c, const LayerOperands& w, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const at::Tensor& mask_bias, bool train, at::Tensor out) {
  const int64_t B = q.size(0), n = q.size(1), T = k.size(1), H = c.hidden_size;
  const int64_t nh = c.num_attention_heads, dh = c.head_dim();
  auto heads = [&](const at::Tensor& t, int64_t len) { return t.view({B, len, nh, dh}).transpose(1, 2); };
  const at::Tensor ctx = attend_heads(c, w, heads(q, n), heads(k, T), heads(v, T), mask_bias, train);
  if (out.defined()) {
    out.view({B, n, nh, dh}).copy_(ctx.transpose(1, 2));
    return out;
  }
  return ctx.transpose(1, 2).reshape({B, n, H});
}

namespace {

// Residual sum in fp32: float(a) + x (a mixed-dtype add, fp32 + bf16 in one op, would take TensorIterator's
// element-wise casting loop: slower than converting first).
at::Tensor residual_sum(const BertConfig& c, const at::Tensor& a, const at::Tensor& r, bool train,
                        const at::Tensor& rows) {
  return plus(apply_dropout(to_float(a), c.hidden_dropout_prob, train, rows), r);
}

// finish() of a pre-LayerNorm layer: h = x + attention output; h + feed-forward(LayerNorm(h)).
at::Tensor finish_pre_norm(const BertConfig& c, const LayerOperands& w, const at::Tensor& ctx, const at::Tensor& x,
                           bool train, const at::Tensor& rows) {
  if (!train && !at::GradMode::is_enabled()) {
    // Without autograd or dropout: each dense step with its epilogue (residual sum, activation) in one call.
    const at::Tensor h = dense_epilogue(ctx, w.attn_out_w, w.attn_out_b, nullptr, x, w.onednn);
    const at::Tensor f = dense_epilogue(layer_norm(h, w.out_ln_w, w.out_ln_b, c.layer_norm_eps, w.onednn), w.inter_w,
                                        w.inter_b, &c.hidden_act, {}, w.onednn);
    return dense_epilogue(f, w.out_w, w.out_b, nullptr, h, w.onednn);
  }
  const at::Tensor h = residual_sum(c, dense(ctx, w.attn_out_w, w.attn_out_b), x, train, rows);
  const at::Tensor m = at::layer_norm(h, {c.hidden_size}, w.out_ln_w, w.out_ln_b, c.layer_norm_eps);
  const at::Tensor f = activation(dense(m, w.inter_w, w.inter_b), c.hidden_act);
  return residual_sum(c, dense(f, w.out_w, w.out_b), h, train, rows);
}

}  // namespace

at::Tensor finish(const BertConfig& c, const LayerOperands& w, const at::Tensor& ctx, const at::Tensor& x, bool train,
                  const at::Tensor& rows) {
  const int64_t H = c.hidden_size;
  if (c.pre_norm) return finish_pre_norm(c, w, ctx, x, train, rows);
  if (!train && !at::GradMode::is_enabled()) {
    // Without autograd or dropout: each dense step with its epilogue (residual sum in fp32, activation) in one call,
    // each LayerNorm in place (oneDNN's where the kernels are, ~3x ATen's on these rows).
    auto norm = [&](const at::Tensor& y, const at::Tensor& g, const at::Tensor& b) {
      return layer_norm_(y, g, b, c.layer_norm_eps, w.onednn);
    };
    const at::Tensor h =
        norm(dense_epilogue(ctx, w.attn_out_w, w.attn_out_b, nullptr, x, w.onednn), w.attn_ln_w, w.attn_ln_b);
    const at::Tensor f = dense_epilogue(h, w.inter_w, w.inter_b, &c.hidden_act, {}, w.onednn);
    return norm(dense_epilogue(f, w.out_w, w.out_b, nullptr, h, w.onednn), w.out_ln_w, w.out_ln_b);
  }
  auto residual = [&](const at::Tensor& a, const at::Tensor& r) { return residual_sum(c, a, r, train, rows); };
  const at::Tensor h = at::layer_norm(residual(dense(ctx, w.attn_out_w, w.attn_out_b), x), {H}, w.attn_ln_w,
                                      w.attn_ln_b, c.layer_norm_eps);
  const at::Tensor f = activation(dense(h, w.inter_w, w.inter_b), c.hidden_act);
  return at::layer_norm(residual(dense(f, w.out_w, w.out_b), h), {H}, w.out_ln_w, w.out_ln_b, c.layer_norm_eps);
}

at::Tensor forward(const BertConfig& c, const LayerOperands& w, const at::Tensor& x, const at::Tensor& mask_bias,
                   bool train, const at::Tensor& rows) {
  const int64_t B = mask_bias.size(0), T = mask_bias.size(-1), H = c.hidden_size;
  const bool packed = rows.defined();
  const at::Tensor flat = packed ? x : x.reshape({B * T, H});
  const at::Tensor qkv = project(w, input_norm(c, w, flat));
  // Packed: the real tokens' projections placed into the padded layout for attention (padded keys are masked out,
  // padded queries' results dropped), the context taken back at those rows.
  // (index_copy_ into the zeros, not index_copy: that would copy the zeros first)
  const at::Tensor all = packed ? at::zeros({B * T, 3 * H}, qkv.options()).index_copy_(0, rows, qkv) : qkv;
  at::Tensor ctx = onednn_attention(c, w, all, mask_bias, train);
  if (!ctx.defined()) {
    // split, not narrow: under autograd narrow's backward writes each part's gradient into a zeroed copy of the
    // whole [B * T, 3H] and sums the three; split's concatenates them.
    const std::vector<at::Tensor> parts = all.split(H, 1);
    auto part = [&](int64_t j) { return parts[j].view({B, T, H}); };
    ctx = attend(c, w, part(0), part(1), part(2), mask_bias, train).reshape({B * T, H});
  }
  if (packed) ctx = ctx.index_select(0, rows);
  const at::Tensor y = finish(c, w, ctx, flat, train, rows);
  return packed ? y : y.view({B, T, H});
}

}  // namespace layer
}  // namespace petcore
