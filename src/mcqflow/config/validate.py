"""params.yaml `validate:`: the Great Expectations gate's thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from mcqflow.config.schema import build


@dataclass
class ValidateParams:
    """params.yaml `validate:`."""

    question_length: tuple[int, int] = (4, 2000)
    option_length: tuple[int, int] = (1, 500)
    min_steps: int = 2
    neutrality_threshold: float = 0.35
    max_letter_share: float = 0.4
    near_duplicate_threshold: float = 0.9
    max_other_script_share: float = 0.2  # zh: questions in the other script than the dataset's (dataset.yaml)
    # dev/test: share of questions whose gold option's text is a train gold answer (leakage); 1.0 reports only
    max_answer_leak_share: float = 1.0
    min_pass_rate: float = 0.9
    train_kind: str = "reasoning"  # suite for the train split: reasoning (chains checked) or mcq
    max_chain_length: int = 4000  # characters a reasoning chain may have (LLM-written ones can run away)

    @classmethod
    def from_params(cls, d: dict) -> ValidateParams:
        s = build(cls, d, "validate")
        s.question_length, s.option_length = tuple(s.question_length), tuple(s.option_length)
        return s
