"""Dev-set metrics for `dvc exp show`: accuracy with a 95% Wilson interval, extraction failures, letter shares."""

from __future__ import annotations

import math
from collections import Counter

from mcqflow.predict import Prediction
from mcqflow.schema import LETTERS


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
    fallbacks = sum(p.method == "fallback-logits" for p in preds)
    shares = Counter(p.answer for p in preds)
    return {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "accuracy_ci95_low": round(lo, 4),
        "accuracy_ci95_high": round(hi, 4),
        "invalid_extraction_rate": round(fallbacks / len(preds), 4) if preds else 0.0,
        "fallbacks": fallbacks,
        "letter_share": {k: round(shares[k] / len(preds), 4) if preds else 0.0 for k in LETTERS},
    }
