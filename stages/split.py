"""Stage split: a seeded subset of the training data, stratified by topic x gold letter; the same ids
in every language, so Chinese and English GRPO runs see the same questions. It also writes what the SFT
stages train on (`sft/<lang>.jsonl`): all of train (split.sft_sees=all), or the rest, so that GRPO starts
from a model that never saw its prompts (rest)."""

import argparse
import json
from collections import Counter
from pathlib import Path

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import read_records, write_jsonl
from mcqflow.data.split import stratified_subset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="folder with <lang>/train.jsonl")
    ap.add_argument(
        "--langs", nargs="+", required=True, help="languages; the first one's ids decide the subset"
    )
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    params = load_params()
    split, seed = section(params, "split"), params["seed"]
    fraction, sft_sees = split.fraction, split.sft_sees
    first = read_records(Path(a.data, a.langs[0], "train.jsonl"))
    chosen = stratified_subset(first, fraction, seed)
    ids = {r.id for r in chosen}
    for lang in a.langs:
        rows = first if lang == a.langs[0] else read_records(Path(a.data, lang, "train.jsonl"))
        write_jsonl(Path(a.out, f"{lang}.jsonl"), [r for r in rows if r.id in ids])
        write_jsonl(
            Path(a.out, "sft", f"{lang}.jsonl"), [r for r in rows if sft_sees == "all" or r.id not in ids]
        )
    manifest = {
        "fraction": fraction,
        "seed": seed,
        "stratified_by": ["topic", "answer"],
        "source": str(Path(a.data, a.langs[0], "train.jsonl")),
        "n_source": len(first),
        "n_chosen": len(chosen),
        "sft_sees": sft_sees,
        "n_sft": len(first) if sft_sees == "all" else len(first) - len(chosen),
        "answers": dict(sorted(Counter(r.answer for r in chosen).items())),
        "ids": [r.id for r in chosen],
    }
    write_text_atomic(Path(a.out, "manifest.json"), json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    print(
        f"split: {len(chosen)} of {len(first)} questions ({fraction:.0%}), letters {manifest['answers']}; "
        f"SFT trains on {manifest['n_sft']} ({'all' if sft_sees == 'all' else 'the rest'})"
    )


if __name__ == "__main__":
    run_stage(main)
