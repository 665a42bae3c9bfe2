#!/bin/bash
# convkit and PyTorch fit the from-scratch row with the same fast recipe, started together,
# one thread each (so both share the machine alike), bf16. Writes OUT/convkit.json (convkit's
# metrics), OUT/convkit/ (its run folder), OUT/torch.jsonl (one line per epoch, then the
# epoch and time at which --target was reached) and /usr/bin/time -v of each in OUT/*.time.
#
# usage: CONVKIT=target/release/convkit PYTHON=python3 OUT=runs/side SEED=1 \
#          bench/fast_recipe_side_by_side.sh   (data: $CONVKIT_DATA/cats_vs_dogs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CONVKIT=${CONVKIT:-$here/../target/release/convkit}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/side-by-side}
SEED=${SEED:-1}
TARGET=${TARGET:-0.72}
DATA=${CONVKIT_DATA:?set CONVKIT_DATA to the folder holding cats_vs_dogs}/cats_vs_dogs
mkdir -p "$OUT"
/usr/bin/time -v "$CONVKIT" --threads 1 --precision bf16 train --data "$DATA" --recipe fast \
  --seed "$SEED" --out "$OUT/convkit" --quiet --json > "$OUT/convkit.json" 2> "$OUT/convkit.time" &
/usr/bin/time -v "$PYTHON" "$here/fast_recipe_torch.py" --data "$DATA" --seed "$SEED" --threads 1 \
  --bf16 --channels-last --target "$TARGET" > "$OUT/torch.jsonl" 2> "$OUT/torch.time" &
wait
