#!/usr/bin/env bash
# `mcqflow bench` on real weights (the embedded Qwen2.5-Coder-0.5B-Instruct) on the lent GPU machine, whose
# image lacks TRL, datasets, gguf, ...: the wheels and the weight parts are sent ahead as
# bench/exp_run_embedded.sh says (wheels into /tmp/site in a call of their own, then the ten parts of
# ../shared/gpu/embedded-parts.sh into /tmp/gguf, then this at once). Everything else is the bench's defaults
# under --weights: SFT in bf16 (vanilla, padded, padding-free; fixed and ragged), predict, and GRPO in the
# pipeline's plain and reasoning modes, each completion ending where the model ends it.
#
# Usage: WHEELS=.whl-exp GGUF_PARTS=/tmp/gguf bash bench/real_weights_gpu.sh OUTDIR [mcqflow bench options]
# OUTDIR gets the results (JSON + markdown, rewritten after every row) and log.txt.
set -uo pipefail
OUTDIR=$(realpath -m "${1:?output folder}")
shift
START=$SECONDS
mkdir -p "$OUTDIR"
say() { echo "[$(date +%T) +$((SECONDS - START))s] $*"; }
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
# shellcheck source=bench/gpu_image_setup.sh
. bench/gpu_image_setup.sh || exit 1
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
say "python $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1 | tail -1)"
python3 -m mcqflow.cli bench --weights embedded --out "$OUTDIR" --work "${WORK:-/tmp/mcqflow-bench}" "$@" \
  2>&1 | tee -a "$OUTDIR/log.txt"
rc=${PIPESTATUS[0]}
say "exit $rc"
exit "$rc"
