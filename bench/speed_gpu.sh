#!/usr/bin/env bash
# The second speed round on one GPU (Qwen2.5-7B architecture, random weights): graph decoding for GRPO,
# padding-free SFT, the reasoning-length shapes, against vanilla and round 1's `fast` in one run. A run
# longer than one device command's 10 minutes is split in parts; each later part continues the first
# one's results file (`mcqflow bench --continue-from`), so the parts make one run on one machine.
#
# Steps, each under its own time limit, logged to OUTDIR/log.txt, results copied to OUTDIR after each:
#   check   on the GPU: greedy graph decoding gives HF generate's tokens; packed attention keeps examples apart
#   a       SFT (vanilla QLoRA, fast padded / padding-free, fixed and ragged) and GRPO fixed-shape fast variants
#   b       the rest of the default variants (vanilla GRPO, the ragged GRPO pair), continuing part a
#           (its file in WORK/results, or FIRST=path when the machine was given back in between)
#   c, d    GRPO alone, in two parts: fixed-shape variants, then the ragged pair continuing part c (FIRST
#           as for b)
#   p       bench/profile_gpu.py: the decode step's and a LoRA training step's GPU time, by kernel class
#   l, r    GRPO with and without Liger's kernels in the merged sampling copy (`liger_sampling`): the fixed
#           shape at micro-batches 8 and 16 (l), the ragged shape (r)
#   f       SFT (fixed and ragged) and GRPO with and without the fused LoRA layers (`fused_lora`)
#   e       SFT (fixed and ragged) and GRPO (micro-batch 16) with and without the FP8 base (`fp8_base`)
#   z       the fixed shapes against vanilla in one run: SFT, GRPO at micro-batches 8 and 16
#   k       GRPO on the ragged shape with and without compaction of the decode batch (`compact_decode`),
#           and with micro-batches of like length cut to their longest row (`length_batches`)
#   m       GRPO on the ragged shape at micro-batch 8 with `length_batches` (the room it leaves)
#   g       GRPO on the ragged shape with each micro-batch packed into one row (`packed_grpo`) and without
#   h       the packed variant alone at micro-batches 8 and 16 (the room packing leaves), one file each
#   i       `fast` on the ragged shape at micro-batches 4 and 2, one file each: what a micro-batch costs
#           whatever it holds (twice the micro-batches of half the rows)
#   n       GRPO on the ragged shape: `fast`, `fast` with the host running ahead of the GPU (no loss read back
#           after each micro-batch: `host_runs_ahead`), and that with packed micro-batches (`packed_grpo`,
#           packing now worked out on the host), one run
#   t       the same `fast` and packed variants with a Chrome trace of three micro-batches each
#           (MCQFLOW_BENCH_TIMELINE) and bench/timeline_gaps.py's account of the GPU's idle time; rates
#           of a traced run are not results
#   o       the packed variant with the host running ahead at micro-batch 8 (what the masks no longer kept
#           leave room for)
#   q       GRPO on the ragged shape: `fast`, packed, Liger's kernels in the policy being trained
#           (`liger_training`), and both, one run; then packed with Liger at micro-batch 8, its own file
#   u       the repeat: `fast` and packed with Liger at micro-batch 4, one run; packed with Liger at 8, its own
#   v       the GPU tests of this round's levers (masks drawn again, Liger's kernels in training), then packed
#           with Liger at micro-batches 8 and 16 (16: an H200's; MICROS="8" for one), one file each: what
#           `fast` should take
#   w       the GPU tests of decode windows and the FP8 sampling copy, then GRPO on the ragged shape (micro-batch 8):
#           `fast`, without decode windows (`decode_windows`), with the FP8 sampling copy (`fp8_sampling`), one run
#   x       GRPO on the ragged shape at micro-batch 16 (an H200's): `fast` and with the FP8 sampling copy, one run
#   y       part w's GPU tests, then GRPO on the ragged shape (micro-batch 8): `fast` (which has taken both levers
#           of part w), without the FP8 sampling copy, without decode windows, one run
#   s       GRPO on the fixed shape: `fast` at micro-batches 8 and 16, one run (whether 16 fits an H100)
#   dropout tests/test_lora_dropout.py on the GPU (compiled kernels), then SFT (32 x 256) and GRPO (ragged, micro-batch
#           MICRO, 8 unless set) each with and without LoRA's dropout inside the adapter's products (`fused_dropout`)
#   sft     the dropout check, then SFT: `fast` without `fused_dropout`, `fast`, `fast` with the host running ahead
#           (no loss read back after backward: `host_runs_ahead`), `fast` ragged, one run
#   t2      the GPU tests of fused dropout and the tensor-scaled FP8 copy, then SFT (`fast`, and with the host
#           running ahead) and ragged GRPO at micro-batch 8 (`fast`, and with `fp8_tensor_sampling`), one run
#   check2  the GPU tests of fused dropout and the tensor-scaled FP8 copy (part t2's check, alone)
#   final, final2  issue 33's run, two parts of one: SFT (vanilla QLoRA, `fast`, `fast` with the host running ahead,
#           `fast` ragged) and GRPO on the ragged shape at micro-batch MICRO (16 on a card of over 100 GB, else 8,
#           unless set), `fast` and with `fp8_tensor_sampling`; final2 adds TRL's default GRPO, continuing the file
#           (FIRST as for b). Run check2 first (in the call that installs the wheels: final takes most of a call)
#   check33 the GPU tests of the 10th to 14th rounds' levers (run it in the call that installs the wheels; 53 s
#           on an H100, where they passed, 2026-12-07 07:40; tests/test_lora_qkv.py alone passed there at 14:51)
#   issue33 today's `fast` beside vanilla in one bench command (run 0026 took 264 s for this and more on an H100):
#           SFT (vanilla QLoRA, `fast`, `fast` ragged) and GRPO (`fast` on the ragged shape at micro-batch
#           MICRO, TRL's default, `fast` again: the targets read its two runs' mean, first place and last;
#           four timed steps a run (GRPO_STEPS=5; 3 for two), not two: in run 2111 one step of the same lengths
#           took 10.1-11.6 s),
#           with expandable_segments (run 0419 ran without: ragged SFT lost 3 s to the
#           allocator in one step). Two calls on the lent machine,
#           issued one right after the other (it is given back 30 s after a call ends; carry is 64 MiB a call):
#             1. carry [".whl-exp"]: WHEELS=.whl-exp bash bench/speed_gpu.sh $OUT/i /tmp/w check33
#             2. carry [".whl-bnb"] (bitsandbytes==0.50.2's wheel alone, for vanilla QLoRA):
#                pip install -q --no-index --no-deps --target /tmp/site .whl-bnb/*.whl &&
#                WHEELS=.whl-exp bash bench/speed_gpu.sh $OUT/r /tmp/w issue33
#           Or in one call, without the check (it passed on an H100 at 17:09 on 2026-12-07), when starts are
#           scarce: .whl-bench holds the wheels the bench imports alone (3.7 MB: for w in datasets dill httpcore2
#           httpx2 multiprocess pydot sniffio trl truststore wcwidth liger_kernel; do cp .whl-exp/$w-*.whl
#           .whl-bench/; done), so it and .whl-bnb fit one carry:
#             carry [".whl-bench", ".whl-bnb"]: pip install -q --no-index --no-deps --no-compile --target
#             /tmp/site .whl-bench/*.whl .whl-bnb/*.whl && touch /tmp/site/.done &&
#             LIMIT=540 bash bench/speed_gpu.sh $OUT/r /tmp/w issue33
#   once    GRPO on the ragged shape (micro-batch MICRO), `fast` with and without `prefill_once`, A B B A: the 13th
#           round's +7.7% was one run in one order (~300 s on an H100)
#   compiles the Triton-compilation counter's tests on the GPU, then ragged GRPO's `fast` twice in one process: does
#           the first run compile kernels inside its timed steps that the second finds kept (~200 s). Run 2111
#           (H100): one kernel, 0.17 s, and the first run was the faster (11.82 against 11.54 completions/s)
#   swiglu  tests/test_lora_swiglu.py on the GPU (compiled passes, over Liger's MLP), then `fast` with and without
#           the fused MLP (`fused_swiglu`: gate/up LoRA and SwiGLU as one function) beside vanilla in one bench
#           command: SFT (vanilla QLoRA; fixed and ragged) and GRPO (ragged at micro-batch MICRO; TRL's default).
#           On an H200 this is also issue 33's run. The same two calls as issue33, with this part in the second
#   swiglu2 part swiglu's SFT again once the fused MLP goes on when training begins (Trainer.train had put
#           Liger's MLP back over it): the check, SFT `fast` with and without it (fixed, ragged), then one step of
#           the fused variant's operators (MCQFLOW_BENCH_TRACE). The SFT bench with expandable_segments: in
#           run 0419 (H200) ragged SFT's whole batch of 32 peaked at 121.8 GiB and one step took 3.7 s of
#           the allocator's work (13,574 tokens/s). One call: carry [".whl-exp"],
#           WHEELS=.whl-exp bash bench/speed_gpu.sh $OUT/a /tmp/w swiglu2
#   sp      bench/profile_gpu.py swiglu-pass: the fused MLP's passes by tile against the adds and Liger's SwiGLU
#           they replace (on the H100 its backward took 0.62 ms a layer against Liger's 0.52): which tile
#           `lora_swiglu._TILE` should be. One call: carry [".whl-exp"], WHEELS=.whl-exp ... $OUT/p /tmp/w sp
#   qkv     tests/test_lora_qkv.py on the GPU, then `fast` with and without an attention's q/k/v LoRA layers as one
#           function (`fused_qkv`) in one bench command: SFT 32 x 256 (the lever second) and GRPO ragged at
#           micro-batch MICRO in the order A, B, B, A (runs 1452 and 1456, H100, ran A, B only). One
#           call: carry [".whl-exp"], WHEELS=.whl-exp bash bench/speed_gpu.sh $OUT/q /tmp/w qkv
#   qkvg    part qkv's GRPO alone (no tests, no SFT: a call's last few minutes of device time), A, B, B, A,
#           with GRPO_STEPS steps a run (default 5: one warm-up, four timed)
#           (run 1502, H100, ran B, A: the variant second was the faster again)
#   prof33  where ragged GRPO's step goes in today's `fast`: bench/profile_gpu.py decode-rows (the sampling copy's
#           decode step at 128 down to 16 rows, kernels by class), then one traced GRPO step's top operators
#           (MCQFLOW_BENCH_TRACE; a traced run's rates are not results). After part issue33 in the same lease
#   repeat  the final run's two levers again once `fast` has taken them (`host_runs_ahead`, `fp8_tensor_sampling`),
#           each against `fast` without it, in the other order: SFT 32 x 256, GRPO ragged at micro-batch MICRO
#   j       where SFT's step goes: `fast` at 32 x 256 with one step's top operators (MCQFLOW_BENCH_TRACE) and
#           the next step whole as a Chrome trace (MCQFLOW_BENCH_TIMELINE) read by bench/timeline_gaps.py;
#           then bench/profile_gpu.py's decode-fp8 part (the FP8 sampling copy's decode step against Liger's)
#
# Variant names are those of today's `fast`, which has taken levers round by round (docs/speed.md): parts g-v
# ran before it took `packed_grpo` and `liger_training` (9th round), when today's `fast-ragged` was
# `fast-packed-grpo-liger-training-ragged`; g, h, i, q, u, v are written in today's names for the same profiles.
# Parts n, t, o name host_runs_ahead variants of the 8th round's `fast`: run them at commit 7b7f546; parts w
# and x name variants of the 9th round's `fast` before it took `fp8_sampling`: run them at commit ae33aad
# with this file's part w check (ae33aad's also selected sampled tests, which hold on a CPU only). Parts sft,
# t2 and final name variants of the 10th round's `fast`, before it took `host_runs_ahead` and
# `fp8_tensor_sampling` (11th round): run them at commit 663422c.
#
# Usage: WHEELS=.whl bench/speed_gpu.sh OUTDIR WORK STEP [STEP ...]
set -uo pipefail
OUTDIR=${1:?output folder}; WORK=${2:?work folder}; shift 2
mkdir -p "$OUTDIR" "$WORK/results"
LOG=$OUTDIR/log.txt
say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
pack() { cp "$WORK"/results/*.json "$WORK"/results/*.md "$OUTDIR"/ 2>/dev/null || true; }
trap pack EXIT
if [ -n "${WHEELS:-}" ] && [ ! -f /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl && touch /tmp/site/.done || { say "wheel install failed"; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/tests PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
run() {  # run LIMIT NAME CMD...
  local limit=$1 name=$2; shift 2
  say "start $name"
  local t0=$SECONDS
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  say "end $name rc=$rc $((SECONDS - t0)) s"
  pack
  return $rc
}
# Ragged GRPO's micro-batch: 16 where the card has over 100 GB (an H200), else 8 (an H100's), unless MICRO is set.
MICRO=${MICRO:-$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1 |
  awk '{print ($1 > 100000) ? 16 : 8}')}
B="python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft,grpo --out $WORK/results --work $WORK"
for step in "$@"; do
  case $step in
  check)
    run 240 check python3 -m pytest -q -p no:cacheprovider tests/test_decode.py tests/test_packing.py tests/test_merged.py tests/test_lora_fused.py \
      -k "greedy or bounds or liger or fused or fp8 or quantise" ;;
  a)
    run 590 "part a" $B --grpo-variants fast-hf-generate,fast,fast-micro16 ;;
  b)
    first=${FIRST:-$(ls "$WORK"/results/*qwen2.5-7b*.json | head -1)}  # FIRST: part a's file, if carried
    run 590 "part b" $B --continue-from "$first" ;;
  c)
    run 590 "part c" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" \
      --work "$WORK" --grpo-variants vanilla,fast-hf-generate,fast,fast-micro16 ;;
  d)
    first=${FIRST:-$(ls "$WORK"/results/*qwen2.5-7b*.json | tail -1)}
    run 590 "part d" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" \
      --work "$WORK" --continue-from "$first" ;;
  p)
    run 400 profile python3 bench/profile_gpu.py ${PROFILE_PARTS:-decode train} ;;
  l)
    run 590 "liger sampling" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" \
      --work "$WORK" --grpo-variants fast-no-liger-sampling,fast,fast-no-liger-sampling-micro16,fast-micro16 ;;
  r)
    run 590 "liger sampling, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" --grpo-variants fast-no-liger-sampling-ragged,fast-ragged ;;
  f)
    run 590 "fused lora" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft,grpo --out "$WORK/results" \
      --work "$WORK" --sft-variants fast-no-fused-lora-bf16,fast-bf16,fast-no-fused-lora-bf16-ragged,fast-bf16-ragged \
      --grpo-variants fast-no-fused-lora,fast ;;
  e)
    run 590 "fp8 base" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft,grpo --out "$WORK/results" \
      --work "$WORK" --sft-variants fast-no-fp8-base-bf16,fast-bf16,fast-no-fp8-base-bf16-ragged,fast-bf16-ragged \
      --grpo-variants fast-no-fp8-base-micro16,fast-micro16 ;;
  z)
    run 590 "final" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft,grpo --out "$WORK/results" \
      --work "$WORK" --sft-variants vanilla-qlora,fast-bf16 --grpo-variants vanilla,fast,fast-micro16 ;;
  k)
    run ${LIMIT:-590} "compaction, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-length-batches-ragged,fast-no-compact-decode-ragged ;;
  m)
    run ${LIMIT:-590} "ragged, micro-batch 8" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" --grpo-variants fast-length-batches-ragged \
      --shape grpo_ragged_micro_batch=8 ;;
  g)
    run ${LIMIT:-590} "packed GRPO, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" --shape grpo_ragged_micro_batch=4 \
      --grpo-variants fast-no-packed-grpo-no-liger-training-ragged,fast-no-liger-training-ragged ;;
  h)
    for micro in 8 16; do
      run ${LIMIT:-590} "packed GRPO, ragged, micro-batch $micro" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
        --only grpo --out "$WORK/results" --work "$WORK" --grpo-variants fast-no-liger-training-ragged \
        --shape grpo_ragged_micro_batch=$micro
    done ;;
  i)
    for micro in 4 2; do
      run ${LIMIT:-590} "ragged GRPO, micro-batch $micro" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
        --only grpo --out "$WORK/results" --work "$WORK" --shape grpo_ragged_micro_batch=$micro \
        --grpo-variants fast-no-packed-grpo-no-liger-training-ragged
    done ;;
  n)
    run ${LIMIT:-590} "host ahead, packed, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-host-runs-ahead-ragged,fast-packed-grpo-host-runs-ahead-ragged ;;
  t)
    MCQFLOW_BENCH_TIMELINE=$OUTDIR/timeline run ${LIMIT:-590} "timelines, ragged" python3 -m mcqflow.cli bench \
      --arch qwen2.5-7b --only grpo --out "$WORK/traced" --work "$WORK" \
      --grpo-variants fast-ragged,fast-packed-grpo-host-runs-ahead-ragged
    python3 bench/timeline_gaps.py "$OUTDIR"/timeline/*.json.gz >>"$LOG" 2>&1 ;;
  o)
    run ${LIMIT:-590} "packed, host ahead, ragged, micro-batch 8" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
      --only grpo --out "$WORK/results" --work "$WORK" --grpo-variants fast-packed-grpo-host-runs-ahead-ragged \
      --shape grpo_ragged_micro_batch=8 ;;
  q)
    run ${LIMIT:-590} "packed, liger training, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" --shape grpo_ragged_micro_batch=4 --grpo-variants \
      fast-no-packed-grpo-no-liger-training-ragged,fast-no-liger-training-ragged,fast-no-packed-grpo-ragged,fast-ragged
    run ${LIMIT:-590} "packed, liger training, ragged, micro-batch 8" python3 -m mcqflow.cli bench \
      --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged --shape grpo_ragged_micro_batch=8 ;;
  u)
    run ${LIMIT:-590} "repeat: fast, packed + liger training, ragged" python3 -m mcqflow.cli bench \
      --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" --shape grpo_ragged_micro_batch=4 \
      --grpo-variants fast-no-packed-grpo-no-liger-training-ragged,fast-ragged
    run ${LIMIT:-590} "repeat: packed + liger training, ragged, micro-batch 8" python3 -m mcqflow.cli bench \
      --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged --shape grpo_ragged_micro_batch=8 ;;
  v)
    run 240 "check: masks, liger training" python3 -m pytest -q -p no:cacheprovider tests/test_lora_fused.py \
      tests/test_merged.py -k "mask or liger" || exit 1
    for micro in ${MICROS:-8 16}; do
      run ${LIMIT:-590} "packed + liger training, ragged, micro-batch $micro" python3 -m mcqflow.cli bench \
        --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
        --grpo-variants fast-no-packed-grpo-no-liger-training-ragged,fast-ragged \
        --shape grpo_ragged_micro_batch=$micro
    done ;;
  w)
    run 240 "check: windows, fp8 sampling" python3 -m pytest -q -p no:cacheprovider tests/test_decode.py \
      tests/test_merged.py -k "window or fp8 or greedy or compaction" || exit 1
    run ${LIMIT:-590} "windows, fp8 sampling, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo \
      --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-no-decode-windows-ragged,fast-fp8-sampling-ragged ;;
  x)
    run ${LIMIT:-590} "fp8 sampling, ragged, micro-batch 16" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
      --only grpo --out "$WORK/results" --work "$WORK" --shape grpo_ragged_micro_batch=16 \
      --grpo-variants fast-ragged,fast-fp8-sampling-ragged ;;
  y)
    run 240 "check: windows, fp8 sampling" python3 -m pytest -q -p no:cacheprovider tests/test_decode.py \
      tests/test_merged.py -k "window or fp8 or greedy or compaction" || exit 1
    run ${LIMIT:-590} "fast, no fp8 sampling, no windows, ragged" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
      --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-no-fp8-sampling-ragged,fast-no-decode-windows-ragged ;;
  s)
    run ${LIMIT:-590} "fixed shape, micro-batches 8 and 16" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
      --only grpo --out "$WORK/results" --work "$WORK" --grpo-variants fast,fast-micro16 ;;
  dropout)
    run 240 "check: fused dropout" python3 -m pytest -q -p no:cacheprovider tests/test_lora_dropout.py || exit 1
    run ${LIMIT:-560} "fused dropout" $B --sft-variants fast-no-fused-dropout-bf16,fast-bf16 \
      --grpo-variants fast-no-fused-dropout-ragged,fast-ragged --shape grpo_ragged_micro_batch=${MICRO:-8} ;;
  sft)
    run 120 "check: fused dropout" python3 -m pytest -q -p no:cacheprovider tests/test_lora_dropout.py || exit 1
    run 480 "sft levers" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft --out "$WORK/results" \
      --work "$WORK" --sft-variants fast-no-fused-dropout-bf16,fast-bf16,fast-host-runs-ahead-bf16,fast-bf16-ragged ;;
  t2)
    run 150 "check: fused dropout, tensor-scaled fp8 copy" python3 -m pytest -q -p no:cacheprovider \
      tests/test_lora_dropout.py tests/test_merged.py -k "dropout or mask or rescale or tensor_scaled or fp8"
    run ${LIMIT:-400} "host ahead, tensor-scaled fp8" $B --sft-variants fast-bf16,fast-host-runs-ahead-bf16 \
      --grpo-variants fast-ragged,fast-fp8-tensor-sampling-ragged --shape grpo_ragged_micro_batch=8 ;;
  check2)
    run 240 "check: fused dropout, tensor-scaled fp8 copy" python3 -m pytest -q -p no:cacheprovider \
      tests/test_lora_dropout.py tests/test_merged.py -k "dropout or mask or rescale or tensor_scaled or fp8" ;;
  final)
    run 580 "final" $B --sft-variants vanilla-qlora,fast-bf16,fast-host-runs-ahead-bf16,fast-bf16-ragged \
      --grpo-variants fast-ragged,fast-fp8-tensor-sampling-ragged --shape grpo_ragged_micro_batch=$MICRO ;;
  final2)
    first=${FIRST:-$(ls "$WORK"/results/*qwen2.5-7b*.json | tail -1)}
    run 590 "final, part 2" python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" \
      --work "$WORK" --continue-from "$first" --grpo-variants vanilla --shape grpo_ragged_micro_batch=$MICRO ;;
  check33)
    run 240 "check: fused dropout, tensor-scaled fp8 copy, fused MLP, prefill once, shared prompts" python3 -m \
      pytest -q -p no:cacheprovider tests/test_lora_dropout.py tests/test_merged.py tests/test_lora_swiglu.py \
      tests/test_decode.py tests/test_packing.py tests/test_lora_qkv.py tests/test_bench.py \
      -k "dropout or mask or rescale or tensor_scaled or fp8 or fused or mlp or swiglu or prefill or shared or qkv or triton" ;;
  qkv)
    run 150 "check: fused q/k/v" python3 -m pytest -q -p no:cacheprovider tests/test_lora_qkv.py || exit 1
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-400} "fused q/k/v" $B \
      --sft-variants fast-bf16,fast-fused-qkv-bf16 --grpo-variants \
      fast-ragged,fast-fused-qkv-ragged,fast-fused-qkv-ragged,fast-ragged --shape grpo_ragged_micro_batch=$MICRO ;;
  qkvg)
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-300} "fused q/k/v, GRPO, A B B A" \
      python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-fused-qkv-ragged,fast-fused-qkv-ragged,fast-ragged \
      --shape grpo_ragged_micro_batch=$MICRO --shape grpo_steps=${GRPO_STEPS:-5} ;;
  once)
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-300} "prefill once, GRPO, A B B A" \
      python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-no-prefill-once-ragged,fast-no-prefill-once-ragged,fast-ragged \
      --shape grpo_ragged_micro_batch=$MICRO --shape grpo_steps=${GRPO_STEPS:-5} ;;
  compiles)
    run 120 "check: Triton compilations counted" python3 -m pytest -q -p no:cacheprovider tests/test_bench.py -k triton
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-200} "one variant twice, GRPO" \
      python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/results" --work "$WORK" \
      --grpo-variants fast-ragged,fast-ragged --shape grpo_ragged_micro_batch=$MICRO ;;
  issue33)
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-560} "issue 33" $B \
      --sft-variants vanilla-qlora,fast-bf16,fast-bf16-ragged \
      --grpo-variants fast-ragged,vanilla,fast-ragged --shape grpo_ragged_micro_batch=$MICRO --shape grpo_steps=${GRPO_STEPS:-5} ;;
  swiglu)
    run 150 "check: the fused MLP" python3 -m pytest -q -p no:cacheprovider tests/test_lora_swiglu.py || exit 1
    run ${LIMIT:-480} "fused swiglu beside vanilla" $B \
      --sft-variants vanilla-qlora,fast-bf16,fast-fused-swiglu-bf16,fast-bf16-ragged,fast-fused-swiglu-bf16-ragged \
      --grpo-variants fast-ragged,fast-fused-swiglu-ragged,vanilla --shape grpo_ragged_micro_batch=$MICRO ;;
  swiglu2)
    run 150 "check: the fused MLP" python3 -m pytest -q -p no:cacheprovider tests/test_lora_swiglu.py || exit 1
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run ${LIMIT:-300} "fused swiglu, SFT" $B --only sft \
      --sft-variants fast-fused-swiglu-bf16,fast-bf16,fast-fused-swiglu-bf16-ragged,fast-bf16-ragged
    MCQFLOW_BENCH_TRACE=$OUTDIR/trace run 120 "fused swiglu, SFT traced" python3 -m mcqflow.cli bench --arch qwen2.5-7b \
      --only sft --out "$WORK/traced" --work "$WORK" --sft-variants fast-fused-swiglu-bf16 ;;
  sp)
    run 180 "swiglu-pass" python3 bench/profile_gpu.py swiglu-pass ;;
  prof33)
    run 240 "decode by rows" python3 bench/profile_gpu.py decode-rows
    MCQFLOW_BENCH_TRACE=$OUTDIR/trace PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run 240 "grpo traced" \
      python3 -m mcqflow.cli bench --arch qwen2.5-7b --only grpo --out "$WORK/traced" --work "$WORK" \
      --grpo-variants fast-ragged --shape grpo_ragged_micro_batch=$MICRO ;;
  repeat)
    run ${LIMIT:-560} "repeat" $B --sft-variants fast-bf16,fast-no-host-runs-ahead-bf16 \
      --grpo-variants fast-ragged,fast-no-fp8-tensor-sampling-ragged --shape grpo_ragged_micro_batch=$MICRO ;;
  j)
    MCQFLOW_BENCH_TRACE=$OUTDIR/trace MCQFLOW_BENCH_TIMELINE=$OUTDIR/timeline run ${LIMIT:-300} "sft traced" \
      python3 -m mcqflow.cli bench --arch qwen2.5-7b --only sft --out "$WORK/traced" --work "$WORK" \
      --sft-variants fast-bf16
    python3 bench/timeline_gaps.py --top 25 "$OUTDIR"/timeline/sft-*.json.gz >>"$LOG" 2>&1
    find "$OUTDIR"/timeline -name "*.json.gz" -size +15M -delete  # over what comes back; the report is in the log
    run 300 profile python3 bench/profile_gpu.py mm-decode decode-fp8 ;;
  *) say "unknown step $step"; exit 2 ;;
  esac
done
