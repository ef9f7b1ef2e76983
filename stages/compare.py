"""Stage compare: two runs' per-question predictions on the same dev questions, compared in pairs
(B - A with a paired bootstrap 95% interval and McNemar's exact p; mcqflow.evaluation.stats)."""

import argparse
import json
from pathlib import Path

from mcqflow.core.errors import run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.skip import is_empty, say
from mcqflow.evaluation.stats import compare, read_correct, summary_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--a", required=True, help="predictions of run A (the baseline)")
    ap.add_argument("--b", required=True, help="predictions of run B")
    ap.add_argument("--name-a", required=True)
    ap.add_argument("--name-b", required=True)
    ap.add_argument("--a-test", help="run A's test predictions: compared too where the test split has gold")
    ap.add_argument("--b-test", help="run B's test predictions")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    if is_empty(a.a) or is_empty(a.b):  # a language the dataset lacks (mcqflow.core.skip)
        why = f"no predictions in {a.a if is_empty(a.a) else a.b} (the branch is skipped upstream)"
        write_text_atomic(Path(a.metrics), json.dumps({"skipped": why}, ensure_ascii=False) + "\n")
        say("compare", f"{a.name_a} vs {a.name_b}", why)
        return
    r = compare(read_correct(a.a), read_correct(a.b))
    print(summary_line(a.name_a, a.name_b, r))
    if a.a_test and a.b_test:
        ta, tb = read_correct(a.a_test), read_correct(a.b_test)
        if ta and tb:  # a labelled test split (GAOKAO's test years; the Kaggle test has no gold)
            r["test"] = compare(ta, tb)
            print("test: " + summary_line(a.name_a, a.name_b, r["test"]))
    write_text_atomic(Path(a.metrics), json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)
