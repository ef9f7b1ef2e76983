import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, sample_records
from mcqflow.core.errors import UserError
from mcqflow.train.launch import TrainParams, launch_command, split_batch

CONFIGS = sorted((ROOT / "configs/accelerate").glob("*.yaml"))


@pytest.mark.parametrize(
    "batch,accum,procs,expected",
    [(8, 1, 1, (8, 1)), (8, 1, 2, (4, 1)), (8, 4, 2, (8, 2)), (8, 2, 4, (4, 1)), (4, 4, 8, (2, 1))],
)
def test_effective_batch_is_kept_when_processes_change(batch, accum, procs, expected):
    per_device, acc = split_batch(batch, accum, procs)
    assert (per_device, acc) == expected and per_device * acc * procs == batch * accum


def test_an_effective_batch_that_cannot_split_is_one_line():
    with pytest.raises(UserError, match="6 x 1 does not split over 4 processes"):
        split_batch(6, 1, 4)


def test_train_params_are_checked():
    assert TrainParams.from_params({}).launcher == "python"
    with pytest.raises(UserError, match="train.launcher='mpi'"):
        TrainParams.from_params({"launcher": "mpi"})
    with pytest.raises(UserError, match="num_processes=0"):
        TrainParams.from_params({"num_processes": 0})
    with pytest.raises(UserError, match="no such file"):
        launch_command(TrainParams(accelerate_config="nope.yaml"), ["x.py"], gpu=True)


def test_launch_command_names_config_and_processes():
    t = TrainParams(launcher="accelerate", num_processes=4, accelerate_config=str(CONFIGS[0]))
    cmd = launch_command(t, ["stages/sft.py", "--mode", "plain"], gpu=True)
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert cmd[cmd.index("--num_processes") + 1] == "4" and cmd[-3:] == ["stages/sft.py", "--mode", "plain"]
    assert "--mixed_precision" in launch_command(t, ["x.py"], gpu=False)


def test_accelerate_reads_every_shipped_config():
    from accelerate.commands.config.config_args import load_config_from_file

    assert {c.stem for c in CONFIGS} == {"ddp", "fsdp2", "zero2", "zero3"}
    kinds = {c.stem: load_config_from_file(str(c)).distributed_type for c in CONFIGS}
    assert kinds == {"ddp": "MULTI_GPU", "fsdp2": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["ddp", "fsdp2"])
def test_sft_stage_runs_two_gloo_processes_with_the_same_effective_batch(tiny_dir, tmp_path, config):
    """`train.launcher: accelerate` + 2 processes on a CPU: the stage relaunches itself, both ranks train
    (half the per-device batch, same effective batch, so the same number of optimizer steps), and rank 0
    alone writes the model and the curves."""
    recs = sample_records("train")[:32]
    (tmp_path / "train.jsonl").write_text("".join(r.to_json() + "\n" for r in recs), encoding="utf-8")
    params = {
        "seed": 0,
        "model": {"base": "tiny", "quantization": "none"},
        "train": {
            "profile": "auto",
            "launcher": "accelerate",
            "num_processes": 2,
            "accelerate_config": str(ROOT / f"configs/accelerate/{config}.yaml"),
        },
        "sft": {"finetune": "full", "num_train_epochs": 1, "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 1, "max_length": 256, "logging_steps": 1},
    }  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "stages/sft.py"), "--mode", "plain", "--train", "train.jsonl",
           "--tiny-dir", tiny_dir, "--out", "models/sft", "--live", "dvclive/sft"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 processes via accelerate" in r.stdout
    # every trainable weight takes part in each forward: DDP need not search the graph for unused ones
    assert "find_unused_parameters=True" not in r.stderr
    summary = [line for line in r.stdout.splitlines() if line.startswith("sft plain:")]
    assert len(summary) == 1, r.stdout  # printed by rank 0 only
    # on a CPU accelerate runs either config as DDP over gloo (FSDP needs GPUs), and the stage says so
    assert "effective batch 8 = 4 per device x 2 processes x 1 accumulation (MULTI_CPU)" in summary[0]
    assert ("asks for FSDP, which accelerate runs on GPUs only" in r.stderr) == (config == "fsdp2")
    assert "4 steps" in summary[0]  # 32 rows / 8 a step
    assert json.loads((tmp_path / "models/sft/mcqflow.json").read_text())["finetune"] == "full"
    # rank 0 saved the whole model, trained
    from safetensors.torch import load_file

    before = load_file(Path(tiny_dir) / "model.safetensors")
    after = load_file(tmp_path / "models/sft/model.safetensors")
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    assert any(not torch.equal(before[k], after[k].to(before[k].dtype)) for k in before)
    header, *rows = (tmp_path / "dvclive/sft/plots/metrics/loss.tsv").read_text().splitlines()
    col = header.split("\t").index("step")
    steps = [int(row.split("\t")[col]) for row in rows]
    assert steps == [1, 2, 3, 4]  # one row per optimizer step logged: a second writer would repeat them


@pytest.mark.slow
def test_grpo_stage_runs_two_gloo_processes(tiny_dir, tmp_path):
    """A step's 8 completions split 4 + 4 over two ranks; the run completes, rank 0 saves the policy and
    marks the checkpoints complete."""
    import shutil

    recs = sample_records("train")[:16]
    (tmp_path / "data/split").mkdir(parents=True)
    (tmp_path / "data/split/zh.jsonl").write_text("".join(r.to_json() + "\n" for r in recs), encoding="utf-8")
    shutil.copytree(tiny_dir, tmp_path / "models/sft-plain-zh")
    params = {
        "seed": 0,
        "model": {"base": "tiny", "quantization": "none"},
        "train": {"launcher": "accelerate", "num_processes": 2,
                  "accelerate_config": str(ROOT / "configs/accelerate/ddp.yaml")},
        "sft": {"finetune": "full"},
        "grpo": {"init": "sft-plain", "mode": "plain", "max_steps": 2, "prompts_per_step": 2,
                 "num_generations": 4, "max_completion_length": 8, "save_steps": 1, "logging_steps": 1,
                 "rewards": {"correctness": 1.0, "neutrality": 1.0}},
    }  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "stages/grpo.py"), "--lang", "zh", "--train", "data/split/zh.jsonl",
           "--models", "models", "--tiny-dir", tiny_dir, "--out", "models/grpo-zh",
           "--checkpoints", "checkpoints/grpo-zh", "--live", "dvclive/grpo-zh"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "find_unused_parameters=True" not in r.stderr
    summary = [line for line in r.stdout.splitlines() if line.startswith("grpo zh:")]
    assert len(summary) == 1 and summary[0].startswith("grpo zh: 2 steps"), r.stdout  # rank 0 only
    assert json.loads((tmp_path / "models/grpo-zh/mcqflow.json").read_text())["steps"] == 2
    stamp = json.loads((tmp_path / "checkpoints/grpo-zh/fingerprint.json").read_text())
    assert stamp["complete"] and [p.name for p in (tmp_path / "checkpoints/grpo-zh").iterdir()] == [
        "fingerprint.json"
    ]
