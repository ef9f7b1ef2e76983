"""params.yaml `sft:`: supervised fine-tuning, TRL's SFTConfig names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mcqflow.config.schema import build, choose

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SFTParams:
    """params.yaml `sft:`. TRL's names where a key is an SFTConfig field; `trainer:` passes any other one."""

    # The defaults are params.yaml's (tests/test_config.py holds them equal): the tiny default's values.
    finetune: Literal["full", "lora"] = (
        "full"  # a random-init tiny model learns only with full; lora for 7B/14B
    )
    learning_rate: float = 1e-3  # 2e-4 is the usual QLoRA value for 7B/14B
    num_train_epochs: float = 3
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512  # prompt + completion tokens
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    logging_steps: int = 5
    max_examples: int = 0  # train on a seeded random subset of this many rows (0: all of them)
    lora: dict = field(
        default_factory=lambda: {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ALL_PROJECTIONS}
    )
    trainer: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, d: dict) -> SFTParams:
        p = build(cls, d, "sft")
        choose(p.finetune, ("full", "lora"), "sft.finetune")
        return p
