#!/usr/bin/env bash
# Fetch the wheels bench/exp_run_gpus.sh installs on the GPU machine (bench/exp-run-wheels.txt) into
# .whl-exp/ (kept out of git), for CPython 3.12 on manylinux x86_64. antlr4-python3-runtime (hydra-core,
# under dvc) is published as a source archive only: it is pure Python, so it is built into a wheel here.
# Run from the project root; needs pip and the package index.
set -euo pipefail
DEST=${1:-.whl-exp}
mkdir -p "$DEST"
grep -qx "/$DEST/" .git/info/exclude 2>/dev/null || echo "/$DEST/" >>.git/info/exclude
plat=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1 manylinux_2_31 \
  manylinux_2_34 manylinux_2_35; do plat+=(--platform "${p}_x86_64"); done
grep -v '^#' bench/exp-run-wheels.txt | grep -v '^antlr4-python3-runtime==' | while read -r pin; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${plat[@]}" -d "$DEST" "$pin"
done
python3 -m pip wheel -q --no-deps -w "$DEST" "$(grep '^antlr4-python3-runtime==' bench/exp-run-wheels.txt)"
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
