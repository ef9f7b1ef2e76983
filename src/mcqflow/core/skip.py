"""A language the dataset does not have is skipped, visibly: every stage of its branch writes its outputs
as markers that say so (a model folder holding `skipped.json`, empty data and prediction files, metrics
`{"<lang>": {"skipped": "<why>"}}`), prints one line, and `make compare` shows a gap, never a copy of
another language's results."""

from __future__ import annotations

import json
from pathlib import Path

from mcqflow.core.io import write_text_atomic

MARKER = "skipped.json"


def write_marker(folder: str | Path, reason: str) -> None:
    """`folder` as a skipped model (or checkpoint) folder: only the marker, with the reason."""
    import shutil

    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_text_atomic(folder / MARKER, json.dumps({"skipped": reason}, ensure_ascii=False) + "\n")


def reason(folder: str | Path) -> str | None:
    """Why `folder` was skipped, or None when it is a real output."""
    path = Path(folder, MARKER)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["skipped"]


def is_empty(path: str | Path) -> bool:
    """A JSONL file with no rows."""
    p = Path(path)
    return p.is_file() and not p.read_text(encoding="utf-8").strip()


def skipped_live(live_dir: str | Path, why: str) -> None:
    """A DVCLive folder for a stage that did not train: metrics.json says why, and the curves folder holds
    only the marker: no curves from an earlier run (GRPO's folder persists), and not empty (git does not
    carry an empty folder, so a teammate's `mcqflow pull` would find the output missing)."""
    live = Path(live_dir)
    write_marker(live / "plots" / "metrics", why)
    write_text_atomic(live / "metrics.json", json.dumps({"skipped": why}, ensure_ascii=False) + "\n")


def say(stage: str, lang: str, why: str) -> None:
    print(f"{stage}: {lang} skipped: {why}")
