#!/usr/bin/env bash
# GPU check (issue 8): one script for a machine with an NVIDIA GPU and ~16 cores that, in under
# 9 minutes,
#   1. builds the CUDA addon and llama.cpp's llama-bench / llama-batched-bench into ONE build
#      folder (build-gpu/; the CPU build in build/ is left alone), so ggml-cuda compiles once and
#      both sides run the very same ggml;
#   2. meanwhile writes the benchmark models into bench/.models/ (git-ignored; reused when present)
#      in the background;
#   3. runs test/api/devices.test.ts and test/device/ with that build on DEVICE: its device tests must
#      run and pass (skipped = failed);
#   4. runs bench/gpu-bench.ts: ours against llama.cpp on the same GPU, single stream (pp512, tg128)
#      and N concurrent streams (generated tokens / wall time), per model;
# and writes it all into one markdown file (OUT), with the whole console output in a .log beside it.
#
#   bash bench/gpu-check.sh
#   SKIP_BUILD=1 MODELS=124M-f16 STREAMS=1,32 bash bench/gpu-check.sh
#
# Environment (all optional):
#   OUT         results file, default bench/gpu-results.md; if it names a folder, OUT/gpu-results.md
#   MODELS      default 124M-f16,355M-f16,1.5B-f16 (<shape>-<type>; shapes tiny 124M 355M 774M 1.5B)
#   STREAMS     default 1,32,256
#   DEVICE      default cuda:0
#   ARCH        CUDA architecture; default CMAKE_CUDA_ARCHITECTURES, else the GPU's compute
#               capability from nvidia-smi (9.0 -> 90), else "native"
#   BUILD_DIR   default build-gpu
#   JOBS        build jobs, default nproc
#   GGML_CUDA_GRAPHS  default ON: llama.cpp's own default for its builds (our CMakeLists leaves
#               ggml's default, OFF); one build folder means both sides get the same setting
#   SKIP_BUILD=1  use BUILD_DIR as it is;  SKIP_TESTS=1  no GPU tests;  QUICK=1  gpu-bench --quick
#   BUDGET_S    default 540 (9 min): what is left of it when the benchmark starts (less 20 s) goes
#               to gpu-bench.ts --budget-s, which skips the groups that would start after it
#
# Estimated phases on an H200 host with 16 cores (estimates, not measured yet: no GPU machine has
# run this script so far):
#   preflight       ~5 s (+ ~20 s when vendor/llama.cpp must first be materialized from vendor/.cache)
#   configure       ~20-30 s (cmake-js configure: CUDA toolkit detection, llama.cpp's tools configured)
#   build           ~4-5 min, the long pole: ggml-cuda is ~143 nvcc compilations for one architecture
#                   (68 kernels, 22 mmq + 16 mmf + 12 fattn-tile + 21 fattn-mma instances, 4
#                   fattn-vec: GGML_CUDA_FA_ALL_QUANTS stays OFF, else 49), the mmq / fattn-mma
#                   ones 30-90 s each; libllama, common and the two tools (~1 min of CPU) compile in
#                   the same ninja run, in the gaps
#   models          in the background during the build: the generator is single-threaded
#                   JavaScript, measured on a 2-core EPYC at ~10 M parameters/s (124M f16 in 12.6 s),
#                   so ~10 s (124M), ~30 s (355M), ~2-2.5 min (1.5B, 3.1 GB), one process each,
#                   hidden behind the build; with SKIP_BUILD=1 on a fresh machine it is on the
#                   critical path (~2.5 min)
#   GPU tests       ~20-40 s (ava start; 124M f16 on the CPU and on the GPU)
#   benchmark       ~1.5-2.5 min: per model three loads of ours (one stream twice, N streams once),
#                   three of llama.cpp's tools, medians of 3; the 1.5B f16 model dominates
#   total           ~7-8.5 min
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t_start=$(date +%s)

