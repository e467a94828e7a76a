#!/usr/bin/env bash
# The GPU check (issue #5): on a machine with a CUDA PyTorch in python3 (and HF transformers), no Node, no internet.
# Builds the C++ core and its executables against that torch, runs the parity tests on the device (fp32 within the
# fixture tolerances; bf16 autocast logits within max|logit|/32, asserted), then zero-shot scoring sentences/s and PET training steps/s in fp32 and bf16,
# ours (native/tests/core_bench.cc) vs HF transformers eager (scripts/gpu/hf_bench.py), on models/zh-mini-mlm and on
# a random bert-base-chinese-sized checkpoint made there. Each phase is time-boxed and the whole stays within
# GPU_CHECK_BUDGET seconds (default 450); a phase that fails or times out is reported and the next one runs.
#
# Before: run scripts/gpu-prepare.sh on the development machine (fills the ignored folder gpu/ with the parity
# fixture, GPT-2's and the MLM families' models and inputs, and the pre-tokenized inputs) and carry "gpu" along.
# GPT-2's and the families' HF outputs are computed here on the CPU (scripts/gpu/hf_references.py) into
# $GPU_CHECK_BUILD/hf-references, and core_test checks GPT-2, RoBERTa, XLM-R, ALBERT and ERNIE beside BERT.
#   scripts/gpu-check.sh
# Results (report.md, summary.json, one JSON and log per phase) go to $OUT (default ./gpu-results).
#
# Environment:
#   OUT                  results folder (default ./gpu-results)
#   PYTHON               interpreter with torch (default python3)
#   GPU_CHECK_DEVICE     cuda (default) or cpu (a dry run of the flow)
#   GPU_CHECK_BUDGET     seconds for the whole check (default 450)
#   GPU_CHECK_BUILD      build folder (default ./build-gpu; kept between runs: a rerun builds incrementally)
#   GPU_CHECK_MODELS     which models: "zh-mini base" (default)
#   GPU_CHECK_BENCH_ARGS extra options for both benchmarks (e.g. "--limit 200 --train-steps 3")
#   GPU_CHECK_BASE_DIR   where the random bert-base checkpoint goes (default ${TMPDIR:-/tmp}/pet-bert-base-random)
#   TORCH_DIR            TorchConfig.cmake folder (default: python torch's cmake_prefix_path/Torch)
#   JOBS                 parallel compile jobs (default 16)
#   GPU_CHECK_BUILD_LIMIT, GPU_CHECK_BENCH_LIMIT   per-phase limits in seconds (build 300/240, benchmarks 150/180)
#   GPU_CHECK_BUILD_MODE auto (CMake, else the direct g++ build), cmake or direct
#   GPU_CHECK_REBUILD=0  reuse an existing $GPU_CHECK_BUILD/core_bench without running the build
set -uo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/.." && pwd)"
cd "$ROOT" || exit 1

export PY="${PYTHON:-python3}"
export DEVICE="${GPU_CHECK_DEVICE:-cuda}"
export JOBS="${JOBS:-16}"
export BUILD="${GPU_CHECK_BUILD:-$ROOT/build-gpu}"
export FIX="${GPU_FIXTURES:-$ROOT/gpu/fixtures}"
export INPUTS="${GPU_INPUTS:-$ROOT/gpu/inputs/sentiment_p1.json}"
export BASE_DIR="${GPU_CHECK_BASE_DIR:-${TMPDIR:-/tmp}/pet-bert-base-random}"
export BENCH_ARGS="${GPU_CHECK_BENCH_ARGS:-}"
MODELS="${GPU_CHECK_MODELS:-zh-mini base}"
BUDGET="${GPU_CHECK_BUDGET:-450}"
RESERVE=15  # seconds kept for the report

# ---- steps run under `timeout` (this script calling itself) ----------------------------------------------------

torch_dir() {
  if [ -n "${TORCH_DIR:-}" ]; then echo "$TORCH_DIR"; return; fi
  local p
  p="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')" || return 1
  echo "$p/Torch"
}

