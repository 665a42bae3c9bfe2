#!/usr/bin/env bash
# convkit against PyTorch on backbone inference (batch 16, 180x180), in one run on one machine:
# VGG16's base (workload c of shared/bench/torch_reference.py), MobileNetV2, EfficientNet-Lite0.
# usage: bench/backbones_vs_pytorch.sh [PYTHON_WITH_TORCH]
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl).
set -euo pipefail
source "$(dirname "$0")/common.sh"
seconds="${SECONDS_PER_RUN:-15}"
cargo build --release -q -p convkit --example bench
for round in 1 2; do
  ./target/release/examples/bench c --seconds "$seconds" >> "$results"
  "$python" "$reference" c --seconds "$seconds" 2>/dev/null >> "$results"
  for backbone in mobilenet_v2 efficientnet_lite0; do
    ./target/release/examples/bench c --backbone "$backbone" --seconds "$seconds" >> "$results"
    "$python" bench/backbones_reference.py "$backbone" --seconds "$seconds" 2>/dev/null >> "$results"
  done
done
