#include "kernels/onednn_primitives.h"

#include <unordered_map>

#ifdef PET_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace petcore {
namespace onednn {
#ifdef PET_ONEDNN
bool compiled() { return true; }
std::string version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}
bool bf16_kernels() {
  static const bool has = [] {
    try {
      const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
      const dnnl::memory::desc a({8, 8}, dnnl::memory::data_type::bf16, dnnl::memory::format_tag::ab);
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::matmul::primitive_desc pd(eng, a, a, a);
#else
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, a, a), eng);
#endif
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has;
}
#else
bool compiled() { return false; }
std::string version() { return ""; }
bool bf16_kernels() { return false; }
#endif

#ifndef PET_ONEDNN
bool dense(const at::Tensor&, const at::Tensor&, const at::Tensor&, at::Tensor&, const Activation*, const at::Tensor&) {
  return false;
}
bool attend(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, float, const at::Tensor&, at::Tensor&) {
  return false;
}
bool softmax_rows(const at::Tensor&, at::Tensor&, bool, float) { return false; }
bool matmul(const at::Tensor&, const at::Tensor&, at::Tensor&, float, const at::Tensor&) { return false; }
bool layer_norm(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, at::Tensor&) { return false; }
#else
namespace {

using dnnl::memory;

bool data_type(at::ScalarType t, memory::data_type* out) {
  if (t == at::kFloat) return *out = memory::data_type::f32, true;
  if (t == at::kBFloat16) return *out = memory::data_type::bf16, true;
  return false;
}

// A 2-D CPU tensor whose rows may be strided but whose elements within a row are adjacent.
bool rows_ok(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.dim() == 2 && (t.size(1) <= 1 || t.stride(1) == 1) &&
         t.stride(0) >= t.size(1);
}

memory::desc rows_desc(const at::Tensor& t, memory::data_type dt) {
  return memory::desc({t.size(0), t.size(1)}, dt, {t.stride(0), 1});
}

dnnl::algorithm eltwise(Activation a) {
  switch (a) {
    case Activation::Gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
  }
  return dnnl::algorithm::eltwise_relu;
}

// An element-wise post-op (v3 dropped the scale argument).
void append_eltwise(dnnl::post_ops& ops, dnnl::algorithm alg, float alpha) {
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(alg, alpha, 0.f);
#else
  ops.append_eltwise(1.f, alg, alpha, 0.f);
#endif
}

const dnnl::engine& cpu_engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One in-order stream per calling thread (the task pool's threads call concurrently).
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

// Runs a matmul primitive for (src, weights, dst) with `attr`; extra arguments beside them. oneDNN's own primitive
// cache makes making the primitive a look-up after the first call of a shape (~2 us).
void run_matmul(const memory::desc& src, const void* x, const memory::desc& wei, const void* w,
                const memory::desc* bias, const void* b, const memory::desc& dst, void* out,
                const dnnl::primitive_attr& attr, std::unordered_map<int, memory> args = {}) {
  const dnnl::engine& eng = cpu_engine();
  const memory::desc none;
#if DNNL_VERSION_MAJOR >= 3
  const dnnl::matmul::primitive_desc pd(eng, src, wei, bias ? *bias : none, dst, attr);
#else
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, bias ? *bias : none, dst), attr, eng);
#endif
  const dnnl::matmul prim(pd);
  args.emplace(DNNL_ARG_SRC, memory(src, eng, const_cast<void*>(x)));
  args.emplace(DNNL_ARG_WEIGHTS, memory(wei, eng, const_cast<void*>(w)));
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(*bias, eng, const_cast<void*>(b)));
  args.emplace(DNNL_ARG_DST, memory(dst, eng, out));
  prim.execute(cpu_stream(), args);
  cpu_stream().wait();
}

// dst = softmax (or log-softmax) of src over `axis`, src and dst any dtypes oneDNN takes (v1 has one).
void run_softmax(const memory::desc& src, const void* x, const memory::desc& dst, void* out, int axis, bool log) {
  const dnnl::engine& eng = cpu_engine();
  const dnnl::algorithm alg = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
#if DNNL_VERSION_MAJOR >= 3
  using Softmax = dnnl::softmax_forward;
  const Softmax::primitive_desc pd(eng, dnnl::prop_kind::forward_inference, alg, src, dst, axis);
#else
  using Softmax = dnnl::softmax_v2_forward;
  const Softmax::primitive_desc pd(Softmax::desc(dnnl::prop_kind::forward_inference, alg, src, dst, axis), eng);
#endif
  Softmax(pd).execute(cpu_stream(),
                      {{DNNL_ARG_SRC, memory(src, eng, const_cast<void*>(x))}, {DNNL_ARG_DST, memory(dst, eng, out)}});
  cpu_stream().wait();
}

}  // namespace

