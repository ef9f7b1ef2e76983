"""Stage generate_reasoning: LLM-written reasoning chains and new grid questions, through the response cache."""

import argparse
import json
import shutil
from pathlib import Path

from mcqflow.config.schema import load_params
from mcqflow.core.errors import run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import read_records, write_jsonl
from mcqflow.data.generate import GenerateParams, generate
from mcqflow.data.llm import LLMParams, ResponseCache, check_answered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", required=True, help="folder with train/dev/test.jsonl")
    ap.add_argument(
        "--out", required=True, help="folder for train/dev/test.jsonl (dev and test pass through)"
    )
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--cache", required=True, help="LLM response cache folder")
    ap.add_argument("--rejected", required=True)
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    params = load_params()
    cache_dir = Path(a.cache)
    cache = ResponseCache(cache_dir)
    cache.describe()
    result = generate(
        read_records(Path(a.input, "train.jsonl")),
        GenerateParams.from_params(params["generate"]),
        LLMParams.from_params(params["llm"]),
        cache,
        a.prompts,
    )
    out = Path(a.out)
    write_jsonl(out / "train.jsonl", result.records)
    for split in ("dev", "test"):
        shutil.copyfile(Path(a.input, f"{split}.jsonl"), out / f"{split}.jsonl")
    write_jsonl(Path(a.rejected, "train.jsonl"), result.rejected)
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.metrics, json.dumps(result.metrics, ensure_ascii=False, indent=2) + "\n")
    m = result.metrics
    print(
        f"generate: {m['requests']} prompts ({m['cache_hits']} from cache, {m['requests_sent']} sent, "
        f"{m['tokens']} tokens), {m['questions_generated']} new questions, outcomes {m['outcomes']}"
    )
    check_answered(m["unanswered"], "generate", a.metrics)


if __name__ == "__main__":
    run_stage(main)
