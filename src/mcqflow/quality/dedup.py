"""Duplicate and near-duplicate questions: character 3-gram Jaccard similarity after normalisation.

Normalisation removes whitespace and punctuation, folds case and full-width forms, and maps Traditional
to Simplified (OpenCC), so the same question in either script counts as the same question. Candidate pairs
come from an inverted index of shingles that occur in few rows; ubiquitous shingles ("下列哪") cannot make
two questions similar on their own, and the index keeps the search far from quadratic on real data."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache

_DROP = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _DROP.sub("", _t2s().convert(text))


def shingles(text: str, n: int = 3) -> frozenset[str]:
    t = normalize(text)
    return frozenset(t[i : i + n] for i in range(max(1, len(t) - n + 1))) if t else frozenset()


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(
    texts: list[str], threshold: float, reference: list[str] | None = None
) -> list[int | None]:
    """For each text, the index of an earlier text (or, with `reference`, of a reference text) that is the
    same after normalisation or whose similarity is at least `threshold`; None when there is none."""
    pool_texts = reference if reference is not None else texts
    pool = [shingles(t) for t in pool_texts]
    queries = pool if reference is None else [shingles(t) for t in texts]
    df, rare_cut = _rare_shingles(pool)
    index: dict[str, list[int]] = defaultdict(list)
    exact: dict[str, int] = {}

    def add(i: int) -> None:
        exact.setdefault(normalize(pool_texts[i]), i)
        for s in pool[i]:
            if df[s] <= rare_cut:
                index[s].append(i)

    if reference is not None:
        for i in range(len(pool)):
            add(i)
    out: list[int | None] = []
    for q, (text, sh) in enumerate(zip(texts, queries, strict=True)):
        found = exact.get(normalize(text))
        if found is None:
            hits = Counter(j for s in sh if df.get(s, 0) <= rare_cut for j in index.get(s, ()))
            found = next((j for j, _ in hits.most_common() if jaccard(sh, pool[j]) >= threshold), None)
        out.append(found)
        if reference is None:
            add(q)
    return out


def nearest(texts: list[str], reference: list[str]) -> list[tuple[int | None, float]]:
    """For each text, (index of the most similar reference text, its 3-gram Jaccard similarity). Every
    pair is compared up to 10 million pairs; past that, only reference texts that share a rare shingle
    (the index near_duplicates uses), and (None, 0.0) where none does."""
    pool = [shingles(t) for t in reference]
    everything = len(texts) * len(pool) <= 10_000_000
    if not everything:
        df, rare_cut = _rare_shingles(pool)
        index: dict[str, list[int]] = defaultdict(list)
        for i, sh in enumerate(pool):
            for s in sh:
                if df[s] <= rare_cut:
                    index[s].append(i)
    out: list[tuple[int | None, float]] = []
    for text in texts:
        sh = shingles(text)
        if everything:
            candidates = range(len(pool))
        else:
            candidates = {j for s in sh if df.get(s, 0) <= rare_cut for j in index.get(s, ())}
        best = max(((jaccard(sh, pool[j]), -j) for j in candidates), default=None)
        out.append((-best[1], best[0]) if best else (None, 0.0))
    return out


def _rare_shingles(pool: list[frozenset]) -> tuple[Counter, int]:
    """How many pool texts hold each shingle, and the count up to which a shingle is rare enough to index."""
    return Counter(s for sh in pool for s in sh), max(5, int(0.05 * len(pool)))
