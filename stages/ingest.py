"""Stage ingest: raw train/dev/test files of one language -> canonical JSONL, plus rejected rows."""

import argparse
import json
from pathlib import Path

from mcqflow.errors import run_stage
from mcqflow.ingest import SPLITS, ingest_to
from mcqflow.io import write_text_atomic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lang", required=True)
    for split in SPLITS:
        ap.add_argument(f"--{split}", required=True)
    ap.add_argument("--out", required=True, help="folder for <split>.jsonl")
    ap.add_argument("--rejected", required=True, help="folder for rejected <split>.jsonl")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    counts = {}
    for split in SPLITS:
        res = ingest_to(
            getattr(a, split), Path(a.out, f"{split}.jsonl"), Path(a.rejected, f"{split}.jsonl"), split, a.lang,
            on_reject=lambda r: print(f"rejected: {r.line()}"),
        )  # fmt: skip
        counts[split] = {
            "rows": res.rows,
            "kept": res.kept,
            "rejected": res.rejected_rows,
            "labels_removed": res.labels_removed,
        }
        print(
            f"{a.lang}/{split}: {res.format}, {res.rows} rows -> {res.kept} kept, {res.rejected_rows} rejected, "
            f"option labels removed: {res.labels_removed['own']} own, {res.labels_removed['stray']} stray"
        )
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.metrics, json.dumps({a.lang: counts}, indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)
