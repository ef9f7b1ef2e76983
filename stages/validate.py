"""Stage validate: Great Expectations gate between ingest and training. Failing rows are quarantined with
the names of the expectations they failed; a dataset-level failure stops the pipeline."""

import argparse
import json
import sys
from pathlib import Path

from mcqflow.config.schema import load_params
from mcqflow.core.errors import UserError, run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import read_records, write_jsonl
from mcqflow.core.skip import say
from mcqflow.data.datasets import load_dataset
from mcqflow.data.ingest import SPLITS
from mcqflow.quality.validation import (
    ValidateParams,
    build_data_docs,
    gx_context,
    leakage_line,
    summary_table,
    validate,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--inputs", nargs="+", required=True, help="LANG=FOLDER with train/dev/test.jsonl, e.g. zh=data/x"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--rejected", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--docs", required=True, help="folder for the GX Data Docs site")
    ap.add_argument("--source", required=True, help="the dataset folder (data.source): its script")
    a = ap.parse_args()
    s = ValidateParams.from_params(load_params()["validate"])
    script = load_dataset(a.source).script
    context = gx_context()
    metrics, failures = {}, []
    for lang, folder in (item.split("=", 1) for item in a.inputs):
        records = {split: read_records(Path(folder, f"{split}.jsonl")) for split in SPLITS}
        if not any(records.values()):  # a language the dataset lacks (mcqflow.core.skip): nothing to check
            why = f"{folder} has no rows (the {lang} branch is skipped upstream)"
            for split in SPLITS:
                write_jsonl(Path(a.out, lang, f"{split}.jsonl"), [])
                if split != "test":
                    write_jsonl(Path(a.rejected, lang, f"{split}.jsonl"), [])
            metrics[lang] = {"skipped": why}
            say("validate", lang, why)
            continue
        reports = []
        for split in SPLITS:
            test = split == "test"
            rep = validate(
                records[split],
                split,
                s.train_kind if split == "train" else "mcq",
                s,
                reference=None if test else records["test"],
                quarantine=not test,  # every test ID needs an answer: report, never drop
                source=str(Path(folder, f"{split}.jsonl")),
                context=context,
                train=None if split == "train" else records["train"],
                script=script,
            )
            write_jsonl(Path(a.out, lang, f"{split}.jsonl"), rep.kept)
            if not test:
                write_jsonl(Path(a.rejected, lang, f"{split}.jsonl"), rep.rejected)
            for r in rep.rejected:
                print(f"quarantined: {r.line()}")
            reports.append(rep)
            failures += rep.failures
            if rep.leakage is not None:  # each question's nearest train question, for anyone to look at
                rows = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rep.leakage)
                write_text_atomic(Path(a.docs, "leakage", f"{lang}-{split}.jsonl"), rows)
        metrics[lang] = {rep.split: rep.metrics for rep in reports}
        print(f"[{lang}]\n{summary_table(reports)}")
        print(leakage_line(lang, reports))
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.metrics, json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    print(f"Data Docs: {build_data_docs(context, a.docs)}")
    if failures:
        for f in failures:
            print(f"validate: {f}", file=sys.stderr)
        raise UserError(f"validate: {len(failures)} dataset-level check(s) failed; the pipeline stops here")


if __name__ == "__main__":
    run_stage(main)
