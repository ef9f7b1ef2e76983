"""Deterministic stratified subsets (the GRPO stage trains on a 50% split of the reasoning data)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from mcqflow.core.schema import Record


def _key(seed: int, rid: str) -> str:
    return hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()


def stratified_subset(records: list[Record], fraction: float, seed: int) -> list[Record]:
    """Pick round(fraction * n) records, spread over (topic, gold letter) strata as evenly as possible.

    Each stratum gets its proportional share, rounded down; the remaining places go to the strata with the
    largest remainders (ties broken by a seeded hash). Within a stratum, records are ranked by a seeded hash
    of their id, so the choice does not depend on input order and is stable as data grows. Input order is kept.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    strata: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        strata[(r.topic or "", r.answer or "")].append(r)
    target = round(fraction * len(records))
    quota = {k: int(fraction * len(v)) for k, v in strata.items()}
    by_remainder = sorted(
        strata, key=lambda k: (-(fraction * len(strata[k]) - quota[k]), _key(seed, repr(k)))
    )
    for k in by_remainder[: target - sum(quota.values())]:
        quota[k] += 1
    chosen = set()
    for k, rows in strata.items():
        chosen.update(r.id for r in sorted(rows, key=lambda r: _key(seed, r.id))[: quota[k]])
    return [r for r in records if r.id in chosen]
