"""Multi-process training through accelerate (params.yaml `train.launcher`, `train.num_processes`,
`train.accelerate_config`).

dvc.yaml runs every stage as `python stages/<stage>.py`. Under `train.launcher: accelerate` the sft and
grpo scripts start themselves again under `accelerate launch` (DDP, FSDP2 or DeepSpeed ZeRO, as the
config file in configs/accelerate/ says) and exit with its status, so `dvc repro` and `dvc exp run -S
train.num_processes=2` need no other command. Inside the launched processes only rank 0 writes outputs.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from mcqflow.config.train import LAUNCHERS, TrainParams  # noqa: F401  (importable from here too)
from mcqflow.core.errors import UserError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def launched() -> bool:
    """True inside a process started by accelerate / torchrun."""
    return "LOCAL_RANK" in os.environ


def launch_command(t: TrainParams, argv: list[str], gpu: bool) -> list[str]:
    if not Path(t.accelerate_config).exists():
        raise UserError(f"params: train.accelerate_config={t.accelerate_config}: no such file")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", t.accelerate_config]
    cmd += ["--num_processes", str(t.num_processes)]
    if not gpu:
        cmd += ["--mixed_precision", "no"]  # the config's bf16 is for GPUs; CPU processes talk over gloo
    return [*cmd, *argv]


def relaunch_under_accelerate(params: dict) -> None:
    """Run this stage script again under `accelerate launch` and exit with its status, when params ask for
    it and this process is not already one of the launched ones."""
    t = TrainParams.from_params(params.get("train") or {})
    if t.launcher != "accelerate" or launched():
        return
    run_under_accelerate(t, [sys.argv[0], *sys.argv[1:]])


def run_under_accelerate(t: TrainParams, argv: list[str]) -> None:
    """Start `argv` (a script and its arguments, or `--module NAME ...`) in `t.num_processes` processes
    through `accelerate launch`, wait, and exit with its status."""
    from mcqflow.modeling.models import on_gpu

    gpu = on_gpu()
    cmd = launch_command(t, argv, gpu)
    print(f"mcqflow: {t.num_processes} processes via accelerate ({t.accelerate_config})", flush=True)
    kind = config_kind(t.accelerate_config)
    if not gpu and kind in GPU_ONLY:
        print(
            f"mcqflow: warning: {t.accelerate_config} asks for {kind}, which accelerate runs on GPUs only: "
            f"on this CPU the processes run as DDP over gloo",
            file=sys.stderr,
            flush=True,
        )
    raise SystemExit(subprocess.call(cmd))


# accelerate keeps a CPU run MULTI_CPU (DDP over gloo) whatever the config says
GPU_ONLY = ("FSDP", "DEEPSPEED")


def config_kind(path: str) -> str:
    """The accelerate config's `distributed_type` (MULTI_GPU, FSDP, DEEPSPEED...)."""
    import yaml

    return str((yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("distributed_type", "NO"))


def split_batch(batch_size: int, grad_accum: int, processes: int) -> tuple[int, int]:
    """(per-device batch, accumulation) for `processes` ranks with the same effective batch as
    batch_size x grad_accum on one process: accumulation shrinks first, then the per-device batch."""
    g = math.gcd(grad_accum, processes)
    k = processes // g  # what the per-device batch must give up once accumulation has given all it can
    if batch_size % k:
        raise UserError(
            f"the effective batch sft.per_device_train_batch_size x sft.gradient_accumulation_steps = {batch_size} x {grad_accum} does not split "
            f"over {processes} processes; make it a multiple of {processes}"
        )
    return batch_size // k, grad_accum // g
