"""params.yaml `predict:`: how the predict stages (and `mcqflow predict` / `evaluate`) answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class PredictParams:
    """params.yaml `predict:`."""

    batch_size: int = 32
    max_new_tokens: int = 512  # generate mode: room for a whole six-tag chain (GAOKAO's reach 547 tokens)
    repetition_penalty: float = 1.0  # generate mode: HF's penalty on tokens already written (1.0 = off)
    csv_formulas: Literal["refuse", "escape", "raw"] = "refuse"  # test IDs starting with = + - @
    inference: dict = field(default_factory=lambda: {"plain": "letter", "reasoning": "generate"})
