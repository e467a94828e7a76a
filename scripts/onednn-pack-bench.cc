// Whether prepacked (blocked) weights speed up oneDNN's bf16 matmul on this CPU (#28 item 1): the layer kernel
// passes its weights in the plain layout (the transpose of [N, K] rows), and oneDNN's brgemm may reorder them per
// call. For weights [K, N] (arguments K N) it times, on one thread, the best of 50 calls at several row counts M in
// both layouts, and says which implementation oneDNN picks (a runtime-M primitive, one for every M, falls back to
// gemm:jit or ref:any in oneDNN 2.6, so packing would take one primitive per M over one packed copy).
// oneDNN 2.x API (Debian's libdnnl-dev 2.6):
//   g++ -O2 -std=c++17 scripts/onednn-pack-bench.cc -o /tmp/onednn-pack-bench -ldnnl
//   OMP_NUM_THREADS=1 /tmp/onednn-pack-bench 256 768    (the query/key/value projection; 1024 256, 256 21128 too)
#include <chrono>
#include <cstdio>
#include <dnnl.hpp>
#include <vector>
using namespace dnnl;
using dt = memory::data_type;
using tag = memory::format_tag;
int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: onednn-pack-bench K N\n");
    return 2;
  }
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const memory::dim K = atoi(argv[1]), N = atoi(argv[2]);
  const int reps = 50;
  std::vector<memory::dim> Ms = {4096, 2000, 32, 512};
  // weights [K, N] read as transpose of [N, K] rows: strides {1, K}
  memory::desc wplain({K, N}, dt::bf16, memory::dims{1, K});
  std::vector<uint16_t> wdata(K * N, 0x3f80);
  memory wmem(wplain, eng, wdata.data());
  // packed: query from a pd with any weights, M = 4096
  memory::desc src_any({4096, K}, dt::bf16, tag::ab), dst_any({4096, N}, dt::f32, tag::ab);
  memory::desc wany({K, N}, dt::bf16, tag::any);
  matmul::primitive_desc pdq(matmul::desc(src_any, wany, dst_any), eng);
  memory::desc wpacked = pdq.weights_desc();
  memory wp(wpacked, eng);
  reorder(wmem, wp).execute(s, wmem, wp);
  s.wait();
  std::printf("packed desc size %zu vs plain %zu, impl %s\n", wpacked.get_size(), wplain.get_size(),
              pdq.impl_info_str());
  // runtime M
  memory::desc src_rt({DNNL_RUNTIME_DIM_VAL, K}, dt::bf16, tag::ab),
      dst_rt({DNNL_RUNTIME_DIM_VAL, N}, dt::f32, tag::ab);
  try {
    matmul::primitive_desc pdr(matmul::desc(src_rt, wpacked, dst_rt), eng);
    std::printf("runtime-M with packed weights: %s\n", pdr.impl_info_str());
  } catch (error& e) {
    std::printf("runtime-M packed: %s\n", e.what());
  }
  try {
    matmul::primitive_desc pdr(matmul::desc(src_rt, wany, dst_rt), eng);
    std::printf("runtime-M with any weights: %s\n", pdr.impl_info_str());
  } catch (error& e) {
    std::printf("runtime-M any: %s\n", e.what());
  }
  for (memory::dim M : Ms) {
    std::vector<uint16_t> x(M * K, 0x3f80);
    std::vector<float> y(M * N);
    memory::desc sd({M, K}, dt::bf16, tag::ab), dd({M, N}, dt::f32, tag::ab);
    double best[2] = {1e9, 1e9};
    const char* impl[2] = {"", ""};
    for (int packed = 0; packed < 2; ++packed) {
      try {
        matmul::primitive_desc pd(matmul::desc(sd, packed ? wpacked : wplain, dd), eng);
        matmul prim(pd);
        impl[packed] = pd.impl_info_str();
        memory sm(sd, eng, x.data()), dm(dd, eng, y.data());
        for (int r = 0; r < reps; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          prim.execute(s, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, packed ? wp : wmem}, {DNNL_ARG_DST, dm}});
          s.wait();
          double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          if (ms < best[packed]) best[packed] = ms;
        }
      } catch (error& e) {
        std::printf("M %ld packed %d: %s\n", (long)M, packed, e.what());
      }
    }
    double gf = 2.0 * M * K * N / 1e9;
    std::printf("M %5ld K %ld N %ld: plain %.3f ms (%.0f GF/s, %s)  packed %.3f ms (%.0f GF/s, %s)\n", (long)M, (long)K,
                (long)N, best[0], gf / best[0] * 1e3, impl[0], best[1], gf / best[1] * 1e3, impl[1]);
  }
}