budget="${BUDGET_S:-540}"
models="${MODELS:-124M-f16,355M-f16,1.5B-f16}"
streams="${STREAMS:-1,32,256}"
device="${DEVICE:-cuda:0}"
build="${BUILD_DIR:-build-gpu}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
jobs="${JOBS:-$(nproc)}"
graphs="${GGML_CUDA_GRAPHS:-ON}"
out="${OUT:-bench/gpu-results.md}"
if [ -d "$out" ]; then out="$out/gpu-results.md"; fi
case "$out" in /*) ;; *) out="$root/$out" ;; esac
log="${out%.md}.log"
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
addon="$build/Release/gpt2_node.node"

# everything printed also goes to the log
exec > >(tee "$log") 2>&1

# ---- phases, timing, exit ------------------------------------------------------------------------

phase_names=()
phase_secs=()
cur_phase=""
cur_start=$t_start
bg_pids=()
status_notes=()

phase() { # phase <name>: ends the current phase and starts the next ("" ends the last)
  local t
  t=$(date +%s)
  if [ -n "$cur_phase" ]; then
    phase_names+=("$cur_phase")
    phase_secs+=("$((t - cur_start))")
  fi
  cur_phase="$1"
  cur_start=$t
  if [ -n "$1" ]; then
    echo "=== [$(date -u +%H:%M:%S)] +$((t - t_start)) s of ${budget} s: $1"
  fi
}

finish() {
  local rc=$?
  set +e
  local failed_in="$cur_phase"
  phase ""
  local pid
  for pid in ${bg_pids[@]+"${bg_pids[@]}"}; do kill "$pid" 2>/dev/null; done
  local total=$(($(date +%s) - t_start))
  {
    echo
    echo "## Phases"
    echo
    echo "| phase | s |"
    echo "| --- | ---: |"
    local i
    for i in "${!phase_names[@]}"; do echo "| ${phase_names[$i]} | ${phase_secs[$i]} |"; done
    echo "| total | $total |"
    echo
    if [ "$rc" -eq 0 ]; then
      echo "Status: OK in $total s (budget $budget s$([ "$total" -gt "$budget" ] && echo ': OVER BUDGET'))."
    else
      echo "Status: FAILED (exit $rc) ${failed_in:+in phase \"$failed_in\" }after $total s."
    fi
    for n in ${status_notes[@]+"${status_notes[@]}"}; do echo "- $n"; done
  } >>"$out"
  rm -rf "$tmp"
  echo "gpu-check: $([ "$rc" -eq 0 ] && echo OK || echo "FAILED (exit $rc)${failed_in:+ in phase \"$failed_in\"}") after $total s; results in ${out#"$root"/}, log in ${log#"$root"/}"
  exit "$rc"
}
trap finish EXIT

die() { echo "gpu-check: $*" >&2; exit 2; }

# ---- preflight -------------------------------------------------------------------------------------

phase "preflight"
{
  echo "# gpt2-node GPU check (bench/gpu-check.sh)"
  echo
  echo "- Started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out"

command -v nvidia-smi >/dev/null || die "nvidia-smi is not on PATH: this script needs a machine with an NVIDIA GPU and its driver"
gpu_csv=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv) || die "nvidia-smi failed"
arch="${ARCH:-${CMAKE_CUDA_ARCHITECTURES:-}}"
if [ -z "$arch" ]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
  arch="${cap:-native}"
fi
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1 || true)

for p in node_modules/cmake-js node_modules/node-addon-api node_modules/node-api-headers node_modules/tsx node_modules/ava; do
  [ -e "$p" ] || die "$p is missing: run npm install first (GPT2_NODE_GPU=cpu npm install is enough; this script makes its own CUDA build)"
done
if [ ! -f vendor/llama.cpp/ggml/CMakeLists.txt ] || [ ! -f vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf ]; then
  node vendor/materialize.mjs
fi

nvcc_version="(not checked: SKIP_BUILD=1)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  command -v nvcc >/dev/null || die "nvcc is not on PATH (install the CUDA toolkit, or set PATH to include its bin/)"
  nvcc_version=$(nvcc --version | tail -1)
  # ggml's CUDA backend needs cuBLAS (as scripts/cuda-build-check.sh checks)
  cuda_home="${CUDA_HOME:-${CUDA_PATH:-$(nvcc -v --version 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)}}"
  cuda_home="${cuda_home:-/usr/local/cuda}"
  if ! ls "$cuda_home"/include/cublas_v2.h "$cuda_home"/targets/*/include/cublas_v2.h >/dev/null 2>&1; then
    die "the CUDA toolkit at $cuda_home has no cuBLAS (cublas_v2.h), which ggml's CUDA backend needs"
  fi
fi

{
  echo "- GPU (\`nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv\`):"
  echo
  while IFS= read -r line; do echo "      $line"; done <<<"$gpu_csv"
  echo
  echo "- Host: nproc $(nproc)${cpu_model:+, $cpu_model}, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), Node $(node --version)"
  echo "- CUDA: $nvcc_version"
  echo "- Build: ${build#"$root"/}/, CMAKE_CUDA_ARCHITECTURES=$arch, GGML_CUDA_GRAPHS=$graphs, GGML_CUDA_FA_ALL_QUANTS=OFF, $jobs jobs$([ "${SKIP_BUILD:-0}" = 1 ] && echo ' (SKIP_BUILD=1: not rebuilt)')"
  echo "- Run: MODELS=$models STREAMS=$streams DEVICE=$device BUDGET_S=$budget${QUICK:+ QUICK=$QUICK}"
  echo
} >>"$out"
echo "gpu-check: $(echo "$gpu_csv" | tail -n +2 | head -1); nproc $(nproc); arch $arch; results -> ${out#"$root"/}"

# ---- models, in the background -------------------------------------------------------------------

# one process per model (the generator is single-threaded), and one for the GPU tests' 124M f16
IFS=, read -r -a model_list <<<"$models"
model_pids=()
for m in "${model_list[@]}"; do
  node --import tsx bench/gpu-bench.ts --prepare --models "$m" >"$tmp/model-$m.log" 2>&1 &
  bg_pids+=("$!")
  model_pids+=("$!")
done
test_model_pid=""
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  node --import tsx bench/gpu-bench.ts --prepare --models "" --test-models >"$tmp/model-test.log" 2>&1 &
  bg_pids+=("$!")
  test_model_pid=$!