find_nvcc() {
  local c site
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return 0; fi
  for c in "${CUDA_HOME:-/nonexistent}/bin/nvcc" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  site="$("$PY" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null)" || return 1
  for c in "$site"/nvidia/cu13/bin/nvcc "$site"/nvidia/cuda_nvcc/bin/nvcc "$site"/nvidia/cu12/bin/nvcc; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

step_env() {
  "$PY" - "$DEVICE" <<'EOF' || printf '{"device": "%s", "python": "%s", "error": "%s did not run"}\n' "$DEVICE" "$PY" "$PY" > "$OUT/env.json"
import json, os, platform, shutil, subprocess, sys
env = {'device': sys.argv[1], 'python': sys.version.split()[0], 'platform': platform.platform(), 'cpus': os.cpu_count()}
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:
        return 'unavailable (%s)' % type(e).__name__
env['nvidia_smi'] = run(['nvidia-smi', '--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'])
env['cmake'] = (run(['cmake', '--version']).splitlines() or [''])[0] if shutil.which('cmake') else None
env['ninja'] = run(['ninja', '--version']) if shutil.which('ninja') else None
env['gxx'] = (run(['g++', '--version']).splitlines() or [''])[0] if shutil.which('g++') else None
env['nvcc_on_path'] = shutil.which('nvcc')
try:
    import torch
    env['torch'] = torch.__version__
    env['torch_cuda'] = torch.version.cuda
    env['cxx11_abi'] = bool(torch.compiled_with_cxx11_abi())
    env['cmake_prefix_path'] = torch.utils.cmake_prefix_path
    env['cuda_available'] = torch.cuda.is_available()
    if torch.cuda.is_available():
        env['device_name'] = torch.cuda.get_device_name(0)
        env['capability'] = '.'.join(map(str, torch.cuda.get_device_capability(0)))
except Exception as e:
    env['torch_error'] = '%s: %s' % (type(e).__name__, e)
try:
    import transformers
    env['transformers'] = transformers.__version__
except Exception as e:
    env['transformers'] = None
    env['transformers_error'] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(env, indent=1))
with open(os.path.join(os.environ['OUT'], 'env.json'), 'w') as f:
    json.dump(env, f, indent=1)
EOF
  if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi; fi
  return 0
}

step_build_cmake() {
  local td nvcc gen=() cuda=()
  td="$(torch_dir)" || { echo "cannot ask $PY for torch's cmake_prefix_path (set TORCH_DIR)"; return 1; }
  echo "Torch_DIR=$td"
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  if [ "$DEVICE" = cuda ]; then
    cuda=(-DPET_CUDA=ON)
    if nvcc="$(find_nvcc)"; then
      echo "nvcc: $nvcc"
      PATH="$(dirname "$nvcc"):$PATH"
      CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$nvcc")")}"
      export PATH CUDA_HOME
      cuda+=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_HOME" -DCUDAToolkit_ROOT="$CUDA_HOME")
    else
      echo "no nvcc found (PATH, CUDA_HOME, /usr/local/cuda*, pip nvidia/*): a CUDA torch's TorchConfig.cmake needs the"
      echo "CUDA toolkit, so this configure will likely fail and the direct g++ build will be tried instead"
    fi
    # no .cu files here; a fixed arch list spares TorchConfig the device query
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
  fi
  # TorchConfig finds Caffe2Config and libtorch/libc10 with find_package/find_library PATHS hints, which look in the
  # system folders first: with a system LibTorch installed too (Debian's libtorch-dev), it would mix the two.
  # Pin them to this torch when it has the pip/LibTorch layout (<prefix>/share/cmake/Torch, <prefix>/lib).
  local prefix pin=()
  prefix="$(cd "$td/../../.." 2>/dev/null && pwd)" || prefix=""
  if [ -n "$prefix" ] && [ -e "$prefix/lib/libtorch.so" ] && [ -d "$td/../Caffe2" ]; then
    pin=(-DCaffe2_DIR="$(cd "$td/../Caffe2" && pwd)" -DTORCH_LIBRARY="$prefix/lib/libtorch.so" -Dc10_LIBRARY="$prefix/lib/libc10.so")
    [ -e "$prefix/lib/libc10_cuda.so" ] && pin+=(-DC10_CUDA_LIBRARY="$prefix/lib/libc10_cuda.so")
  fi
  cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$td" -DPET_BUILD_TESTS=ON "${pin[@]}" "${cuda[@]}" ||
    { echo "CMake configure failed (see above; a CUDA torch needs nvcc + CUDA headers for find_package(Torch))"; return 1; }
  echo "configured with: $(grep -E '^Torch_DIR:' "$BUILD/CMakeCache.txt")"
  cmake --build "$BUILD" -j "$JOBS" --target core_test core_bench || { echo "build failed"; return 1; }
  ls -la "$BUILD/core_test" "$BUILD/core_bench"
  starts
}

# The executables must at least load their libraries (core_bench without arguments prints its usage, status 2).
starts() {
  local rc
  "$BUILD/core_bench" > "$BUILD/starts.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] && return 0
  echo "core_bench does not start (status $rc):"
  cat "$BUILD/starts.log"
  command -v ldd >/dev/null 2>&1 && ldd "$BUILD/core_bench" | grep -E 'not found|torch|c10'
  return 1
}

