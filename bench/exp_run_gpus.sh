#!/usr/bin/env bash
# The README's experiment command, `dvc exp run -S train.launcher=accelerate -S train.num_processes=N`, on a
# multi-GPU machine whose image has torch/transformers/peft/accelerate but not DVC, DVCLive, Great
# Expectations, OpenCC, the openai client, TRL or datasets. With WHEELS set, those are installed from that
# folder of wheels beside the image's packages (bench/NOTES.md, "The exp run on GPUs", says how the folder
# is made). The copied working tree becomes a git repository when it arrived without one; the experiment
# runs once per accelerate config, up to TARGET (a dvc.yaml stage; empty: the whole pipeline), each under
# EXP_TIMEOUT seconds. Progress goes to stdout; logs and `dvc exp show` go to OUTDIR.
#
# Usage: [WHEELS=.whl] [TARGET=grpo@zh] [EXP_TIMEOUT=480] bench/exp_run_gpus.sh N OUTDIR [CONFIG ...]
#        CONFIG defaults to configs/accelerate/ddp.yaml
set -uo pipefail
N=${1:?number of processes}
OUTDIR=${2:?output folder}
shift 2
CONFIGS=("${@:-configs/accelerate/ddp.yaml}")
mkdir -p "$OUTDIR"
say() { echo "[$(date +%T)] $*"; }

if [ -n "${WHEELS:-}" ]; then
  say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || { say "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
  # dvc.yaml runs `python stages/...`: a wrapper, not a symlink, so the image's venv python stays itself
  mkdir -p /tmp/bin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" >/tmp/bin/python
  chmod +x /tmp/bin/python
  export PATH=/tmp/bin:/tmp/site/bin:$PATH
fi
export DVC_NO_ANALYTICS=1 TOKENIZERS_PARALLELISM=false
say "python $(command -v python); dvc $(dvc --version 2>&1 | tail -1)"
nvidia-smi -L 2>/dev/null | tee "$OUTDIR/gpus.txt"

if [ ! -d .git ]; then
  say "git init (the working tree arrived without .git)"
  git init -q && echo "/.whl*/" >>.git/info/exclude && git config user.email bench@mcqflow.invalid \
    && git config user.name "mcqflow bench" && git add -A && git commit -qm "working tree as carried" \
    || { say "git init failed"; exit 1; }
fi

status=0
for cfg in "${CONFIGS[@]}"; do
  name=$(basename "$cfg" .yaml)
  say "dvc exp run: $N processes, $cfg ${TARGET:+(up to $TARGET)}"
  timeout "${EXP_TIMEOUT:-480}" dvc exp run -f -n "gpu-$name-x$N" -S train.launcher=accelerate \
    -S "train.num_processes=$N" -S "train.accelerate_config=$cfg" ${TARGET:+"$TARGET"} 2>&1 \
    | tee "$OUTDIR/exp-run-$name.log" | grep --line-buffered -E "^Running stage|processes via|effective batch|ERROR|Error"
  rc=${PIPESTATUS[0]}
  say "exit $rc (log: exp-run-$name.log)"
  [ "$rc" -ne 0 ] && { status=$rc; tail -20 "$OUTDIR/exp-run-$name.log"; }
done

dvc exp show --no-pager --md --drop '.*' \
  --keep 'Experiment|.*accuracy$|.*train_loss$|train\.launcher|train\.num_processes|train\.accelerate_config' \
  | tee "$OUTDIR/exp-show.md"
exit $status
