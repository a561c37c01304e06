#!/usr/bin/env bash
# Runs the SIMT emulator (this folder): its self-test, then the GPU check, whose CUDA kernels, CUDA
# backend and end-to-end fixture runs execute on the CPU against the CPU backend, so a machine
# with nvcc but no GPU (CI) runs them on every change. Two processes (the end-to-end cases and the
# rest) share the cores; then the GEMM and attention cases again as compute capability 7.5 and
# 8.6 devices, whose kernels differ (GEMM: TcSync and the float32 path for BF16, TcSmall;
# attention: CUDA cores only on 7.5, the tensor-core tiles in 8.6's 99 KiB of shared memory). Only failures, skips and
# the summaries of the check are printed.
# Usage: bash test/cuda-emu/run.sh [build-dir]
set -euo pipefail
bin="${1:-build}/difflm_gpu_check_emu"
if [ ! -x "$bin" ]; then
  if command -v nvcc >/dev/null; then
    echo "FAIL  $bin was not built although nvcc is present" >&2
    exit 1
  fi
  echo "difflm_gpu_check_emu: not built (no nvcc, so no CUDA backend to check)"
  exit 0
fi
# The emulator's own tests first: a check that passes proves little if faults went unreported.
"${bin%/*}/difflm_emu_self_test"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
status=0
"$bin" e2e >"$logs/e2e.txt" 2>&1 &
e2e=$!
"$bin" '!e2e' >"$logs/kernels.txt" 2>&1 || status=1
wait "$e2e" || status=1
DIFFLM_EMU_CC=75 "$bin" gemm_ >"$logs/gemm-sm75.txt" 2>&1 || status=1
DIFFLM_EMU_CC=86 "$bin" gemm_ >"$logs/gemm-sm86.txt" 2>&1 || status=1
DIFFLM_EMU_CC=75 "$bin" attention_ >"$logs/attention-sm75.txt" 2>&1 || status=1
DIFFLM_EMU_CC=86 "$bin" attention_ >"$logs/attention-sm86.txt" 2>&1 || status=1
for part in kernels e2e gemm-sm75 gemm-sm86 attention-sm75 attention-sm86; do
  echo "== emulated GPU check: $part"
  grep -vE '^(ok|==) ' "$logs/$part.txt" || true
done
exit $status
