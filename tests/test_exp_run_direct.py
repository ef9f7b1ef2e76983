"""bench/exp_run_direct.sh: chosen model stages of one experiment, with data stages built beforehand, over
two calls as a short GPU lease would make them; here on a CPU with the tiny model."""

import json
import shutil
import subprocess
import tarfile

import pytest

from conftest import dvc_in, make_clone

pytestmark = pytest.mark.slow


def test_chosen_stages_run_over_two_calls_and_come_back_packed(tmp_path):
    root, env = make_clone(tmp_path / "clone")
    sets = ["-S", "grpo.init=sft-plain", "-S", "grpo.mode=plain"]
    dvc_in(root, env, "exp", "run", *sets, "split", "tiny_model", "predict_base@zh")
    prep = tmp_path / "prep"
    (prep / "metrics/predict").mkdir(parents=True)
    for part in ("params.yaml", "data", "models"):
        (shutil.copytree if (root / part).is_dir() else shutil.copy2)(root / part, prep / part)
    shutil.copy2(root / "metrics/predict/base-zh.json", prep / "metrics/predict/base-zh.json")
    run_env = {**env, "PREP": str(prep), "WORK": str(tmp_path / "work")}
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    out = tmp_path / "out"
    script = root / "bench/exp_run_direct.sh"
    for stages in (["sft@plain-zh"], ["predict@sft-plain-zh", "no-such-stage"]):
        r = subprocess.run(
            ["bash", script, out, "e", *stages], cwd=root, env=run_env, capture_output=True, text=True
        )
        assert r.returncode == (0 if stages[-1] != "no-such-stage" else 2), (
            r.stdout[-2000:] + r.stderr[-2000:]
        )
    assert "no-such-stage: not a stage of dvc.yaml" in r.stdout
    with tarfile.open(out / "direct.tar.gz") as t:
        names = set(t.getnames())
        metrics = json.load(t.extractfile("runs/e/metrics/predict/sft-plain-zh.json"))
        params = t.extractfile("runs/e/params.yaml").read().decode()
        times = t.extractfile("runs/e/times.tsv").read().decode().splitlines()
    # the first call's SFT curves survive the second call; the params are the experiment's, not the tree's
    assert (
        "runs/e/dvclive/sft-plain-zh/metrics.json" in names
        and "runs/e/predictions/sft-plain-zh-dev.jsonl" in names
    )
    assert metrics["zh"]["n"] == 60 and "init: sft-plain" in params
    assert [line.split("\t")[0] for line in times] == ["stage", "sft@plain-zh", "predict@sft-plain-zh"]
    assert "runs/e/done" not in names  # the second call failed on its last stage
    # the checkout it ran from is as it was: the work happened in WORK
    after = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    assert after == status
