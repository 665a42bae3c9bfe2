#!/usr/bin/env bash
# The decoded images in memory against the on-disk cache (`train --storage memory|disk`),
# and against a PyTorch DataLoader with 2 workers decoding the same JPEGs on the fly, with
# the same training step (the chapter's cats-vs-dogs convnet, batch 32, 2 threads): one
# training epoch of the 2,000 cats-vs-dogs images each, in one run on one machine.
# usage: bench/storage_vs_pytorch.sh [PYTHON_WITH_TORCH]
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl):
# convkit's `--json` report (images_per_second is the training loop's; peak_memory_mib the
# process's VmHWM) and the reference's line. Run on a quiet machine.
set -euo pipefail
source "$(dirname "$0")/common.sh"
convkit="${CONVKIT_BIN:-./target/release/convkit}"
cats="$CONVKIT_DATA/cats_vs_dogs"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/convkit-storage.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for round in $(seq 1 "${ROUNDS:-1}"); do
  for storage in memory disk; do
    # The first disk run builds the cache (outside the timed training loop).
    "$convkit" --threads 2 --device cpu --precision fp32 train --data "$cats" --epochs 1 --quiet --json \
      --storage "$storage" --decoded-cache "$tmp/decoded" --out "$tmp/$storage-$round" \
      | "$python" -c 'import json,sys; o=json.loads(sys.stdin.read().splitlines()[-1]); print(json.dumps({"engine": "convkit", "bench": "storage", "storage": sys.argv[1], "images_per_second": o["images_per_second"], "peak_memory_mib": o["peak_memory_mib"], "load_seconds": o["load_seconds"]}))' "$storage" \
      | tee -a "$results"
  done
  "$python" "$(dirname "$0")/torch_dataloader_reference.py" --data "$cats/train" --workers 2 \
    --threads 2 --train 2>/dev/null | tee -a "$results"
done
