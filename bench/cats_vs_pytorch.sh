#!/usr/bin/env bash
# convkit against PyTorch on the cats-vs-dogs workloads, in one run on one machine.
# usage: bench/cats_vs_pytorch.sh [PYTHON_WITH_TORCH_AND_PILLOW] 
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl).
# Needs: cargo xtask setup done; CONVKIT_DATA set (cats_vs_dogs/ inside); a Python with torch
# and pillow (default: the venv of `cargo xtask setup`; `pip install pillow` into it).
# Set EPOCHS=N (default 30) for the from-scratch accuracy run; EPOCHS=0 skips it.
set -euo pipefail
source "$(dirname "$0")/common.sh"
data="$CONVKIT_DATA/cats_vs_dogs"
cargo build --release -q -p convkit-cli -p convkit --example bench
for round in 1 2; do
  ./target/release/examples/bench b --seconds 20 >> "$results"
  "$python" "$reference" b --seconds 20 2>/dev/null >> "$results"
done
# Decode + resize to 180x180: convkit on 1 thread and on all cores, PIL in one process.
./target/release/examples/bench d --data "$data/train" --threads 1 --seconds 10 >> "$results"
./target/release/examples/bench d --data "$data/train" --seconds 10 >> "$results"
"$python" "$reference" d --data "$data/train" --seconds 10 2>/dev/null >> "$results"
if (( ${EPOCHS:-30} > 0 )); then
  /usr/bin/time -a -o "$results" -f '{"engine": "convkit", "wall_s": %e, "peak_rss_kb": %M}' \
    ./target/release/convkit --precision fp32 train --data "$data" --epochs "${EPOCHS:-30}" --seed 1 --quiet --json \
    --out "runs/bench-cats-scratch-${EPOCHS:-30}" >> "$results"
fi
