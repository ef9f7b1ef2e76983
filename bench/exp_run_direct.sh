#!/usr/bin/env bash
# One experiment's model stages on a GPU machine, stage by stage (dvc.yaml's own commands), for a lease
# whose device time does not cover `dvc exp run` of the whole pipeline (bench/exp_run_embedded.sh, ~13
# minutes a fresh experiment). The data stages (ingest .. split, tiny_model) need no GPU: they are
# built beforehand on a CPU with the experiment's params, and carried in PREP with that params.yaml. Only the
# stages named run, in the order given, each by its command as DVC resolves it from dvc.yaml; a stage the
# measurement does not need (the English branch, sft-reasoning when GRPO starts from sft-plain,
# generate-mode predicts) is not run. Not through `dvc repro --single-item`: that refuses a stage with a
# missing dep, and grpo lists both SFT models although it reads only the one grpo.init names.
# After each stage what exists is packed into OUTDIR/direct.tar.gz, so a call cut off by its time limit
# still returns what finished. The work happens in WORK (default /tmp/mcqflow-direct), made once: a later call
# on the same machine continues with what the last one left there.
#
# Prepare, on a CPU, in a copy of the tree (e.g. one made by `git worktree add`):
#   dvc exp run -n NAME <the plan line's -S arguments> split tiny_model
#   mkdir -p PREP && cp -a params.yaml data models PREP/    (data/validated, data/split, models/tiny)
#   and metrics/predict/base-<lang>.json from an earlier run of the same base and data (predict reads it)
# On the GPU machine (wheels and weights sent ahead as bench/exp_run_embedded.sh says), carrying PREP:
#   [WORK=/tmp/mcqflow-direct] WHEELS=.whl-exp GGUF_PARTS=/tmp/gguf PREP=.lean bash bench/exp_run_direct.sh $OUT NAME STAGE...
# What comes back is runs/NAME/ as bench/embedded_report.py reads it (metrics, predictions, dvclive,
# params.yaml, reports, logs/<stage>.log, times.tsv).
set -uo pipefail
OUTDIR=$(realpath -m "${1:?output folder}")
NAME=${2:?experiment name}
shift 2
[ $# -gt 0 ] || { echo "name the stages to run, e.g. sft@plain-zh grpo@zh predict@grpo-zh" >&2; exit 2; }
PREP=${PREP:?PREP: the folder of params.yaml and data-stage outputs built on a CPU}
SRC=$PWD
START=$SECONDS
mkdir -p "$OUTDIR"
say() { echo "[$(date +%T) +$((SECONDS - START))s] $*"; }
export DVC_NO_ANALYTICS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
# shellcheck source=bench/gpu_image_setup.sh
. "$SRC/bench/gpu_image_setup.sh" || exit 1

# The work happens in WORK, made once from the tree and PREP; a later call on the same machine continues there
# (a call re-sends the tree, which would put the committed params.yaml and metrics back over this run's)
WORK=${WORK:-/tmp/mcqflow-direct}
if [ ! -d "$WORK/.git" ]; then
  say "working copy in $WORK"
  copy_tree "$WORK" || exit 1
  # The tree's committed outputs are the tiny default's, not this experiment's: none may be packed as its own
  (cd "$WORK" && rm -rf metrics predictions dvclive reports plots submissions) || exit 1
  cp -a "$PREP"/. "$WORK"/ || exit 1  # params.yaml and the data stages' outputs (and their metrics)
  # DVC reads dvc.yaml inside a repository
  (cd "$WORK" && git init -q && git config user.email run@mcqflow.invalid && git config user.name "mcqflow run" \
    && git add -A && git commit -qm "the tree and $PREP") || { say "git init failed"; exit 1; }
fi
cd "$WORK" || exit 1
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
RUN=runs/$NAME
mkdir -p "$RUN/logs" && rm -f "$RUN/done"  # done: every stage this call named finished
say "python $(python -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1 | tail -1); dvc $(dvc --version 2>&1 | tail -1)"
nvidia-smi -L >"$RUN/logs/gpus.txt" 2>&1
[ -f "$RUN/times.tsv" ] || printf 'stage\tseconds\texit\n' >"$RUN/times.tsv"

pack() {
  rm -rf "$RUN/metrics" "$RUN/predictions" "$RUN/dvclive" "$RUN/reports"
  cp -a metrics predictions dvclive "$RUN"/ 2>/dev/null
  mkdir -p "$RUN/reports" && cp -a reports/predict "$RUN/reports/" 2>/dev/null
  cp params.yaml "$RUN/"
  tar -czf "$OUTDIR/direct.tar.gz.tmp" runs && mv "$OUTDIR/direct.tar.gz.tmp" "$OUTDIR/direct.tar.gz"
}

status=0
for stage in "$@"; do
  cmd=$(python -c "import sys; from dvc.repo import Repo; print(Repo('.').stage.collect(sys.argv[1])[0].cmd)" \
    "$stage" 2>"$RUN/logs/$stage.log") || { say "$stage: not a stage of dvc.yaml"; status=2; break; }
  say "$stage: $cmd"
  t0=$SECONDS
  bash -c "$cmd" >>"$RUN/logs/$stage.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$stage" $((SECONDS - t0)) "$rc" >>"$RUN/times.tsv"
  grep -aoE "\{.train_runtime[^}]*\}|dev accuracy.*|ERROR.*|[A-Za-z]*Error.*" "$RUN/logs/$stage.log" | tail -5 | sed "s/^/    /"
  say "exit $rc after $((SECONDS - t0)) s"
  pack
  [ "$rc" -eq 0 ] || { status=$rc; tail -15 "$RUN/logs/$stage.log"; break; }
done
[ "$status" -eq 0 ] && touch "$RUN/done" && pack
ls -la "$OUTDIR"
say "done, status $status"
exit "$status"
