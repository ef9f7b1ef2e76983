#!/usr/bin/env bash
# FSDP2 on several GPUs (the multi-GPU issue): LoRA SFT and GRPO of an architecture that does not fit one
# card, sharded by configs/accelerate/fsdp2.yaml. Random-init weights (throughput does not depend on the
# values) are built shard by shard into WORK once and reused by every step.
#
# Steps, each under its own time limit, each logged to OUTDIR/log.txt, results packed into
# OUTDIR/results.tar after every step (what a killed run had finished still comes back):
#   smoke   qwen2.5-0.5b: LoRA SFT on 1 GPU and under FSDP2 on 2, the adapters' files compared; full
#           fine-tuning and GRPO under FSDP2 on 2
#   build   ARCH: the random-init weights, shard by shard (once per WORK)
#   sft2    ARCH: LoRA SFT under FSDP2 on 2 GPUs
#   sft4    ARCH: the same on 4, scaled against the newest 2-GPU result
#   grpo    ARCH: GRPO under FSDP2 on 4 GPUs (generation through the sharded policy)
#   zero    qwen2.5-0.5b: LoRA SFT and GRPO under DeepSpeed ZeRO-3 and ZeRO-2 on 2 GPUs (WHEELS_DS: deepspeed)
#   evaluate qwen2.5-7b on one GPU: predict's letter path against evaluate's letter, circular, cloze, calibrated
#   predict ARCH: `mcqflow predict` loads the FSDP2-trained adapter on one GPU, unchanged
#
# Usage: WHEELS=.whl bench/fsdp_gpus.sh OUTDIR WORK ARCH STEP [STEP ...]
set -uo pipefail
OUTDIR=${1:?output folder}; WORK=${2:?work folder}; ARCH=${3:?architecture}; shift 3
mkdir -p "$OUTDIR" "$WORK/results"
LOG=$OUTDIR/log.txt
say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
pack() { tar -C "$WORK" -cf "$OUTDIR/results.tar" results 2>/dev/null; }
trap pack EXIT
if [ -n "${WHEELS:-}" ] && [ ! -f /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl ${WHEELS_DS:+"$WHEELS_DS"/*.whl} && touch /tmp/site/.done || { say "wheel install failed"; exit 1; }
  if [ -n "${WHEELS_DS:-}" ] && ! python3 -c "import pydantic" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS_DS"/opt/*.whl
  fi
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
FSDP=configs/accelerate/fsdp2.yaml
R=$WORK/results
run() {  # run LIMIT NAME CMD...: one step, its output to the log
  local limit=$1 name=$2; shift 2
  say "start $name"
  local t0=$SECONDS
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  say "end $name rc=$rc $((SECONDS - t0)) s"
  pack
  return $rc
}
B="python3 -m mcqflow.cli bench --out $R"
S="--shape sft_steps=4 --shape sft_warmup=1 --shape sft_batch=8 --shape sft_accum=1"
G="--shape grpo_prompts=2 --shape grpo_num_generations=4 --shape grpo_new_tokens=32 --shape grpo_steps=2 --shape grpo_warmup=1"
V="--profile memory --sft-variants memory-bf16 --shape sft_batch=16 --shape sft_accum=1 --shape sft_steps=6 --shape sft_warmup=2"

for step in "$@"; do
  case $step in
  smoke)
    run 120 smoke-1gpu env CUDA_VISIBLE_DEVICES=0 python3 -m mcqflow.cli bench --out "$R/smoke" \
      --arch qwen2.5-0.5b --only sft --sft-variants fast-bf16 $S --work "$WORK/s1"
    run 150 smoke-fsdp2 $B --arch qwen2.5-0.5b --processes 2 --config $FSDP --only sft,grpo \
      --sft-variants fast-bf16 --grpo-variants fast $S $G --work "$WORK/s2"
    run 60 smoke-compare python3 - "$WORK/s1/sft-fast-bf16" "$WORK/s2/sft-fast-bf16" <<'EOF' >>"$R/smoke/adapters.txt"
import json, sys
from safetensors import safe_open
one, fsdp = sys.argv[1:]
def keys(d):
    with safe_open(f"{d}/adapter_model.safetensors", "pt") as f:
        return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
a, b = keys(one), keys(fsdp)
ca, cb = (json.load(open(f"{d}/adapter_config.json")) for d in (one, fsdp))
print(f"1-GPU adapter: {len(a)} tensors; FSDP2 adapter: {len(b)} tensors; same names, shapes, dtypes: {a == b}")
print(f"adapter_config.json equal: {ca == cb}", {k: (ca.get(k), cb.get(k)) for k in ca if ca.get(k) != cb.get(k)})
EOF
    ;;
  build)
    run 240 "build $ARCH" python3 -c "from mcqflow.benchmark.bench import ensure_weights; ensure_weights('$ARCH', '$WORK')"
    ;;
  sft2)
    run 240 "sft $ARCH x2" env CUDA_VISIBLE_DEVICES=0,1 python3 -m mcqflow.cli bench --out "$R" --arch "$ARCH" \
      --processes 2 --config $FSDP --only sft $V --work "$WORK"
    ;;
  sft4)
    base=$(ls "$R"/*"$ARCH"*-x2*.json experiments/bench/*"$ARCH"*-x2*.json 2>/dev/null | tail -1)
    run 240 "sft $ARCH x4" $B --arch "$ARCH" --processes 4 --config $FSDP --only sft $V --work "$WORK" \
      ${base:+--baseline "$base"}
    ;;
  grpo)
    run 300 "grpo $ARCH x4" $B --arch "$ARCH" --processes 4 --config $FSDP --only grpo --profile memory \
      --grpo-variants memory --shape grpo_prompts=2 --shape grpo_num_generations=4 --shape grpo_new_tokens=64 \
      --shape grpo_steps=3 --shape grpo_warmup=1 --work "$WORK"
    ;;
  predict)
    run 240 "predict $ARCH adapter" env CUDA_VISIBLE_DEVICES=0 python3 -m mcqflow.cli predict \
      --model "$WORK/random-$ARCH" --adapter "$WORK/sft-memory-bf16" --input data/sample/test.csv \
      --output "$R/predict-$ARCH-fsdp2-adapter.csv"
    ;;
  zero)
    for z in ${ZERO:-zero3 zero2}; do
      run 150 "smoke-$z" $B --arch qwen2.5-0.5b --processes 2 --config configs/accelerate/$z.yaml --only sft,grpo \
        --sft-variants fast-bf16 --grpo-variants fast $S $G --work "$WORK/$z"
    done
    ;;
  evaluate)
    run 200 "evaluate protocols qwen2.5-7b" env CUDA_VISIBLE_DEVICES=0 $B --arch qwen2.5-7b --only predict \
      --work "$WORK"
    ;;
  *) say "unknown step $step"; exit 2 ;;
  esac
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 | tee -a "$LOG"
