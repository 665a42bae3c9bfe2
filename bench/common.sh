# Sourced by the bench scripts, with their arguments: works from the repository root and
# sets `python` (the first argument, default the venv of `cargo xtask setup`), `reference`
# (../shared/bench/torch_reference.py, found through $CONVKIT_DATA) and `results` ($RESULTS,
# default bench-results.jsonl, where every run appends its JSON line).
cd "$(dirname "$0")/.."
python="${1:-$HOME/.cache/convkit/torch-2.13.0/bin/python}"
reference="${CONVKIT_DATA:?set CONVKIT_DATA}/../bench/torch_reference.py"
[[ -f $reference ]] || reference="../shared/bench/torch_reference.py"
export PYTHONWARNINGS=ignore
results="${RESULTS:-bench-results.jsonl}"
echo "results: $results"
