"""params.yaml `split:`: the stratified GRPO subset, and what SFT trains on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class SplitParams:
    """params.yaml `split:`."""

    fraction: float = 0.5  # share of the training data GRPO sees, stratified by topic x gold letter
    # what the SFT stages train on: all of train, or the rest (train minus GRPO's share), so that GRPO's
    # prompts are questions its starting model was never fitted to
    sft_sees: Literal["all", "rest"] = "all"
