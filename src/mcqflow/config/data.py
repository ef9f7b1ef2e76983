"""params.yaml `data:`: which dataset every stage runs on."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcqflow.core.errors import UserError


@dataclass
class DataParams:
    """params.yaml `data:`: which dataset every stage runs on."""

    # a folder with a dataset.yaml (mcqflow.data.datasets): data/sample | data/gaokao
    source: str = "data/sample"
    # split by exam year (datasets with split_by: year): {split: [first year, last year]}
    years: dict = field(
        default_factory=lambda: {"train": [2010, 2018], "dev": [2019, 2020], "test": [2021, 2022]}
    )

    def checked_years(self) -> dict:
        """`years` as {split: (first, last)}; one line for anything else."""
        out = {}
        for split in ("train", "dev", "test"):
            v = (self.years or {}).get(split)
            if not (isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(y, int) for y in v)):
                raise UserError(f"params.yaml: data.years.{split}={v!r}: expected [first year, last year]")
            out[split] = (v[0], v[1])
        spans = sorted(out.values())
        for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
            if lo <= hi:
                raise UserError(f"params.yaml: data.years: {out}: the splits' years overlap")
        return out
