"""End to end: `dvc repro` of the embedded default in a fresh copy of the repository."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Tracked and new files of this checkout, committed in a new git repo: what a fresh clone has."""
    dst = tmp_path_factory.mktemp("clone")
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        run(cmd, dst, env)
    return dst, env


def dvc(repo, *args):
    dst, env = repo
    return run([sys.executable, "-m", "dvc", *args], dst, env)


def test_repro_builds_every_output(repo):
    out = dvc(repo, "repro")
    root = repo[0]
    assert "Running stage 'predict@sft-reasoning'" in out
    for lang in ("zh", "en"):
        for split, n in (("train", 180), ("dev", 60), ("test", 62)):
            assert (
                len((root / f"data/prepared/{lang}/{split}.jsonl").read_text(encoding="utf-8").splitlines())
                == n
            )
    rejected = (root / "data/rejected/zh/dev.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rejected) == 1 and json.loads(rejected[0])["reason"] == "no answer in a labelled split"

    with open(root / "data/sample/test.csv", encoding="utf-8", newline="") as f:
        test_ids = [r[0] for r in list(csv.reader(f))[1:]]
    for name in ("sft-plain", "sft-reasoning"):
        metrics = json.loads((root / f"metrics/{name}.json").read_text(encoding="utf-8"))
        for lang in ("zh", "en"):
            m = metrics[lang]
            assert (
                m["n"] == 60 and 0 <= m["accuracy_ci95_low"] <= m["accuracy"] <= m["accuracy_ci95_high"] <= 1
            )
            assert (root / f"models/{name}-{lang}/mcqflow.json").exists()
            with open(root / f"submissions/{name}-{lang}.csv", encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            assert rows[0] == ["ID", "Answer"] and [r[0] for r in rows[1:]] == test_ids
            assert {r[1] for r in rows[1:]} <= set("ABCD")
            details = (root / f"predictions/{name}-{lang}-dev.jsonl").read_text(encoding="utf-8").splitlines()
            assert len(details) == 60 and {"raw", "extracted", "method"} <= json.loads(details[0]).keys()
    loss = (root / "dvclive/sft-plain-zh/plots/metrics/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"] and len(loss) > 3

    assert "Data and pipelines are up to date" in dvc(repo, "status")
    assert "didn't change, skipping" in dvc(repo, "repro")


def test_exp_run_and_show_compare_languages_and_stages(repo):
    dvc(repo, "exp", "run", "-n", "lr-high", "-S", "sft.lr=0.002")
    table = json.loads(dvc(repo, "exp", "show", "--json"))
    exps = [e for rev in table for e in (rev.get("experiments") or [])]
    names = [run["name"] for e in exps for run in e["revs"]]
    assert "lr-high" in names
    lr_high = next(run for e in exps for run in e["revs"] if run["name"] == "lr-high")
    data = lr_high["data"]
    assert data["params"]["params.yaml"]["data"]["sft"]["lr"] == 0.002
    for name in ("sft-plain", "sft-reasoning"):
        m = data["metrics"][f"metrics/{name}.json"]["data"]
        assert {"zh", "en"} <= m.keys() and "accuracy" in m["zh"]


def test_plots_show_draws_training_loss(repo):
    out_dir = repo[0] / "plots_out"
    dvc(repo, "plots", "show", "-o", str(out_dir))
    html = (out_dir / "index.html").read_text(encoding="utf-8")
    assert "dvclive/sft-plain-zh/plots/metrics/loss.tsv" in html
