#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, CUDA, CMake and Python but no Node:
# builds the engine's C++ programs with the CUDA backend for this GPU's architecture, runs the
# C++ engine tests (CPU kernels on this machine's SIMD paths), then difflm_gpu_check: every
# CUDA kernel against its CPU twin, end-to-end ids on the LLaDA fixtures, kernel timings
# against the device's measured ceilings (table printed last).
# Usage: bash bench/gpu-check.sh [case-filter]     (output is also saved under $OUT when set)
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${DIFFLM_CUDA_ARCH:-}"
if [ -z "$arch" ]; then
  # e.g. "9.0" -> 90; the first GPU decides.
  arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
fi
# Hopper's wgmma GEMM needs the architecture-specific target (sm_90a).
if [ "$arch" = "90" ]; then arch="90a"; fi
jobs="$(nproc)"
echo "== building for sm_${arch} with ${jobs} jobs"
start=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDIFFLM_BUILD_ADDON=OFF \
  -DDIFFLM_BUILD_TESTS=ON -DDIFFLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${arch}" >/dev/null
cmake --build build-gpu -j"${jobs}" --target difflm_tests difflm_gpu_check 2>&1 | grep -vE '^\[' || true
test -x build-gpu/difflm_gpu_check
echo "== build took $(( $(date +%s) - start )) s"

out="${OUT:-}"
status=0
# A hang (a kernel that never finishes, a loop that never ends) must not eat the device time:
# the check is stopped after this many seconds.
limit="${DIFFLM_GPU_CHECK_TIMEOUT:-420}"

echo "== C++ engine tests (CPU)"
./build-gpu/difflm_tests | tail -n 3 || status=1
echo "== GPU check"
if [ -n "$out" ]; then
  timeout "$limit" ./build-gpu/difflm_gpu_check "${1:-}" 2>&1 | tee "$out/gpu-check.txt" ||
    status=1
else
  timeout "$limit" ./build-gpu/difflm_gpu_check "${1:-}" || status=1
fi
echo "== total $(( $(date +%s) - start )) s"
exit $status
