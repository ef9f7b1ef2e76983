"""Dev-set metrics: accuracy with a 95% Wilson interval, extraction failures, letter shares.

Two files per predict stage. `evaluate` gives the whole record (`metrics/predict/<model>-<lang>.json`:
letter shares, rotations, the labelled test split), a plain output of the stage. `headline` gives the few
numbers DVC tabulates (`metrics/dev/<model>-<lang>.json`, the stage's DVC metric): DVC draws one column per
metric key across every metrics file, so `dvc metrics show`, `dvc metrics diff` and `dvc exp show` stay
readable only while every metrics file shares these seven keys. The test split is left out of them on
purpose: experiments are chosen on dev.
"""

from __future__ import annotations

import math
from collections import Counter

from mcqflow.core.schema import LETTERS
from mcqflow.evaluation.predict import FALLBACK, Prediction


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def evaluate(preds: list[Prediction]) -> dict:
    labelled = [p for p in preds if p.gold is not None]
    n = len(labelled)
    correct = sum(p.answer == p.gold for p in labelled)
    lo, hi = wilson_interval(correct, n)
    fallbacks = sum(p.method == FALLBACK for p in preds)
    shares = Counter(p.answer for p in preds)
    top, top_n = shares.most_common(1)[0] if preds else ("", 0)
    return {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "accuracy_ci95_low": round(lo, 4),
        "accuracy_ci95_high": round(hi, 4),
        "invalid_extraction_rate": round(fallbacks / len(preds), 4) if preds else 0.0,
        "fallbacks": fallbacks,
        # prompts longer than the model's context, answered from their last tokens (mcqflow.evaluation.predict._encode)
        "truncated_prompts": sum(p.truncated for p in preds),
        "letter_share": {k: round(shares[k] / len(preds), 4) if preds else 0.0 for k in LETTERS},
        # A constant letter scores 0.25 on balanced data: the largest share says when that is what happened.
        "max_letter_share": round(top_n / len(preds), 4) if preds else 0.0,
        "max_letter": top,
    }


HEADLINE = ("accuracy", "ci95_low", "ci95_high", "circular", "no_answer", "top_share", "n")


def headline(m: dict) -> dict:
    """The DVC metric of one predict stage, from `evaluate`'s record (with `circular_accuracy` where the
    stage measured it): dev accuracy and its interval, circular accuracy, the share of outputs with no
    readable answer, the largest letter's share and the number of questions. A skipped branch is `n: 0`."""
    if "skipped" in m or "accuracy" not in m:
        return {"n": 0}
    out = {
        "accuracy": m["accuracy"],
        "ci95_low": m["accuracy_ci95_low"],
        "ci95_high": m["accuracy_ci95_high"],
        "circular": m.get("circular_accuracy"),
        "no_answer": m["invalid_extraction_rate"],
        "top_share": m["max_letter_share"],
        "n": m["n"],
    }
    return {k: v for k, v in out.items() if v is not None}


def degenerate_warnings(preds: list[Prediction], what: str) -> list[str]:
    """Lines to print when a run's answers are not the model's judgement: more than half fell back to
    letter scoring, or one letter takes more than half of them."""
    if not preds:
        return []
    out = []
    fallbacks = sum(p.method == FALLBACK for p in preds)
    if fallbacks > len(preds) / 2:
        out.append(
            f"{what}: {fallbacks} of {len(preds)} outputs had no readable answer and fell back to letter "
            f"scoring; the accuracy is mostly the fallback's"
        )
    truncated = sum(p.truncated for p in preds)
    if truncated:
        out.append(
            f"{what}: {truncated} of {len(preds)} prompts were longer than the model's context and were answered "
            f"from their last tokens"
        )
    letter, n = Counter(p.answer for p in preds).most_common(1)[0]
    if n > len(preds) / 2:
        out.append(
            f"{what}: {n} of {len(preds)} answers are {letter!r}; on balanced data that scores about 0.25"
        )
    return out
