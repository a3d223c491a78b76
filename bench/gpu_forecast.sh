#!/usr/bin/env bash
# The GPU time forecast against the time taken, on one GPU: coffee's rag and finetune arms (answering-heavy and
# training-heavy) with a SmolLM2-shaped and a Llama-3.1-8B-shaped (4 layers) model, transformers engine. The forecast
# prices FLOPs at GPU_TRAIN_EFFICIENCY and GPU_ANSWER_EFFICIENCY of a measured bf16 matmul probe
# (harness/run/forecast.py): this prints what those factors would have to be for the forecast to match.
#   bash bench/gpu_forecast.sh [OUT_DIR]   (GPU_MODELS=DIR reuses bench/gpu_models.py's folders; GPU_MODELS_SEED as
#                                          in bench/gpu_check.sh; LIMIT seconds per run, default 200)
set -uo pipefail
py=${PYTHON:-python3}
out=$(realpath -m "${1:-gpu_forecast}")
m=${GPU_MODELS:-$out/models}
mkdir -p "$out"
[ -d "$m/smollm2" ] || $py bench/gpu_models.py "$m" ${GPU_MODELS_SEED:+"$GPU_MODELS_SEED"} >"$out/models.log" 2>&1
emb=()
[ -d "$m/minilm" ] && emb=(--embedder "$m/minilm")
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
for model in smollm2 llama8b-4l; do
  t0=$SECONDS
  timeout "${LIMIT:-200}" $py -m harness run --task coffee --device cuda --engine transformers --model "$m/$model" \
    "${emb[@]}" --pipelines rag,finetune --results-dir "$out/results-$model" --cache-dir "$out/cache-$model" \
    >"$out/$model.log" 2>&1
  echo "== $model: rc $?, $((SECONDS - t0)) s"
  grep -E '^time estimate' "$out/$model.log"
  costs=$(ls "$out/results-$model"/coffee/*/costs.json 2>/dev/null | head -n 1)
  [ -n "$costs" ] && $py - "$costs" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for arm, c in data["costs"].items():
    print(f"  {arm}: train {c.get('train_seconds') or 0:.1f} s for {c.get('train_tokens') or 0} tokens, "
          f"build {c.get('build_total_s') or 0:.1f} s, latency mean {c.get('latency_mean_s') or 0:.3f} s, "
          f"new tokens mean {c.get('new_tokens_mean')}, peak GPU MB {round(c.get('peak_gpu_mb') or 0)}")
print("  timings:", json.dumps(data.get("timings"))[:600])
PY
done
