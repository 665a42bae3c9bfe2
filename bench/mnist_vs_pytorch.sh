#!/usr/bin/env bash
# convkit against PyTorch on the MNIST workloads, in one run on one machine.
# usage: bench/mnist_vs_pytorch.sh [PYTHON_WITH_TORCH] 
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl).
# Needs: cargo xtask setup done; CONVKIT_DATA set; a Python with torch (default: the venv
# that `cargo xtask setup` made, which has torch 2.13). Run on a quiet machine.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cargo build --release -q -p convkit-cli -p convkit --example bench
for round in 1 2; do
  for w in a a_inf; do
    ./target/release/examples/bench "$w" --seconds 10 >> "$results"
    "$python" "$reference" "$w" --seconds 10 2>/dev/null >> "$results"
  done
done
for seed in 1 2 3; do
  /usr/bin/time -a -o "$results" -f "{\"seed\": $seed, \"engine\": \"convkit\", \"wall_s\": %e, \"peak_rss_kb\": %M}" \
    ./target/release/convkit --precision fp32 mnist --quiet --json --seed "$seed" --out "runs/bench-mnist-seed$seed" >> "$results"
done
/usr/bin/time -a -o "$results" -f '{"engine": "pytorch", "wall_s": %e, "peak_rss_kb": %M}' \
  "$python" "$reference" mnist --data "$CONVKIT_DATA/mnist" 2>/dev/null >> "$results"
