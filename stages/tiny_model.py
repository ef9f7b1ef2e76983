"""Stage tiny_model: build the tiny default model (seeded Qwen2 + tokenizer trained on our corpus)."""

import argparse
from dataclasses import asdict

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.schema import read_records
from mcqflow.modeling.models import build_tiny, tiny_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--corpus", nargs="+", required=True, help="canonical JSONL files to train the tokenizer on"
    )
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    params = load_params()
    records = [r for path in a.corpus for r in read_records(path)]
    out = build_tiny(tiny_corpus(records), a.out, seed=params["seed"], **asdict(section(params, "tiny")))
    print(f"tiny model written to {out}")


if __name__ == "__main__":
    run_stage(main)