# Without CMake's CUDA checks: compile the core and the two executables with g++ against torch's headers, link
# torch's shared libraries (torch_cuda/c10_cuda kept even though nothing references them: they register the CUDA
# backend), rpath to torch/lib (whose libraries find the pip nvidia/* ones through their own rpaths).
step_build_direct() {
  local tinc tlib abi site out libs=() objs=() f
  if [ -n "${TORCH_INCLUDE:-}" ] && [ -n "${TORCH_LIB:-}" ]; then
    tinc="$TORCH_INCLUDE"; tlib="$TORCH_LIB"; abi="${TORCH_CXX11_ABI:-1}"
  else
    local troot
    troot="$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')" || { echo "cannot import torch"; return 1; }
    tinc="$troot/include"; tlib="$troot/lib"
    abi="$("$PY" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')"
  fi
  out="$BUILD/direct"
  mkdir -p "$out"
  echo "torch headers $tinc, libraries $tlib, _GLIBCXX_USE_CXX11_ABI=$abi"
  export DIRECT_FLAGS="-O2 -DNDEBUG -std=c++17 -fPIC -D_GLIBCXX_USE_CXX11_ABI=$abi -I$ROOT/native/core -I$ROOT/native/third_party -isystem $tinc -isystem $tinc/torch/csrc/api/include"
  export DIRECT_OUT="$out"
  # shellcheck disable=SC2012
  DIRECT_HDR="$(ls -t native/core/*/*.h | head -n 1)"
  export DIRECT_HDR
  site="$(dirname "$(dirname "$tlib")")"
  # c10d (core_test's group-of-one all-reduce): Gloo where torch ships its headers, NCCL for CUDA tensors where
  # nccl.h is found too. distributed.cc is compiled on its own; if it does not compile or link with them, it is
  # built as the stub and core_test says that c10d is unavailable.
  local c10d_flags="" nccl_inc="" d
  if [ -f "$tinc/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp" ] && [ -f "$tinc/gloo/config.h" ]; then
    c10d_flags="-DPET_C10D_GLOO -DUSE_C10D_GLOO"
    for d in "$tinc" "$site"/nvidia/nccl/include "${CUDA_HOME:-/usr/local/cuda}/include"; do
      [ -f "$d/nccl.h" ] && { nccl_inc="$d"; break; }
    done
    if [ -n "$nccl_inc" ] && [ -f "$tinc/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" ] && [ -e "$tlib/libtorch_cuda.so" ]; then
      c10d_flags="$c10d_flags -DPET_C10D_NCCL -DUSE_C10D_NCCL -isystem $nccl_inc"
      for d in "$site"/nvidia/*/include "${CUDA_HOME:-/usr/local/cuda}/include"; do [ -d "$d" ] && c10d_flags="$c10d_flags -isystem $d"; done
    fi
  fi
  # shellcheck disable=SC2016
  printf '%s\n' native/core/*/*.cc native/tests/core_test.cc native/tests/core_bench.cc | grep -v 'distributed\.cc$' |
    xargs -P "$JOBS" -I{} sh -c 'f="{}"; o="$DIRECT_OUT/$(basename "$f" .cc).o"; { [ "$o" -nt "$f" ] && [ "$o" -nt "$DIRECT_HDR" ]; } || g++ $DIRECT_FLAGS -c "$f" -o "$o" || { echo "compile failed: $f"; exit 255; }' ||
    { echo "compilation failed"; return 1; }
  stub() { echo "c10d: distributed.cc built as the stub ($1)"; g++ $DIRECT_FLAGS -c native/core/distributed/distributed.cc -o "$out/distributed.o"; }
  if [ -z "$c10d_flags" ]; then
    stub "torch ships no c10d/Gloo headers" || return 1
  elif g++ $DIRECT_FLAGS $c10d_flags -c native/core/distributed/distributed.cc -o "$out/distributed.o"; then
    echo "c10d: distributed.cc with $c10d_flags"
  else
    stub "it does not compile with $c10d_flags" || return 1
  fi
  for f in native/core/*/*.cc; do objs+=("$out/$(basename "$f" .cc).o"); done
  libs=("-L$tlib" "-Wl,-rpath,$tlib" "-Wl,--no-as-needed")
  [ -e "$tlib/libtorch_cuda.so" ] && libs+=(-ltorch_cuda)
  [ -e "$tlib/libc10_cuda.so" ] && libs+=(-lc10_cuda)
  libs+=(-ltorch -ltorch_cpu -lc10 "-Wl,--as-needed" "-Wl,--allow-shlib-undefined" -pthread -ldl)
  # the pip nvidia/* library folders, for the linker's look at torch_cuda's own dependencies
  for f in "$site"/nvidia/*/lib; do [ -d "$f" ] && libs+=("-Wl,-rpath-link,$f"); done
  link() {
    g++ -o "$BUILD/core_test" "$out/core_test.o" "${objs[@]}" "${libs[@]}" &&
      g++ -o "$BUILD/core_bench" "$out/core_bench.o" "${objs[@]}" "${libs[@]}"
  }
  if ! link; then
    { [ -n "$c10d_flags" ] && stub "it does not link with $c10d_flags" && link; } || { echo "link failed"; return 1; }
  fi
  ls -la "$BUILD/core_test" "$BUILD/core_bench"
  starts
}

