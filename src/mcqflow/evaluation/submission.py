"""The Kaggle submission (`ID,Answer`), written without torch: its checks run before any model loads."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from mcqflow.core.errors import UserError
from mcqflow.core.io import atomic_open
from mcqflow.core.schema import LETTERS

if TYPE_CHECKING:
    from mcqflow.evaluation.predict import Prediction

# A cell that starts with one of these is run as a formula by spreadsheet programs (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_FORMULAS = ("refuse", "escape", "raw")


def check_submission_ids(ids: list[str], formulas: str, source: str) -> None:
    """Before any work: one line when an ID would be a spreadsheet formula and `formulas` is `refuse`.

    `refuse` is the default because both other choices change something a user may not want: `escape`
    writes `'=1+1` (safe in a spreadsheet, but no longer the test file's ID, so Kaggle would not score
    that row), `raw` writes the ID byte for byte (what Kaggle scores; unsafe to open in a spreadsheet)."""
    if formulas not in CSV_FORMULAS:
        raise UserError(f"csv formulas {formulas!r}: expected one of {', '.join(CSV_FORMULAS)}")
    bad = [i for i in ids if i.startswith(FORMULA_START)]
    if bad and formulas == "refuse":
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(
            f"{source}: ID {bad[0]!r}{more} starts with {bad[0][0]!r}, which spreadsheet programs run as a "
            f"formula; choose raw (IDs byte for byte, what Kaggle scores) or escape (a leading ' for "
            f"spreadsheets) with --csv-formulas / predict.csv_formulas"
        )


def write_submission(preds: list[Prediction], path: str | Path, formulas: str = "refuse") -> None:
    """Kaggle format: exactly `ID,Answer`, one row per test ID in input order, letters A–D only; IDs that
    look like formulas as `formulas` says (check_submission_ids)."""
    bad = [p.id for p in preds if p.answer not in LETTERS]
    if bad:
        raise AssertionError(f"predictions without a letter: {bad[:5]}")
    check_submission_ids([p.id for p in preds], formulas, str(path))

    def cell(i: str) -> str:
        return "'" + i if formulas == "escape" and i.startswith(FORMULA_START) else i

    with atomic_open(path, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        # csv quotes a field holding a character of its line terminator, and a bare \r is not one of "\n":
        # unquoted, a reader would see a row end there. Such IDs are written quoted.
        quoted = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
        w.writerow(["ID", "Answer"])
        for p in preds:
            (quoted if "\r" in p.id else w).writerow([cell(p.id), p.answer])
