"""Stage ingest: one language of the dataset `data.source` names -> canonical JSONL, plus rejected rows.

A dataset of per-split files (the sample) is read file by file; a GAOKAO-Bench dataset is parsed whole and
split by exam year (`data.years`). A language the dataset does not have is skipped: empty files, and the
metrics say why (mcqflow.core.skip)."""

import argparse
import json
from collections import Counter
from pathlib import Path

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import Rejected, write_jsonl
from mcqflow.core.skip import say
from mcqflow.data.datasets import SPLITS, load_dataset, split_of_year
from mcqflow.data.ingest import ingest_to


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lang", required=True)
    ap.add_argument("--source", required=True, help="the dataset folder (params.yaml data.source)")
    ap.add_argument("--out", required=True, help="folder for <split>.jsonl")
    ap.add_argument("--rejected", required=True, help="folder for rejected <split>.jsonl")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    data = section(load_params(), "data")
    ds = load_dataset(a.source)
    if not ds.has(a.lang):
        why = f"{ds.folder} ({ds.name}) has no {a.lang} rows (dataset.yaml langs: {', '.join(ds.langs)})"
        for split in SPLITS:
            write_jsonl(Path(a.out, f"{split}.jsonl"), [])
            write_jsonl(Path(a.rejected, f"{split}.jsonl"), [])
        say("ingest", a.lang, why)
        metrics = {a.lang: {"skipped": why}}
    elif ds.format == "files":
        metrics = {a.lang: per_split_files(ds.langs[a.lang], a)}
    else:
        metrics = {a.lang: by_year(ds, a, data.checked_years())}
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.metrics, json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")


def per_split_files(files: dict, a) -> dict:
    counts = {}
    for split in SPLITS:
        res = ingest_to(
            files[split], Path(a.out, f"{split}.jsonl"), Path(a.rejected, f"{split}.jsonl"), split, a.lang,
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
    return counts


def by_year(ds, a, years: dict) -> dict:
    from mcqflow.data.gaokao import read_file

    splits = {s: [] for s in SPLITS}
    rejected = {s: [] for s in SPLITS}
    files = {}
    for path in ds.files(a.lang):
        records, rej, n = read_file(path)
        files[path.name] = {"rows": n, "records": len(records), "rejected": len(rej)}
        for r in rej:  # kept with the split of its year (an evaluation split here, not a submission)
            print(f"rejected: {r.line()}")
            rejected[split_of_year(r.raw.get("year"), years) or "train"].append(r)
        for r in records:
            split = split_of_year(r.year, years)
            if split is None:
                why = f"year {r.year} is in no split (params.yaml data.years: {years})"
                row = Rejected(str(path), int(r.source.rsplit(":", 1)[1]), why, r.to_dict())
                rejected["train"].append(row)
                print(f"rejected: {row.line()}")
                files[path.name]["records"] -= 1
                files[path.name]["rejected"] += 1
                continue
            splits[split].append(r)
    for split in SPLITS:
        write_jsonl(Path(a.out, f"{split}.jsonl"), splits[split])
        write_jsonl(Path(a.rejected, f"{split}.jsonl"), rejected[split])
    rows = sum(f["rows"] for f in files.values())
    kept = sum(len(v) for v in splits.values())
    n_rej = sum(len(v) for v in rejected.values())
    if rows != kept + n_rej:
        raise AssertionError(f"rows in ({rows}) != records ({kept}) + rejected ({n_rej})")
    counts = {
        split: {
            "rows": len(splits[split]) + len(rejected[split]),
            "kept": len(splits[split]),
            "rejected": len(rejected[split]),
            "years": [*years[split]],
            "topics": dict(sorted(Counter(r.topic for r in splits[split]).items())),
        }
        for split in SPLITS
    }
    reasons = Counter(r.reason.split(" (")[0] for v in rejected.values() for r in v)
    print(
        f"{a.lang}: {ds.name}, {rows} rows in {len(files)} files -> "
        + ", ".join(f"{s} {len(splits[s])} ({years[s][0]}-{years[s][1]})" for s in SPLITS)
        + f", {n_rej} rejected: {dict(reasons)}"
    )
    return {
        "source": {"dataset": ds.name, "rows": rows, "kept": kept, "rejected": n_rej, "files": files},
        **counts,
    }


if __name__ == "__main__":
    run_stage(main)