bool dense(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& out, const Activation* act,
           const at::Tensor& residual) {
  memory::data_type xt, ot;
  if (!rows_ok(x) || !rows_ok(w) || !rows_ok(out) || !b.defined() || b.dim() != 1 || !b.is_contiguous() ||
      !b.device().is_cpu() || w.scalar_type() != x.scalar_type() || b.scalar_type() != x.scalar_type() ||
      !data_type(x.scalar_type(), &xt) || !data_type(out.scalar_type(), &ot))
    return false;
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  if (w.size(1) != K || b.size(0) != N || out.size(0) != M || out.size(1) != N || M == 0) return false;
  if (residual.defined()) {
    if (!rows_ok(residual) || residual.scalar_type() != at::kFloat || ot != memory::data_type::f32 ||
        residual.size(0) != M || residual.size(1) != N)
      return false;
  }
  try {
    // The residual: added as a second source where out is another tensor (no copy into out first), else summed
    // with what out holds.
    dnnl::post_ops ops;
    std::unordered_map<int, memory> args;
    const bool add_source = residual.defined() && !out.is_same(residual);
    if (add_source) {
      const memory::desc rd = rows_desc(residual, memory::data_type::f32);
      ops.append_binary(dnnl::algorithm::binary_add, rd);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                   memory(rd, cpu_engine(), const_cast<void*>(residual.data_ptr())));
    } else if (residual.defined()) {
      ops.append_sum(1.f);
    }
    if (act) append_eltwise(ops, eltwise(*act), 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    // Weights [K, N] read from w [N, K] as its transpose (no copy).
    const memory::desc wei({K, N}, xt, {1, w.stride(0)});
    const memory::desc bias({1, N}, xt, {N, 1});
    const memory::desc src = rows_desc(x, xt), dst = rows_desc(out, ot);
    run_matmul(src, x.data_ptr(), wei, w.data_ptr(), &bias, b.data_ptr(), dst, out.data_ptr(), attr, std::move(args));
  } catch (const dnnl::error&) {
    // No implementation for these operands: ATen's ops.
    return false;
  }
  return true;
}

bool attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, float scale,
            const at::Tensor& mask_bias, at::Tensor& ctx) {
  memory::data_type dt;
  if (!data_type(q.scalar_type(), &dt)) return false;
  for (const at::Tensor* t : {&q, &k, &v, static_cast<const at::Tensor*>(&ctx)})
    if (!rows_ok(*t) || t->scalar_type() != q.scalar_type()) return false;
  const int64_t n = q.size(0), T = k.size(0), H = q.size(1);
  if (heads <= 0 || H % heads != 0 || k.size(1) != H || v.size(0) != T || v.size(1) != H || ctx.size(0) != n ||
      ctx.size(1) != H || n == 0 ||
      (mask_bias.defined() && (mask_bias.scalar_type() != at::kFloat ||
                               (mask_bias.numel() != T && mask_bias.numel() != n * T) || !mask_bias.is_contiguous())))
    return false;
  const int64_t dh = H / heads;
  // Heads of rows [m, H] as views, no copy: [heads, m, dh], or transposed [heads, dh, m].
  auto per_head = [&](const at::Tensor& rows, bool transposed) {
    const at::Tensor h = rows.view({rows.size(0), heads, dh});
    return transposed ? h.permute({1, 2, 0}) : h.permute({1, 0, 2});
  };
  // scores [heads, n, T] (fp32) = q_h k_h^T * scale + mask: matmul() adds each post-op only where needed (with
  // neither, the GEMM runs ~1.5x as fast at these shapes).
  at::Tensor scores = at::empty({heads, n, T}, q.options().dtype(at::kFloat));
  if (!matmul(per_head(q, false), per_head(k, true), scores, scale,
              mask_bias.defined() ? mask_bias.view({1, mask_bias.numel() / T, T}) : at::Tensor()))
    return false;
  // Probabilities: softmax over each row of scores in fp32, written in the values' dtype (in place for fp32).
  at::Tensor probs = dt == memory::data_type::f32 ? scores : at::empty({heads, n, T}, v.options());
  at::Tensor prob_rows = probs.view({heads * n, T});
  if (!softmax_rows(scores.view({heads * n, T}), prob_rows, false)) return false;
  // ctx_h [n, dh] = p_h v_h, into ctx's columns of head h.
  at::Tensor ctx_heads = per_head(ctx, false);
  return matmul(probs, per_head(v, false), ctx_heads);
}

