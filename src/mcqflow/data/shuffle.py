"""Option shuffling: permute a question's options, remap the gold letter and every letter reference in
its reasoning chain ("選項A" -> "選項C", "option A", "<output>A</output>"), so a model cannot learn that
the answer is usually one letter (the seed's reasoning data had every answer on "A")."""

from __future__ import annotations

import dataclasses
import random
import re

from mcqflow.core.schema import LETTERS, Record

# Letter references a chain makes: after 選項/选项/option/答案, or as the whole <output>.
_REF = re.compile(
    r"(?P<pre>(?:選項|选项|[Oo]ption\s*|答案\s*[:：是為为]?\s*)[(（]?)(?P<l>[A-D])(?![A-Za-z])"
    r"|(?P<tag><output>\s*)(?P<t>[A-D])(?=\s*</output>)"
)


def remap_letters(text: str, mapping: dict[str, str]) -> str:
    """Rewrite every letter reference through `mapping` in one pass (no A->C->... chains)."""

    def sub(m: re.Match) -> str:
        if m.group("l"):
            return m.group("pre") + mapping[m.group("l")]
        return m.group("tag") + mapping[m.group("t")]

    return _REF.sub(sub, text)


def shuffle_options(rec: Record, rng: random.Random) -> Record:
    order = list(LETTERS)
    rng.shuffle(order)  # new position i holds old option order[i]
    mapping = {old: LETTERS[i] for i, old in enumerate(order)}
    return dataclasses.replace(
        rec,
        options={LETTERS[i]: rec.options[old] for i, old in enumerate(order)},
        answer=mapping[rec.answer] if rec.answer else None,
        reasoning=remap_letters(rec.reasoning, mapping) if rec.reasoning else None,
    )


def shuffle_all(records: list[Record], seed: int) -> list[Record]:
    rng = random.Random(seed)
    return [shuffle_options(r, rng) for r in records]
