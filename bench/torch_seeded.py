#!/usr/bin/env python3
"""The chapter's runs in ../shared/bench/torch_reference.py (`mnist`, `cats`) with a seed of
one's choosing: that script always seeds torch with 1, so this one imports it, sets the
speed options and the seed, and calls the same run functions.

usage: torch_seeded.py mnist|cats --seed S --data DIR [--epochs N] [--channels-last] [--bf16]
Prints one JSON line (the reference's fields, plus seed and, for cats, the validation
accuracy of the epoch with the lowest validation loss).
"""
import argparse, json, sys

import torch

from shared_reference import ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["mnist", "cats"])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    ref.CHANNELS_LAST, ref.BF16 = a.channels_last, a.bf16
    torch.manual_seed(a.seed)
    out = {"engine": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
           "workload": a.workload, "seed": a.seed, "channels_last": a.channels_last, "bf16": a.bf16}
    if a.workload == "mnist":
        out.update(ref.mnist_run(a.data))
    else:
        out.update(ref.cats_run(a.data, None, a.epochs))
        best = min(out["history"], key=lambda h: h[1])
        out["best_epoch"], out["best_val_accuracy"] = best[0], best[2]
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
