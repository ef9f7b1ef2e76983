#!/usr/bin/env bash
# DeepSpeed for the GPU image, which lacks it: PyPI has only its source (0.19.8), so build a pure-Python wheel
# here (DS_BUILD_OPS=0: its CUDA ops compile just in time where they are used; the ZeRO-2/3 runs in
# experiments/bench used none) and fetch its dependencies as wheels into ./.whl-ds; ./.whl-ds/opt holds pydantic,
# installed there only if the image lacks it. Run from the project root with the project's venv active.
# Then: WHEELS=.whl WHEELS_DS=.whl-ds bench/fsdp_gpus.sh OUT WORK ARCH zero   (carry .whl and .whl-ds)
set -euo pipefail
mkdir -p .whl-ds/opt
grep -qx '/.whl-ds/' .git/info/exclude 2>/dev/null || echo '/.whl-ds/' >> .git/info/exclude
tmp=$(mktemp -d)
python -m pip download -q --no-deps --no-binary=:all: -d "$tmp" deepspeed==0.19.8
DS_BUILD_OPS=0 DS_SKIP_CUDA_CHECK=1 python -m pip wheel -q --no-deps --no-build-isolation -w .whl-ds "$tmp"/deepspeed-*.tar.gz
plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
get() { python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat "$@"; }
get -d .whl-ds hjson py-cpuinfo einops msgpack ninja
get -d .whl-ds/opt pydantic pydantic-core annotated-types typing-inspection
du -sh .whl-ds
