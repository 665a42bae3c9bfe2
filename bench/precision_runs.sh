#!/usr/bin/env bash
# The chapter's accuracy runs in fp32 and bf16, convkit beside PyTorch, one after the other
# on one machine, each under /usr/bin/time (wall seconds, peak memory).
# usage: bench/precision_runs.sh [PYTHON_WITH_TORCH_AND_PILLOW]
# SECTIONS picks what runs (default: all of them, in this order):
#   mnist         convkit mnist, seeds 1-3, fp32 and bf16; PyTorch's mnist run, seed 1,
#                 fp32 and bf16 + channels_last
#   cats          the 30-epoch from-scratch run, seeds $CATS_SEEDS (default 1 2 3), convkit
#                 fp32 and PyTorch fp32 channels_last (PyTorch's faster fp32 variant of b)
#   efficientnet  EfficientNet-Lite0 at 224x224, frozen + augmentation (4 epochs), then the
#                 last 3 layers fine-tuned (3 epochs), in $PRECISION (default bf16)
#   vgg16         VGG16 feature extraction + the chapter's head, 20 epochs, in $PRECISION
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl);
# run folders go to runs/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
data="${CONVKIT_DATA:?set CONVKIT_DATA}"
precision="${PRECISION:-bf16}"
cargo build --release -q -p convkit-cli
convkit=./target/release/convkit
timed() { # timed LABEL COMMAND...: the command's JSON line, then its time as another
  local label=$1; shift
  /usr/bin/time -a -o "$results" -f "{\"run\": \"$label\", \"wall_s\": %e, \"peak_rss_kb\": %M}" \
    "$@" >> "$results"
}
for section in ${SECTIONS:-mnist cats efficientnet vgg16}; do
  case $section in
    mnist)
      for seed in 1 2 3; do
        for p in fp32 bf16; do
          timed "convkit mnist $p seed $seed" $convkit mnist --seed "$seed" --precision "$p" \
            --quiet --json --out "runs/precision-mnist-$p-seed$seed"
        done
      done
      timed "pytorch mnist fp32 seed 1" "$python" bench/torch_seeded.py mnist --seed 1 --data "$data/mnist"
      timed "pytorch mnist bf16 channels_last seed 1" "$python" bench/torch_seeded.py mnist --seed 1 \
        --data "$data/mnist" --bf16 --channels-last
      ;;
    cats)
      for seed in ${CATS_SEEDS:-1 2 3}; do
        timed "convkit cats fp32 seed $seed" $convkit train --data "$data/cats_vs_dogs" --epochs 30 \
          --seed "$seed" --precision fp32 --quiet --json --out "runs/precision-cats-fp32-seed$seed"
        timed "pytorch cats fp32 channels_last seed $seed" "$python" bench/torch_seeded.py cats \
          --seed "$seed" --data "$data/cats_vs_dogs" --epochs 30 --channels-last
      done
      ;;
    efficientnet)
      run="runs/precision-efficientnet-$precision"
      timed "convkit efficientnet_lite0 224 frozen+augment $precision" $convkit train \
        --data "$data/cats_vs_dogs" --base efficientnet_lite0 --image-size 224 --augment \
        --epochs 4 --seed 1 --precision "$precision" --quiet --json --out "$run"
      timed "convkit efficientnet_lite0 224 fine-tune last 3 $precision" $convkit finetune "$run" \
        --unfreeze-last 3 --epochs 3 --precision "$precision" --quiet --json --out "$run-finetune"
      ;;
    vgg16)
      timed "convkit vgg16 features $precision" $convkit train --data "$data/cats_vs_dogs" \
        --base vgg16 --mode features --epochs 20 --seed 1 --precision "$precision" --quiet --json \
        --features-cache "runs/precision-features-cache" --out "runs/precision-vgg16-features-$precision"
      ;;
    *) echo "unknown section $section" >&2; exit 2 ;;
  esac
done
