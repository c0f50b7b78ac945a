#!/usr/bin/env bash
# Compile-only check of the CUDA build, for machines with the CUDA toolkit but no GPU (not run
# by CI: ggml's CUDA kernels take the better part of an hour on two cores). Configures ggml with
# its CUDA backend for one architecture, compiles it, links gpt2_node.node into its own build
# folder (the CPU build in build/ is left alone) and checks that the .node carries the CUDA
# backend and links against the CUDA runtime.
#
#   bash scripts/cuda-build-check.sh            # sm_90 (H100/H200), into build-cuda/
#   CMAKE_CUDA_ARCHITECTURES=89 BUILD_DIR=/tmp/b bash scripts/cuda-build-check.sh
#
# A toolkit without cuBLAS (ggml's CUDA backend needs it): CUBLAS_ROOT names a folder with
# include/cublas*.h and lib/libcublas.so + lib/libcublasLt.so (stubs are enough to link) taken
# from another CUDA install. Without the driver library (libcuda.so: no driver, no stubs), the
# build uses GGML_CUDA_NO_VMM=ON, ggml's option that drops its only direct driver-API use.
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${CMAKE_CUDA_ARCHITECTURES:-90}"
out="${BUILD_DIR:-build-cuda}"
jobs="${JOBS:-$(nproc)}"

command -v nvcc >/dev/null || { echo "cuda-build-check: nvcc is not on PATH (install the CUDA toolkit)" >&2; exit 1; }
# ggml's CUDA backend needs cuBLAS; some toolkit installs (this project's dev machines) lack it,
# and the configure step then fails with an unhelpful "CUDA::cublas not found".
cuda_home="${CUDA_HOME:-${CUDA_PATH:-$(nvcc -v --version 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)}}"
cuda_home="${cuda_home:-/usr/local/cuda}"
extra=()
if [ -n "${CUBLAS_ROOT:-}" ]; then
  for f in "$CUBLAS_ROOT/include/cublas_v2.h" "$CUBLAS_ROOT/lib/libcublas.so" "$CUBLAS_ROOT/lib/libcublasLt.so"; do
    test -e "$f" || { echo "cuda-build-check: CUBLAS_ROOT lacks $f" >&2; exit 2; }
  done
  extra+=("--CDCUDA_cublas_LIBRARY=$CUBLAS_ROOT/lib/libcublas.so" "--CDCUDA_cublasLt_LIBRARY=$CUBLAS_ROOT/lib/libcublasLt.so"
          "--CDCMAKE_CUDA_FLAGS=-I$CUBLAS_ROOT/include")
  echo "cuda-build-check: cuBLAS from $CUBLAS_ROOT"
elif ! ls "$cuda_home"/include/cublas_v2.h "$cuda_home"/targets/*/include/cublas_v2.h >/dev/null 2>&1; then
  echo "cuda-build-check: the CUDA toolkit at $cuda_home has no cuBLAS (cublas_v2.h, libcublas), which ggml's" >&2
  echo "CUDA backend needs. Install the toolkit's cuBLAS component (e.g. the libcublas-dev package), or set" >&2
  echo "CUBLAS_ROOT (see the header of this script), and rerun." >&2
  exit 2
fi
if ! ls "$cuda_home"/lib64/libcuda.so* "$cuda_home"/lib64/stubs/libcuda.so* /usr/lib/x86_64-linux-gnu/libcuda.so* >/dev/null 2>&1; then
  echo "cuda-build-check: no libcuda.so (driver or stub): building with GGML_CUDA_NO_VMM=ON"
  extra+=("--CDGGML_CUDA_NO_VMM=ON")
fi
echo "cuda-build-check: $(nvcc --version | tail -1), sm_${arch}, ${jobs} jobs, into ${out}/"

node vendor/materialize.mjs
start=$(date +%s)
node node_modules/cmake-js/bin/cmake-js compile -O "$out" -p "$jobs" \
  --CDGGML_CUDA=ON "--CDCMAKE_CUDA_ARCHITECTURES=${arch}" "${extra[@]}"
end=$(date +%s)

addon="$out/Release/gpt2_node.node"
test -f "$addon" || { echo "cuda-build-check: $addon was not produced" >&2; exit 1; }
# ggml's CUDA backend is linked in: its registration function is in the binary (local symbol
# after --exclude-libs, so look in the full symbol table).
# (grep -c, not -q: with pipefail, -q's early exit would fail nm with SIGPIPE)
n_cuda=$(nm -C "$addon" | grep -c 'ggml_backend_cuda_reg' || true)
[ "$n_cuda" -gt 0 ] || { echo "cuda-build-check: no CUDA backend in $addon" >&2; exit 1; }
echo "cuda-build-check: dynamic CUDA libraries the .node needs:"
ldd "$addon" | grep -E 'cuda|cublas' || true
echo "cuda-build-check: OK: $addon ($(du -h "$addon" | cut -f1)) built in $((end - start)) s"
