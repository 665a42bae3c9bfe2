#!/usr/bin/env bash
# convkit against PyTorch on every speed workload, in fp32 and bf16, in one run on one
# machine: each round runs, per workload, convkit fp32, PyTorch fp32 (NCHW and
# channels_last), convkit bf16, PyTorch bf16 autocast (NCHW and channels_last), one process
# each, then `torch_reference.py peak`. `bench/speed_table.py` turns the results into the
# table of BENCHMARKS.md (medians over the rounds, ratios to PyTorch's fastest variant).
# usage: bench/speed_vs_pytorch.sh [PYTHON_WITH_TORCH]
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl).
# ROUNDS (default 2), SECONDS_PER_RUN (default 6), WORKLOADS (default: all), PRECISIONS
# (default: fp32 bf16) and PEAK (default 1; 0 skips it) tune it.
set -euo pipefail
source "$(dirname "$0")/common.sh"
seconds="${SECONDS_PER_RUN:-6}"
workloads="${WORKLOADS:-a a_inf b c c_mobilenet_v2 c_efficientnet_lite0 e}"
cargo build --release -q -p convkit --example bench
convkit() { ./target/release/examples/bench "$@" --seconds "$seconds" >> "$results"; }
pytorch() {
  local w=$1; shift
  case $w in
    c_*) "$python" bench/backbones_reference.py "${w#c_}" --seconds "$seconds" "$@" ;;
    e) "$python" bench/backbones_reference.py e --seconds "$seconds" "$@" ;;
    *) "$python" "$reference" "$w" --seconds "$seconds" "$@" ;;
  esac 2>/dev/null >> "$results"
}
for round in $(seq "${ROUNDS:-2}"); do
  for w in $workloads; do
    case $w in
      c_*) args=(c --backbone "${w#c_}") ;;
      *) args=("$w") ;;
    esac
    for precision in ${PRECISIONS:-fp32 bf16}; do
      flag=()
      [[ $precision == bf16 ]] && flag=(--bf16)
      convkit "${args[@]}" --precision "$precision"
      pytorch "$w" "${flag[@]}"
      pytorch "$w" --channels-last "${flag[@]}"
    done
  done
done
if [[ ${PEAK:-1} == 1 ]]; then
  "$python" "$reference" peak --seconds "$seconds" 2>/dev/null >> "$results"
fi
