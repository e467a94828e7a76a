#include "cpu_inference.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include "cpu_threads.h"

namespace petcore {

// Rows per task of the row-wise phases: small enough that a chunk's intermediates ([rows, intermediate])
// stay in a core's cache, large enough for efficient GEMMs.
constexpr int64_t kChunkRows = 512;

// Threads for the task inference path, or 0 where the plain path runs: training, autograd, non-CPU devices,
// an OpenMP runtime we cannot find (ops would then oversubscribe the pool), or PET_MLM_PLAIN_INFERENCE=1 (for
// comparisons). With one thread the tasks run in the caller and GEMMs keep OpenBLAS's own threads.
namespace {
// The task count of the enclosing in_inference_scope(), taken before its guard set this thread's OpenMP count
// to 1 (after which at::get_num_threads() here says 1); 0 outside a scope.
thread_local int t_scope_threads = 0;
}  // namespace

int inference_tasks(const at::Device& device, bool train) {
  static const bool plain = [] {
    const char* v = std::getenv("PET_MLM_PLAIN_INFERENCE");
    return v && *v && std::string(v) != "0";
  }();
  if (plain || train || at::GradMode::is_enabled() || !device.is_cpu() || !can_serialize_ops()) return 0;
  if (t_scope_threads > 0) return t_scope_threads;
  return std::max(1, at::get_num_threads());
}

// Full-vocabulary logits [M, V] = h [M, H] x decoder [V, H]^T + bias, over vocabulary slices in tasks: the
// decoder matrix is read once, by all threads (with M = 1 a GEMV, not a GEMM that packs the whole matrix).
at::Tensor decode_in_tasks(const at::Tensor& h, const at::Tensor& decoder, const at::Tensor& bias, int threads) {
  const int64_t M = h.size(0), V = decoder.size(0);
  at::Tensor out = at::empty({M, V}, h.options());
  const int64_t chunks = std::min<int64_t>(V, threads * 4), per = (V + chunks - 1) / chunks;
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  TaskPool::get().run(threads, (V + per - 1) / per, [&](int64_t ch) {
    const int64_t v0 = ch * per, n = std::min(per, V - v0);
    const at::Tensor w = decoder.narrow(0, v0, n), b = bias.narrow(0, v0, n);
    if (M == 1) {
      at::Tensor o = out.view({V}).narrow(0, v0, n);
      at::addmv_out(o, b, w, h.select(0, 0));
    } else {
      at::Tensor o = out.narrow(1, v0, n);
      at::addmm_out(o, b, h, w.t());
    }
  });
  return out;
}

// The encoder without autograd on CPU, split into tasks as described above; the same ops per row as
// layer_forward() in eval mode. With `positions` ([M, 2] (row, column) pairs, int64, validated) it returns only
// the last hidden states at those positions, [M, H]: the last layer then needs keys and values for every
// token but queries, attention output, feed-forward and LayerNorms only for the M rows.
at::Tensor encode_in_tasks(const BertModel& m, const Batch& b, const RowOverride* rows, int threads,
                           const at::Tensor& positions) {
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  const BertConfig& c = m.config();
  at::Tensor x = m.embed(b, false, rows);  // [B, T, H]
  const int64_t B = x.size(0), T = x.size(1), H = c.hidden_size, nh = c.num_attention_heads, dh = c.head_dim();
  const int64_t R = B * T;
  x = x.reshape({R, H}).contiguous();
  // Additive mask [B, T]: 0 where attended, the dtype's lowest value where padded (as HF does).
  const at::Tensor mask_bias = (1.0 - b.attention_mask.to(x.scalar_type())) * std::numeric_limits<float>::lowest();
  const double scale = std::sqrt(static_cast<double>(dh));

  struct LayerW {
    at::Tensor q, bq, k, bk, v, bv, o, bo, ln1w, ln1b, i, bi, out, bout, ln2w, ln2b;
  };
  std::vector<LayerW> L;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    auto w = [&](const std::string& n) { return m.param(p + n); };
    L.push_back({w("attention.self.query.weight"), w("attention.self.query.bias"), w("attention.self.key.weight"),
                 w("attention.self.key.bias"), w("attention.self.value.weight"), w("attention.self.value.bias"),
                 w("attention.output.dense.weight"), w("attention.output.dense.bias"),
                 w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias"),
                 w("intermediate.dense.weight"), w("intermediate.dense.bias"), w("output.dense.weight"),
                 w("output.dense.bias"), w("output.LayerNorm.weight"), w("output.LayerNorm.bias")});
  }
  const int64_t nl = static_cast<int64_t>(L.size());
  const bool select = positions.defined();
  const int64_t full = select ? nl - 1 : nl;  // layers computed for every row

  // Row chunks: at least one per thread, a multiple of the thread count, at most kChunkRows rows each.
  auto chunking = [&](int64_t rows) {
    int64_t n = std::max<int64_t>(threads, (rows + kChunkRows - 1) / kChunkRows);
    n = std::min<int64_t>(rows, (n + threads - 1) / threads * threads);
    return (rows + n - 1) / n;  // rows per chunk
  };
  const int64_t per = chunking(R), chunks = (R + per - 1) / per;

  at::Tensor qkv = at::empty({R, 3 * H}, x.options());
  at::Tensor ctx = at::empty({R, H}, x.options());
  at::Tensor next = at::empty({R, H}, x.options());

  // 1/sqrt(head_dim) applied to the queries when it is a power of two (exact: then (q / s) k == (q k) / s to
  // the bit), else to each score matrix.
  const bool scale_queries = std::exp2(std::round(std::log2(scale))) == scale;

