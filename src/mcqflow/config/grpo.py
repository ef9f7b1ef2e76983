"""params.yaml `grpo:`: GRPO, TRL's GRPOConfig names."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcqflow.config.schema import build, choose
from mcqflow.core.prompts import MODES


@dataclass
class GRPOParams:
    """params.yaml `grpo:`. TRL's names where TRL has one; `trainer:` passes any other GRPOConfig field."""

    init: str = "sft-reasoning"  # start from models/<init>-<lang> (an sft output), or "base"
    mode: str = "reasoning"  # prompt mode, the same as the starting SFT model's
    learning_rate: float = 1e-5  # TRL's default 1e-6 suits LoRA on 7B; the tiny full fine-tune needs more
    max_steps: int = 8
    prompts_per_step: int = 2
    num_generations: int = 8
    micro_batch: int = 0  # completions per forward/backward; 0 = the whole step at once
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    save_steps: int = 4
    logging_steps: int = 1
    shuffle_options: bool = True
    rewards: dict = field(
        default_factory=lambda: {"correctness": 1.0, "format": 0.2, "neutrality": 0.1, "overlong": 0.0}
    )
    overlong_cache: int = 64
    trainer: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, d: dict) -> GRPOParams:
        p = build(cls, d, "grpo")
        choose(p.mode, MODES, "grpo.mode")
        choose(p.init, ("sft-reasoning", "sft-plain", "base"), "grpo.init")
        return p
