"""params.yaml `train:`: how sft, grpo and predict run (launcher, processes, speed profile)."""

from __future__ import annotations

from dataclasses import dataclass

from mcqflow.config.schema import build, choose

LAUNCHERS = ("python", "accelerate")
PROFILE_NAMES = ("auto", "vanilla", "memory", "fast")  # mcqflow.train.profiles.PROFILES, and auto


@dataclass
class TrainParams:
    """params.yaml `train:`: how sft, grpo and predict run; what they learn is under `sft:` and `grpo:`."""

    profile: str = "auto"  # speed levers: auto (fast on a GPU, none on a CPU) | vanilla | memory | fast
    launcher: str = "python"  # python | accelerate (several processes: num_processes, accelerate_config)
    num_processes: int = 1
    accelerate_config: str = "configs/accelerate/ddp.yaml"  # ddp.yaml, fsdp2.yaml, deepspeed_zero2.yaml, ...
    fp8: bool = True  # the fast profile's FP8 base products on GPUs that have them; false keeps them bf16

    @classmethod
    def from_params(cls, d: dict) -> TrainParams:
        t = build(cls, d, "train")
        choose(t.launcher, LAUNCHERS, "train.launcher")
        choose(t.profile, PROFILE_NAMES, "train.profile")
        return t
