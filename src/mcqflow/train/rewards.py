"""GRPO reward functions, in TRL's form: f(completions, **dataset_columns) -> list[float | None].

Each reward reads what it needs from the batch's own columns (`answer`, `options`), which TRL passes
row-aligned with `completions` — never from a global list, so a shuffled batch is judged by its own gold
letters. The weights live in params.yaml (`grpo.rewards`).
"""

from __future__ import annotations

from mcqflow.core.reasoning import TAGS, ChainError, parse_chain
from mcqflow.evaluation.extract.rules import extract_answer
from mcqflow.quality.neutrality import neutrality_score


def completion_text(completion) -> str:
    """TRL passes plain strings, or for conversational data a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


def correctness(completions, answer, options=None, **_) -> list[float]:
    """1.0 when the extracted letter equals this row's gold letter, else 0.0 (unreadable counts as wrong)."""
    options = options or [None] * len(completions)
    return [
        float(extract_answer(completion_text(c), o).answer == gold)
        for c, gold, o in zip(completions, answer, options, strict=True)
    ]


def format_reward(completions, **_) -> list[float]:
    """1.0 for a well-formed chain: the six tags, each once, in order (so exactly one <output>)."""
    out = []
    for c in completions:
        try:
            out.append(float(parse_chain(completion_text(c)).tags == list(TAGS)))
        except ChainError:
            out.append(0.0)
    return out


def letter_format(completions, **_) -> list[float]:
    """For plain (no-reasoning) policies: 1.0 when the whole completion is one letter A–D."""
    return [float(extract_answer(completion_text(c)).method == "letter") for c in completions]


def neutrality(completions, **_) -> list[float]:
    """The validate stage's lexicon score of the completion, in (0, 1]."""
    return [neutrality_score(completion_text(c)) for c in completions]


def soft_overlong(max_length: int, cache: int):
    """DAPO's soft overlong punishment: 0 up to max_length - cache tokens, then linearly down to -1."""

    def overlong(completions, completion_ids=None, **_) -> list[float]:
        lengths = (
            [len(ids) for ids in completion_ids]
            if completion_ids
            else [len(completion_text(c)) for c in completions]
        )
        start = max_length - cache
        return [0.0 if n <= start else max(-1.0, (start - n) / max(1, cache)) for n in lengths]

    overlong.__name__ = "overlong"
    return overlong


REWARDS = {
    "correctness": correctness,
    "format": format_reward,
    "letter_format": letter_format,
    "neutrality": neutrality,
}


def build_rewards(weights: dict[str, float], max_completion_length: int, overlong_cache: int):
    """(functions, weights) for GRPOTrainer from params; zero-weight rewards are left out."""
    funcs, ws = [], []
    for name, w in weights.items():
        if not w:
            continue
        if name == "overlong":
            funcs.append(soft_overlong(max_completion_length, overlong_cache))
        elif name in REWARDS:
            funcs.append(REWARDS[name])
        else:
            from mcqflow.core.errors import UserError

            raise UserError(
                f"params: grpo.rewards.{name}: unknown reward; known: {', '.join([*REWARDS, 'overlong'])}"
            )
        ws.append(float(w))
    return funcs, ws
