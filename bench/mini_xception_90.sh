#!/bin/bash
# The from-scratch 90% row (issue 21): the mini-Xception with the chapter's augmentation and
# the fast recipe, one run after the other on an otherwise idle machine, 2 threads, each
# variant for every seed in SEEDS. Writes OUT/<variant>-s<seed>/ (the run folder),
# OUT/<variant>-s<seed>.json (its metrics) and .time (/usr/bin/time -v), then prints one
# line per run: validation of the kept (last) epoch, the first epoch at 90%, training
# seconds and wall seconds. Runs already finished are skipped, so the script continues
# after an interruption (an interrupted run is resumed; its wall seconds are then those of
# the last invocation only).
#
# usage: CONVKIT=target/release/convkit OUT=runs/mx90 SEEDS="1 2" PRECISION=bf16 \
#          bench/mini_xception_90.sh   (data: $CONVKIT_DATA/cats_vs_dogs)
# VARIANTS="s128-recipe" runs only the named variants (default: all three, about 25
# minutes each on a 2-core CPU with bf16 units).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CONVKIT=${CONVKIT:-$here/../target/release/convkit}
OUT=${OUT:-runs/mx90}
SEEDS=${SEEDS:-1 2}
PRECISION=${PRECISION:-auto}
DATA=${CONVKIT_DATA:?set CONVKIT_DATA to the folder holding cats_vs_dogs}/cats_vs_dogs
mkdir -p "$OUT"

# name|flags beside `train --model mini-xception --augment --recipe fast`; the recipe at 128
# is 90 epochs growing the images from 80 pixels, with mixup 0.2
variants=(
  "s128-recipe|--image-size 128"
  "s128-pr80-e90-nomixup|--image-size 128 --mixup 0"
  "s128-e80-plain|--image-size 128 --epochs 80 --mixup 0 --progressive-resizing 0"
)

if [[ -n "${VARIANTS:-}" ]]; then
  chosen=()
  for variant in "${variants[@]}"; do
    [[ " $VARIANTS " == *" ${variant%%|*} "* ]] && chosen+=("$variant")
  done
  [[ ${#chosen[@]} -gt 0 ]] || { echo "VARIANTS names none of: ${variants[*]%%|*}" >&2; exit 2; }
  variants=("${chosen[@]}")
fi

for seed in $SEEDS; do
  for variant in "${variants[@]}"; do
    name=${variant%%|*}
    flags=${variant#*|}
    run="$OUT/$name-s$seed"
    [[ -f "$run/metrics.json" ]] && continue
    if [[ -f "$run/run.json" ]]; then
      start=(train --resume "$run")
    else
      # shellcheck disable=SC2206
      start=(train --data "$DATA" --model mini-xception --augment --recipe fast $flags
        --seed "$seed" --out "$run")
    fi
    /usr/bin/time -v "$CONVKIT" --threads 2 --precision "$PRECISION" "${start[@]}" --quiet \
      --json > "$run.json" 2> "$run.time"
  done
done

for seed in $SEEDS; do
  for variant in "${variants[@]}"; do
    run="$OUT/${variant%%|*}-s$seed"
    [[ -f "$run/history.csv" ]] || continue
    python3 - "$run" <<'EOF'
import csv, re, sys
run = sys.argv[1]
rows = list(csv.DictReader(open(f"{run}/history.csv")))
first = next((r["epoch"] for r in rows if float(r["val_accuracy"]) >= 0.9), "never")
seconds = sum(float(r["seconds"]) for r in rows)
wall = "?"
try:
    text = open(f"{run}.time").read()
    h, m, s = ([0] + [float(x) for x in re.search(r"Elapsed.*: (\S+)", text).group(1).split(":")])[-3:]
    wall = f"{h * 3600 + m * 60 + s:.0f}"
except (OSError, AttributeError):
    pass
print(f"{run}: {len(rows)} epochs, last {float(rows[-1]['val_accuracy']):.3f}, "
      f"first at 90%: {first}, training s {seconds:.0f}, wall s {wall}")
EOF
  done
done
