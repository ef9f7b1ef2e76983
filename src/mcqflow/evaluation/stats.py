"""Paired comparison of two runs on the same questions: is a difference in accuracy real?

Two accuracies with two intervals cannot say it: the runs answer the same questions, so their errors are
correlated, and what matters is how often they disagree. Both tests here use the pairing:
- a paired bootstrap interval for the accuracy difference (questions resampled with replacement, both
  runs' answers kept together), percentile method;
- McNemar's exact test on the discordant pairs (one run right, the other wrong): under "no difference"
  each discordant question is a fair coin, so p is a two-sided binomial tail.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mcqflow.core.errors import UserError
from mcqflow.core.schema import loads


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: `b` questions only run A got right, `c` only run B."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(
    a: list[bool], b: list[bool], n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of accuracy(b) - accuracy(a) over questions resampled in pairs."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two equally long, non-empty lists")
    import numpy as np

    n = len(a)
    diffs = np.array([int(y) - int(x) for x, y in zip(a, b, strict=True)], dtype=np.int64)
    rng = np.random.default_rng(seed)
    chunks = [
        diffs[rng.integers(0, n, size=(min(1000, n_boot - s), n))].mean(axis=1)
        for s in range(0, n_boot, 1000)
    ]
    lo, hi = np.quantile(np.concatenate(chunks), [(1 - level) / 2, (1 + level) / 2])
    lo, hi = float(lo), float(hi)
    return lo, hi


def compare(a: dict[str, bool], b: dict[str, bool], n_boot: int = 10_000, seed: int = 0) -> dict:
    """Accuracy of each run, their difference (B - A) with a 95% paired bootstrap interval, the
    discordant counts and McNemar's exact p. `a` and `b` map question id -> correct."""
    for run, other, side in ((a, b, "A"), (b, a, "B")):
        if other and not run:
            raise UserError(
                f"run {side} has no labelled questions (no gold letters: an unlabelled split such as a "
                f"Kaggle test set?); a paired comparison needs the same labelled questions in both"
            )
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        some = "; ".join(
            f"{len(ids)} only in {side}, e.g. {', '.join(ids[:3])}"
            for side, ids in (("A", only_a), ("B", only_b))
            if ids
        )
        raise UserError(
            f"the two runs answer different questions ({some}): a paired comparison needs the same ones"
        )
    if not a:
        raise UserError("no labelled questions to compare")
    ids = sorted(a)
    xa, xb = [a[i] for i in ids], [b[i] for i in ids]
    only_a = sum(x and not y for x, y in zip(xa, xb, strict=True))
    only_b = sum(y and not x for x, y in zip(xa, xb, strict=True))
    lo, hi = paired_bootstrap(xa, xb, n_boot, seed)
    acc_a, acc_b = sum(xa) / len(ids), sum(xb) / len(ids)
    return {
        "n": len(ids),
        "accuracy_a": round(acc_a, 4),
        "accuracy_b": round(acc_b, 4),
        "difference": round(acc_b - acc_a, 4),
        "difference_ci95_low": round(lo, 4),
        "difference_ci95_high": round(hi, 4),
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "mcnemar_p": float(f"{mcnemar_exact(only_a, only_b):.6g}"),
    }


def read_correct(path: str | Path) -> dict[str, bool]:
    """question id -> answered correctly, from a predictions file (`predict`'s per-question details);
    rows without a gold letter are left out."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such predictions file")
    out: dict[str, bool] = {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = loads(line)
                rid, answer, gold = row["id"], row["answer"], row.get("gold")
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise UserError(f"{path}: line {i}: not a predictions row ({e})") from None
            if rid in out:
                raise UserError(f"{path}: line {i}: duplicate id {rid!r}")
            if gold is not None:
                out[rid] = answer == gold
    return out


def summary_line(name_a: str, name_b: str, r: dict) -> str:
    verdict = "significant at 5%" if r["mcnemar_p"] < 0.05 else "not significant at 5%"
    return (
        f"{name_b} vs {name_a} on {r['n']} questions: {r['accuracy_b']:.3f} vs {r['accuracy_a']:.3f}, "
        f"difference {r['difference']:+.3f} [{r['difference_ci95_low']:+.3f}, {r['difference_ci95_high']:+.3f}] "
        f"(paired bootstrap 95%); right only in {name_b}: {r['only_b_correct']}, only in {name_a}: "
        f"{r['only_a_correct']}; McNemar exact p = {r['mcnemar_p']:.4g} ({verdict})"
    )