step_make_base() {
  if [ -f "$BASE_DIR/config.json" ] && ls "$BASE_DIR"/*.safetensors >/dev/null 2>&1; then
    echo "reusing $BASE_DIR"; ls -la "$BASE_DIR"; return 0
  fi
  rm -rf "$BASE_DIR"
  "$PY" scripts/gpu/hf_bench.py make-base "$BASE_DIR" --like "$ROOT/models/zh-mini-mlm"
}

if [ "${1:-}" = --step ]; then
  case "$2" in
    env) step_env ;;
    build-cmake) step_build_cmake ;;
    build-direct) step_build_direct ;;
    make-base) step_make_base ;;
    *) echo "unknown step $2"; exit 2 ;;
  esac
  exit $?
fi

# ---- the check -------------------------------------------------------------------------------------------------

START=$(date +%s)
DEADLINE=$((START + BUDGET))
export OUT="${OUT:-gpu-results}"
mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
export OUT
rm -f "$OUT/phases.jsonl"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
echo "gpu-check: $(date -u +%FT%TZ) device=$DEVICE budget=${BUDGET}s out=$OUT build=$BUILD"

record() {  # record PHASE STATUS SECONDS LIMIT
  printf '{"phase": "%s", "status": "%s", "seconds": %s, "limit": %s}\n' "$1" "$2" "$3" "$4" >> "$OUT/phases.jsonl"
}

# phase NAME LIMIT command... : runs it under timeout (capped by what is left of the budget), output to
# $OUT/NAME.log; prints one status line (and the log's tail on failure); returns the command's status.
phase() {
  local name="$1" limit="$2" left t0 rc dt status
  shift 2
  left=$((DEADLINE - $(date +%s) - RESERVE))
  if [ "$left" -lt 10 ]; then
    echo "-- $name: SKIPPED (budget spent)"
    record "$name" skipped 0 "$limit"
    return 99
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "-- $name (up to ${limit}s) ..."
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  dt=$(($(date +%s) - t0))
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status="failed($rc)" ;;
  esac
  record "$name" "$status" "$dt" "$limit"
  echo "-- $name: $status in ${dt}s (log: $OUT/$name.log)"
  if [ $rc -ne 0 ]; then tail -n 25 "$OUT/$name.log" | sed 's/^/   | /'; fi
  return $rc
}

phase env 60 bash "$SELF" --step env
grep -E '"(device_name|torch|torch_cuda|transformers|cmake|nvcc_on_path)"' "$OUT/env.json" 2>/dev/null | sed 's/^/   /'

BUILT=""
MODE="${GPU_CHECK_BUILD_MODE:-auto}"
if [ -x "$BUILD/core_bench" ] && [ "${GPU_CHECK_REBUILD:-1}" = 0 ]; then
  BUILT=existing
elif [ "$MODE" != direct ] && phase build-cmake "${GPU_CHECK_BUILD_LIMIT:-300}" bash "$SELF" --step build-cmake; then
  BUILT=cmake
elif [ "$MODE" != cmake ] && phase build-direct "${GPU_CHECK_BUILD_LIMIT:-240}" bash "$SELF" --step build-direct; then
  BUILT=direct
fi
echo "build: ${BUILT:-FAILED}"

if [ -n "$BUILT" ]; then
  # GPT-2 and the MLM families (core_test's pairs after BERT's; GPT-2 first): HF's outputs computed here from the
  # models and inputs that travelled (gpu-prepare.sh), then checked by core_test beside BERT's fixed fixture
  PAIRS=()
  HFIN="$FIX/hf-inputs" HFREF="$BUILD/hf-references"
  if [ -f "$HFIN/tiny-gpt2_inputs.safetensors" ] &&
     phase hf-references 120 "$PY" scripts/gpu/hf_references.py reference "$HFIN" --out "$HFREF"; then
    sed 's/^/   /' "$OUT/hf-references.log"
    PAIRS=("$HFIN/tiny-gpt2" "$HFREF/tiny-gpt2_reference.safetensors")
    for f in "$HFIN"/*_inputs.safetensors; do
      n="$(basename "$f" _inputs.safetensors)"
      [ "$n" = tiny-gpt2 ] || PAIRS+=("$HFIN/$n" "$HFREF/${n}_reference.safetensors")
    done
  else
    echo "-- GPT-2 and family parity: SKIPPED (no $HFIN/tiny-gpt2_inputs.safetensors, or the references failed)"
  fi
  if [ -f "$FIX/tiny_bert_reference.safetensors" ] && [ -d "$FIX/tiny-bert" ]; then
    phase parity-fp32 90 "$BUILD/core_test" "$FIX/tiny-bert" "$FIX/tiny_bert_reference.safetensors" "$DEVICE" fp32 "${PAIRS[@]}" &&
      sed 's/^/   /' "$OUT/parity-fp32.log"
    # a CMake build whose executables lack the CUDA backend (libtorch_cuda dropped at link time): try the direct one
    if [ "$BUILT" = cmake ] && [ "$MODE" = auto ] && grep -q 'no usable CUDA device\|CUDA backend\|Could not run' "$OUT/parity-fp32.log" &&
       phase build-direct "${GPU_CHECK_BUILD_LIMIT:-240}" bash "$SELF" --step build-direct; then
      BUILT=direct
      echo "build: direct (after the CMake build failed on $DEVICE)"
      phase parity-fp32 90 "$BUILD/core_test" "$FIX/tiny-bert" "$FIX/tiny_bert_reference.safetensors" "$DEVICE" fp32 "${PAIRS[@]}" &&
        sed 's/^/   /' "$OUT/parity-fp32.log"
    fi
    phase parity-bf16 90 "$BUILD/core_test" "$FIX/tiny-bert" "$FIX/tiny_bert_reference.safetensors" "$DEVICE" bf16 "${PAIRS[@]}" &&
      sed 's/^/   /' "$OUT/parity-bf16.log"
  else
    echo "-- parity: SKIPPED: no fixtures in $FIX (run scripts/gpu-prepare.sh and carry gpu)"
    record parity missing-fixtures 0 0
  fi
fi

if [ ! -f "$INPUTS" ]; then
  echo "-- benchmarks: SKIPPED: $INPUTS is missing (run scripts/gpu-prepare.sh and carry gpu)"
  record benchmarks missing-inputs 0 0
  MODELS=""
fi

for m in $MODELS; do
  case "$m" in
    zh-mini) dir="$ROOT/models/zh-mini-mlm" ;;
    base)
      phase make-base 150 bash "$SELF" --step make-base || { echo "-- base: no checkpoint, skipped"; continue; }
      dir="$BASE_DIR" ;;
    *) echo "unknown model $m (zh-mini, base)"; continue ;;
  esac
  if [ -n "$BUILT" ]; then
    # shellcheck disable=SC2086
    phase "ours-$m" "${GPU_CHECK_BENCH_LIMIT:-150}" "$BUILD/core_bench" "$dir" "$INPUTS" "$DEVICE" --out "$OUT/ours-$m.json" $BENCH_ARGS &&
      tail -n 1 "$OUT/ours-$m.log" | cut -c1-400 | sed 's/^/   /'
  fi
  # shellcheck disable=SC2086
  phase "hf-$m" "${GPU_CHECK_BENCH_LIMIT:-180}" "$PY" scripts/gpu/hf_bench.py bench "$dir" "$INPUTS" --device "$DEVICE" --out "$OUT/hf-$m.json" $BENCH_ARGS &&
    tail -n 1 "$OUT/hf-$m.log" | cut -c1-400 | sed 's/^/   /'
done

printf '{"build": "%s", "models": "%s", "seconds": %s}\n' "${BUILT:-failed}" "${GPU_CHECK_MODELS:-zh-mini base}" "$(($(date +%s) - START))" > "$OUT/meta.json"
echo
# the report needs only the standard library: any python3 will do
if ! timeout 30 "$PY" scripts/gpu/report.py "$OUT" 2> "$OUT/report.err"; then
  timeout 30 python3 scripts/gpu/report.py "$OUT" || { echo "report failed:"; cat "$OUT/report.err"; }
fi
echo
echo "gpu-check: done in $(($(date +%s) - START))s; results in $OUT"