fi

wait_models() { # wait_models <pid> <log>...
  while [ $# -gt 0 ]; do
    if ! wait "$1"; then
      cat "$2"
      die "writing a model failed (see above)"
    fi
    cat "$2"
    shift 2
  done
}

# ---- build -----------------------------------------------------------------------------------------

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  phase "configure"
  node node_modules/cmake-js/bin/cmake-js configure -O "$build" \
    --CDGGML_CUDA=ON "--CDCMAKE_CUDA_ARCHITECTURES=$arch" --CDGPT2_NODE_LLAMA_TOOLS=ON \
    "--CDGGML_CUDA_GRAPHS=$graphs" --CDGGML_CUDA_FA_ALL_QUANTS=OFF
  phase "build"
  cmake --build "$build" --config Release --parallel "$jobs" --target gpt2_node gpt2-llama-ref llama-bench llama-batched-bench
fi
for f in "$addon" "$build/bin/llama-bench" "$build/bin/llama-batched-bench"; do
  [ -f "$f" ] || die "$f is missing (build failed, or SKIP_BUILD=1 without a build in ${build#"$root"/})"
done
# ggml's CUDA backend is linked into the .node (a local symbol after --exclude-libs: full table)
# (through a file: `nm | grep -q` would fail under pipefail when grep stops reading early)
nm -C "$addon" >"$tmp/nm.txt"
grep -q 'ggml_backend_cuda_reg' "$tmp/nm.txt" || die "$addon has no CUDA backend in it"
echo "gpu-check: $addon ($(du -h "$addon" | cut -f1)); CUDA libraries it needs: $(ldd "$addon" | grep -oE 'lib(cudart|cublas|cublasLt|cuda)\.so[^ ]*' | sort -u | tr '\n' ' ' || true)"

# ---- GPU tests ---------------------------------------------------------------------------------------

tests_ok=1
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  phase "models for the tests"
  wait_models "$test_model_pid" "$tmp/model-test.log"
  phase "GPU tests"
  tap="$tmp/devices.tap"
  ava_rc=0
  ref_tool="$build/gpt2-llama-ref"; [ -f "$ref_tool" ] || ref_tool="$build/Release/gpt2-llama-ref"
  GPT2_NODE_BINARY="$addon" GPT2_NODE_REF_TOOL="$ref_tool" GPT2_NODE_TEST_DEVICE="$device" \
    node_modules/.bin/ava --tap test/api/devices.test.ts test/device/ >"$tap" 2>&1 || ava_rc=$?
  cat "$tap"
  problems=()
  [ "$ava_rc" -eq 0 ] || problems+=("ava exited with $ava_rc")
  if grep -q '# SKIP' "$tap" || grep -q 'GPU tests: skipped' "$tap"; then problems+=("GPU tests were skipped: the build or the machine has no GPU device"); fi
  grep -qE '^ok [0-9]+ - .*f16: device logits agree' "$tap" || problems+=("'f16: device logits agree with the CPU's and with libllama's' did not pass")
  grep -qE '^ok [0-9]+ - .*batch invariance on the device' "$tap" || problems+=("'batch invariance on the device' did not pass")
  {
    echo "## GPU tests (\`GPT2_NODE_BINARY=${addon#"$root"/} GPT2_NODE_TEST_DEVICE=$device npx ava --tap test/api/devices.test.ts test/device/\`)"
    echo
    if [ ${#problems[@]} -eq 0 ]; then
      echo "Passed, GPU tests included (none skipped)."
    else
      tests_ok=0
      echo "FAILED:"
      for p in "${problems[@]}"; do echo "- $p"; done
    fi
    echo
    echo '```'
    grep -vE '^\s*$' "$tap" | tail -n 60 || true
    echo '```'
    echo
  } >>"$out"
  if [ "$tests_ok" -eq 0 ]; then
    status_notes+=("GPU tests failed: ${problems[*]}")
    echo "gpu-check: GPU tests FAILED (${problems[*]}); benchmarking anyway, the script exits 1 at the end"
  fi
fi

# ---- benchmark --------------------------------------------------------------------------------------

phase "models for the benchmark"
for i in "${!model_pids[@]}"; do
  wait_models "${model_pids[$i]}" "$tmp/model-${model_list[$i]}.log"
done
bg_pids=()

phase "benchmark"
left=$((budget - ($(date +%s) - t_start) - 20))
[ "$left" -ge 30 ] || left=30 # at least the first model's first groups
bench_rc=0
GPT2_NODE_BINARY="$addon" node --import tsx bench/gpu-bench.ts --device "$device" --models "$models" --streams "$streams" \
  --out "$out" --append --llama-bin-dir "$build/bin" --budget-s "$left" ${QUICK:+--quick} || bench_rc=$?
if [ "$bench_rc" -ne 0 ]; then status_notes+=("gpu-bench.ts exited with $bench_rc (see the notes under its tables and the log)"); fi

phase ""
# the run went through; a failed GPU test or benchmark group still fails it (the notes say which)
[ "$tests_ok" -eq 1 ] && [ "$bench_rc" -eq 0 ] || exit 1
