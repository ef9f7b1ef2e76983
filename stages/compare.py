"""Stage compare: two runs' per-question predictions on the same dev questions, compared in pairs
(B - A with a paired bootstrap 95% interval and McNemar's exact p; mcqflow.stats)."""

import argparse
import json
from pathlib import Path

from mcqflow.errors import run_stage
from mcqflow.io import write_text_atomic
from mcqflow.stats import compare, read_correct, summary_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--a", required=True, help="predictions of run A (the baseline)")
    ap.add_argument("--b", required=True, help="predictions of run B")
    ap.add_argument("--name-a", required=True)
    ap.add_argument("--name-b", required=True)
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    r = compare(read_correct(a.a), read_correct(a.b))
    print(summary_line(a.name_a, a.name_b, r))
    write_text_atomic(Path(a.metrics), json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)
