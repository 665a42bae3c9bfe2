#!/usr/bin/env bash
# convkit's data-parallel training against PyTorch DDP (Gloo, CPU), in one run on one machine.
# usage: bench/data_parallel_vs_pytorch.sh [PYTHON_WITH_TORCH_AND_PILLOW]
# Results are appended, one JSON object a line, to $RESULTS (default: bench-results.jsonl),
# and a table (convkit vs PyTorch per configuration) is printed at the end.
# Configurations, one epoch each of MNIST (batch 64 per process) and of the cats-vs-dogs
# small convnet (batch 32 per process, the 2000 training JPEGs):
#   1x2  one process with 2 threads (convkit --threads 2; the PyTorch script without a
#        launcher, a DDP world of one)
#   2x1  torchrun --standalone --nproc-per-node=2, 1 thread per process
# images/s are global (all processes together); convkit's from its --json report
# (`images_per_second`), PyTorch's from bench/torch_ddp_reference.py (the epoch's, plus its
# allreduce share, see that script).
# Needs: cargo xtask setup done; CONVKIT_DATA set (mnist/ and cats_vs_dogs/ inside); a Python
# with torch and pillow (default: the venv of `cargo xtask setup`), its torchrun next to it
# (or $TORCHRUN). Run on a quiet machine: 2 processes x 1 thread need 2 free cores.
# SKIP_CONVKIT=1 runs only the PyTorch part (no cargo build); SKIP_PYTORCH=1 only convkit.
# ROUNDS=N (default 1) repeats every configuration, interleaved. CONVKIT_BIN overrides
# ./target/release/convkit.
set -euo pipefail
source "$(dirname "$0")/common.sh"
torchrun="${TORCHRUN:-$(dirname "$python")/torchrun}"
convkit="${CONVKIT_BIN:-./target/release/convkit}"
ddp_ref="bench/torch_ddp_reference.py"
cats="$CONVKIT_DATA/cats_vs_dogs"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/convkit-dp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
table="$tmp/table.tsv"
: > "$table"

if [[ -z ${SKIP_CONVKIT:-} && -z ${CONVKIT_BIN:-} ]]; then
  cargo build --release -q -p convkit-cli
fi

# images_per_second of a convkit --json report: the last stdout line that parses as a JSON
# object with the field, else metrics.json under the run folder.
convkit_ips() {  # STDOUT_FILE RUN_DIR
  "$python" - "$1" "$2" <<'EOF'
import json, os, sys
for line in reversed(open(sys.argv[1]).read().splitlines()):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and "images_per_second" in o:
        print(o["images_per_second"]); sys.exit()
for root, _, files in os.walk(sys.argv[2]):
    if "metrics.json" in files:
        o = json.load(open(os.path.join(root, "metrics.json")))
        if "images_per_second" in o:
            print(o["images_per_second"]); sys.exit()
sys.exit("no images_per_second in " + sys.argv[1] + " or under " + sys.argv[2])
EOF
}

# convkit WORKLOAD CONFIG: one epoch, its JSON report tagged and appended to $results.
convkit_run() {
  local workload=$1 config=$2 dir="$tmp/convkit-$1-$2-$round" args launch=()
  case $workload in
    mnist) args=(mnist --epochs 1 --quiet --json --out "$dir") ;;
    b) args=(train --data "$cats" --epochs 1 --quiet --json --out "$dir") ;;
  esac
  case $config in
    1x2) launch=("$convkit" --threads 2 --device cpu --precision fp32) ;;
    2x1) launch=("$torchrun" --standalone --nproc-per-node=2 --no-python "$convkit" --threads 1 --device cpu --precision fp32) ;;
  esac
  # CONVKIT_DIST_PROFILE=1: rank 0 prints the gradient allreduce's share of each epoch.
  CONVKIT_DIST_PROFILE=1 "${launch[@]}" "${args[@]}" > "$dir.out" 2> "$dir.err"
  local ips share
  ips=$(convkit_ips "$dir.out" "$dir")
  share=$(sed -n 's/.*gradient allreduce .*(\([0-9.]*\)%).*/\1/p' "$dir.err" | tail -n 1)
  "$python" - "$dir.out" "$workload" "$config" "$ips" "${share:-0}" >> "$results" <<'EOF'
import json, sys
out, workload, config, ips, share = sys.argv[1:]
report = {}
for line in reversed(open(out).read().splitlines()):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and "images_per_second" in o:
        report = o; break
world, threads = map(int, config.split("x"))
print(json.dumps({"engine": "convkit", "bench": "data_parallel", "workload": workload, "world_size": world,
                  "threads_per_process": threads, "batch_per_process": 64 if workload == "mnist" else 32,
                  "images_per_second": float(ips), "allreduce_share": float(share) / 100,
                  "report": report}))
EOF
  printf '%s\t%s\tconvkit\t%s\t%s\n' "$workload" "$config" "$ips" "$(awk "BEGIN{print ${share:-0}/100}")" >> "$table"
}

# pytorch WORKLOAD CONFIG: the DDP reference, its JSON line tagged and appended to $results.
pytorch_run() {
  local workload=$1 config=$2 line
  case $config in
    1x2) line=$("$python" "$ddp_ref" "$workload" --data "$CONVKIT_DATA" --threads 2 2>/dev/null) ;;
    2x1) line=$(OMP_NUM_THREADS=1 "$torchrun" --standalone --nproc-per-node=2 \
                "$ddp_ref" "$workload" --data "$CONVKIT_DATA" --threads 1 2>/dev/null | tail -n 1) ;;
  esac
  line=$("$python" -c 'import json,sys; o=json.loads(sys.argv[1]); o["bench"]="data_parallel"; print(json.dumps(o))' "$line")
  echo "$line" >> "$results"
  "$python" -c 'import json,sys; o=json.loads(sys.argv[1]); print(sys.argv[2], sys.argv[3], "pytorch", o["images_per_second"], o.get("allreduce_share", ""), sep="\t")' \
    "$line" "$workload" "$config" >> "$table"
}

for round in $(seq 1 "${ROUNDS:-1}"); do
  for workload in mnist b; do
    for config in 1x2 2x1; do
      [[ -n ${SKIP_CONVKIT:-} ]] || convkit_run "$workload" "$config"
      [[ -n ${SKIP_PYTORCH:-} ]] || pytorch_run "$workload" "$config"
    done
  done
done

# The table: mean images/s per (workload, configuration, engine), PyTorch's allreduce share.
"$python" - "$table" <<'EOF'
import collections, sys
rows = collections.defaultdict(list)
share = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, c, e, ips, s = line.rstrip("\n").split("\t")
    rows[w, c, e].append(float(ips))
    if s:
        share[w, c, e].append(float(s))
mean = lambda v: sum(v) / len(v) if v else None
fmt = lambda v: f"{v:.1f}" if v is not None else "-"
print(f"{'workload':<9}{'procs x threads':<17}{'convkit img/s':>14}{'pytorch img/s':>15}{'ratio':>8}{'convkit allreduce':>19}{'torch allreduce':>17}")
for w in ("mnist", "b"):
    for c in ("1x2", "2x1"):
        k, p = mean(rows[w, c, "convkit"]), mean(rows[w, c, "pytorch"])
        ratio = f"{k / p:.2f}" if k and p else "-"
        pct = lambda s: f"{100 * s:.1f}%" if s is not None else "-"
        ks, ps = mean(share[w, c, "convkit"]), mean(share[w, c, "pytorch"])
        print(f"{w:<9}{c:<17}{fmt(k):>14}{fmt(p):>15}{ratio:>8}{pct(ks):>19}{pct(ps):>17}")
EOF
