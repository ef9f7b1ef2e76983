"""The Makefile's housekeeping: `make clean` removes outputs only."""

import shutil
import subprocess

from conftest import ROOT


def test_make_clean_removes_ignored_outputs_and_no_tracked_file(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    files = {
        "models/.gitignore": "/tiny\n/sft-plain-zh\n",  # DVC lists its outputs beside them
        "predictions/.gitignore": "/sft-plain-zh-dev.jsonl\n",
        "data/sample/train.csv": "q\n",
        "metrics/predict/sft-plain-zh.json": "{}\n",  # a tracked output (cache: false)
        "models/tiny/model.safetensors": "w",
        "models/sft-plain-zh/adapter.safetensors": "w",
        "predictions/sft-plain-zh-dev.jsonl": "{}\n",
        "models/Qwen2.5-7B-Instruct/config.json": "{}",  # a model the user downloaded: not an output
        "cache/llm/ab/cd.json": "{}",  # paid answers stay
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    git = ["git", "-c", "user.email=t@t.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        [*git, "add", "Makefile", ".", ":!models/Qwen2.5-7B-Instruct", ":!cache"], cwd=tmp_path, check=True
    )
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    r = subprocess.run(
        ["make", "--no-print-directory", "clean"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    for gone in ("models/tiny", "models/sft-plain-zh", "predictions/sft-plain-zh-dev.jsonl"):
        assert not (tmp_path / gone).exists(), gone
    for kept in ("models/Qwen2.5-7B-Instruct/config.json", "cache/llm/ab/cd.json", "models/.gitignore"):
        assert (tmp_path / kept).exists(), kept
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True
    ).stdout
    assert not [line for line in status.splitlines() if line[:2].strip() == "D"], status
