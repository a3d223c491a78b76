#!/usr/bin/env bash
# The transformers path on a GPU, end to end: the tiny test task with tiny random models (bench/tiny_models.py),
# every arm trained and answered with --device cuda, then again from the same cache (nothing retrained).
# Plumbing only: these models answer nonsense, and nothing here is a speed or accuracy figure.
#   bash bench/cuda_smoke.sh MODELS_DIR [harness run options...]
set -euo pipefail
models=$1; shift
work=$(mktemp -d)
for pass in 1 2; do
  python3 -m harness run --task tiny --tasks-dir tests/fixtures --model "$models/tinylm" --embedder "$models/tinyst" \
    --device cuda --results-dir "$work/results$pass" --cache-dir "$work/cache" "$@" >"$work/log$pass" 2>&1 ||
    { tail -n 30 "$work/log$pass"; exit 1; }
  tr '\r' '\n' <"$work/log$pass" | grep -E '^(memory estimate|training|continuing|report:)' || true
done
grep -o '"device": "[^"]*"\|"dtype": "[^"]*"\|"training_dtype": "[^"]*"' "$work"/results2/tiny/*/run.json
grep -c '"adapter_cached": true' "$work"/results2/tiny/*/costs.json || true