bool matmul(const at::Tensor& a, const at::Tensor& b, at::Tensor& c, float scale, const at::Tensor& add) {
  memory::data_type at_, ct;
  const int64_t d = a.dim();
  if (d < 2 || b.dim() != d || c.dim() != d || !a.device().is_cpu() || !b.device().is_cpu() || !c.device().is_cpu() ||
      a.scalar_type() != b.scalar_type() || !data_type(a.scalar_type(), &at_) || !data_type(c.scalar_type(), &ct) ||
      a.numel() == 0 || b.numel() == 0 || c.numel() == 0)
    return false;
  for (int64_t i = 0; i < d - 2; ++i)
    if (a.size(i) != c.size(i) || b.size(i) != c.size(i)) return false;
  if (a.size(d - 1) != b.size(d - 2) || a.size(d - 2) != c.size(d - 2) || b.size(d - 1) != c.size(d - 1)) return false;
  if (add.defined() && (add.scalar_type() != at::kFloat || add.dim() != d || !add.is_contiguous())) return false;
  auto desc = [](const at::Tensor& t, memory::data_type dt) {
    return memory::desc(memory::dims(t.sizes().begin(), t.sizes().end()), dt,
                        memory::dims(t.strides().begin(), t.strides().end()));
  };
  try {
    dnnl::post_ops ops;
    std::unordered_map<int, memory> args;
    if (scale != 1.f) append_eltwise(ops, dnnl::algorithm::eltwise_linear, scale);
    // A per-row addend broadcast over the batch dimensions (causal or branch masks, [1, n, T] or [B, 1, T, T])
    // has only oneDNN 2.6's reference matmul as a post-op (~500x slower than the GEMM): it is added after it.
    const bool add_after =
        add.defined() && add.size(d - 2) > 1 && add.numel() != c.numel() && ct == memory::data_type::f32;
    if (add.defined() && !add_after) {
      const memory::desc md = desc(add, memory::data_type::f32);
      ops.append_binary(dnnl::algorithm::binary_add, md);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len() - 1) | DNNL_ARG_SRC_1,
                   memory(md, cpu_engine(), const_cast<void*>(add.data_ptr())));
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    run_matmul(desc(a, at_), a.data_ptr(), desc(b, at_), b.data_ptr(), nullptr, nullptr, desc(c, ct), c.data_ptr(),
               attr, std::move(args));
    if (add_after) c.add_(add);
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

bool layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, at::Tensor& out) {
  const auto f32 = memory::data_type::f32;
  if (!rows_ok(x) || !rows_ok(out) || x.scalar_type() != at::kFloat || out.scalar_type() != at::kFloat ||
      out.size(0) != x.size(0) || out.size(1) != x.size(1) || x.numel() == 0)
    return false;
  for (const at::Tensor* t : {&weight, &bias})
    if (!t->defined() || t->dim() != 1 || t->size(0) != x.size(1) || !t->is_contiguous() ||
        t->scalar_type() != at::kFloat || !t->device().is_cpu())
      return false;
  try {
    const dnnl::engine& eng = cpu_engine();
    const memory::desc src = rows_desc(x, f32), dst = rows_desc(out, f32), sd({x.size(1)}, f32, {1});
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    using LayerNorm = dnnl::layer_normalization_forward;
#if DNNL_VERSION_MAJOR >= 3
    const LayerNorm::primitive_desc pd(eng, dnnl::prop_kind::forward_inference, src, dst, static_cast<float>(eps),
                                       flags);
#else
    if (x.stride(0) != out.stride(0)) return false;  // v2 takes one layout for source and destination
    const LayerNorm::primitive_desc pd(
        LayerNorm::desc(dnnl::prop_kind::forward_inference, src, static_cast<float>(eps), flags), eng);
#endif
    LayerNorm(pd).execute(cpu_stream(), {{DNNL_ARG_SRC, memory(src, eng, x.data_ptr())},
                                         {DNNL_ARG_DST, memory(dst, eng, out.data_ptr())},
                                         {DNNL_ARG_SCALE, memory(sd, eng, weight.data_ptr())},
                                         {DNNL_ARG_SHIFT, memory(sd, eng, bias.data_ptr())}});
    cpu_stream().wait();
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

bool softmax_rows(const at::Tensor& x, at::Tensor& out, bool log, float scale) {
  memory::data_type xt, ot;
  if (!rows_ok(x) || !rows_ok(out) || !out.is_contiguous() || !data_type(x.scalar_type(), &xt) ||
      !data_type(out.scalar_type(), &ot) || out.size(0) != x.size(0) || out.size(1) != x.size(1) || x.numel() == 0)
    return false;
  try {
    // The scale as one more pass rather than an attribute: v3's scales quantize, and oneDNN 2.6's AVX2 softmax
    // (jit:avx2) ignores output scales (core_test's cross-entropy check on an AVX2-only CPU).
    run_softmax(rows_desc(x, xt), x.data_ptr(), rows_desc(out, ot), out.data_ptr(), 1, log);
    if (scale != 1.f) out.mul_(scale);
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}
#endif

}  // namespace onednn
}  // namespace petcore