  // Projections of rows [r0, r0 + n) of x for layer i (queries only where all rows go on).
  auto project = [&](int64_t i, int64_t r0, int64_t n) {
    const LayerW& w = L[i];
    const at::Tensor in = x.narrow(0, r0, n);
    at::Tensor out = qkv.narrow(0, r0, n);
    at::Tensor ok = out.narrow(1, H, H), ov = out.narrow(1, 2 * H, H);
    if (i < full) {
      at::Tensor oq = out.narrow(1, 0, H);
      at::addmm_out(oq, w.bq, in, w.q.t());
      if (scale_queries) oq.div_(scale);
    }
    at::addmm_out(ok, w.bk, in, w.k.t());
    at::addmm_out(ov, w.bv, in, w.v.t());
  };
  // All heads of attention for query rows q [n, H] (scaled as above) of sequence bi, into out [n, H].
  auto attend = [&](const at::Tensor& q, int64_t bi, const at::Tensor& out) {
    const int64_t n = q.size(0);
    const at::Tensor seq_rows = qkv.narrow(0, bi * T, T);
    const at::Tensor k = seq_rows.narrow(1, H, H).view({T, nh, dh}).permute({1, 2, 0});   // [nh, dh, T]
    const at::Tensor v = seq_rows.narrow(1, 2 * H, H).view({T, nh, dh}).transpose(0, 1);  // [nh, T, dh]
    at::Tensor scores = at::bmm(q.view({n, nh, dh}).transpose(0, 1), k);             // [nh, n, T]
    if (!scale_queries) scores.div_(scale);
    scores.add_(mask_bias.select(0, bi));
    out.view({n, nh, dh}).copy_(at::bmm(at::softmax(scores, -1), v).transpose(0, 1));
  };
  // Attention output, residual, LayerNorm, feed-forward, residual, LayerNorm for some rows.
  auto finish = [&](const LayerW& w, const at::Tensor& ctx_rows, const at::Tensor& x_rows) {
    at::Tensor a = at::addmm(w.bo, ctx_rows, w.o.t());
    at::Tensor h = at::layer_norm(a.add_(x_rows), {H}, w.ln1w, w.ln1b, c.layer_norm_eps);
    at::Tensor f = activation(at::addmm(w.bi, h, w.i.t()), c.hidden_act);
    f = at::addmm(w.bout, f, w.out.t());
    return at::layer_norm(f.add_(h), {H}, w.ln2w, w.ln2b, c.layer_norm_eps);
  };

  TaskPool& pool = TaskPool::get();
  pool.run(threads, chunks, [&](int64_t ch) { project(0, ch * per, std::min(per, R - ch * per)); });
  for (int64_t i = 0; i < full; ++i) {
    pool.run(threads, B, [&](int64_t bi) { attend(qkv.narrow(0, bi * T, T).narrow(1, 0, H), bi, ctx.narrow(0, bi * T, T)); });
    // The layer's output rows, then (same rows, still in cache) the next layer's projections.
    pool.run(threads, chunks, [&](int64_t ch) {
      const int64_t r0 = ch * per, n = std::min(per, R - r0);
      next.narrow(0, r0, n).copy_(finish(L[i], ctx.narrow(0, r0, n), x.narrow(0, r0, n)));
    });
    std::swap(x, next);
    if (i + 1 < nl) pool.run(threads, chunks, [&](int64_t ch) { project(i + 1, ch * per, std::min(per, R - ch * per)); });
  }
  if (!select) return x.view({B, T, H});

  // The last layer at the selected rows only.
  const LayerW& w = L[nl - 1];
  const int64_t M = positions.size(0);
  const at::Tensor seq = positions.select(1, 0), col = positions.select(1, 1);
  const at::Tensor xs = x.index_select(0, seq * T + col);  // [M, H]
  at::Tensor qs = at::addmm(w.bq, xs, w.q.t());
  if (scale_queries) qs.div_(scale);
  at::Tensor cs = at::empty({M, H}, x.options());
  const auto pos = positions.accessor<int64_t, 2>();
  pool.run(threads, M, [&](int64_t r) { attend(qs.narrow(0, r, 1), pos[r][0], cs.narrow(0, r, 1)); });
  at::Tensor out = at::empty({M, H}, x.options());
  const int64_t mper = chunking(M);
  pool.run(threads, (M + mper - 1) / mper, [&](int64_t ch) {
    const int64_t r0 = ch * mper, n = std::min(mper, M - r0);
    out.narrow(0, r0, n).copy_(finish(w, cs.narrow(0, r0, n), xs.narrow(0, r0, n)));
  });
  return out;
}

// Runs f with the task path's thread settings where that path is on (ops single-threaded
// in the caller, OpenBLAS single-threaded), so that no OpenMP or OpenBLAS worker woken by the small ops around
// the model (normalisers, gathers) is left spinning on a core against the pool's next job.
void in_inference_scope(const BertModel& m, const std::function<void()>& f) {
  const int threads = inference_tasks(m.device(), false);
  if (!threads) return f();
  struct ScopeThreads {
    int prev = t_scope_threads;
    explicit ScopeThreads(int n) { t_scope_threads = n; }
    ~ScopeThreads() { t_scope_threads = prev; }
  } scope(threads);
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  f();
}

// The last hidden states at validated (row, column) positions [M, 2] -> [M, H],
// without autograd. The task path runs the last layer for those rows only; elsewhere, gather from encode().
at::Tensor encode_at_positions(const BertModel& m, const Batch& b, const at::Tensor& positions) {
  if (const int threads = inference_tasks(m.device(), false)) return encode_in_tasks(m, b, nullptr, threads, positions);
  const at::Tensor hidden = m.encode(b, false);
  return hidden.index({positions.select(1, 0), positions.select(1, 1)});
}

}  // namespace petcore
