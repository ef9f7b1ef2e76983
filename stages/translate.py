"""Stage translate: zh -> en of questions, options and chains (ids and gold letters kept), through the cache."""

import argparse
import json
from pathlib import Path

from mcqflow.config.schema import load_params
from mcqflow.core.errors import run_stage
from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import read_records, write_jsonl
from mcqflow.core.skip import say
from mcqflow.data.llm import LLMParams, ResponseCache, check_answered
from mcqflow.data.translate import SPLITS, TranslateParams, check_complete, translate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", required=True, help="folder with the Chinese train/dev/test.jsonl")
    ap.add_argument("--reference", help="folder with existing English train/dev/test.jsonl (same ids)")
    ap.add_argument("--out", required=True, help="folder for the English train/dev/test.jsonl")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--cache", required=True, help="LLM response cache folder")
    ap.add_argument("--rejected", required=True)
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    params = load_params()
    splits = {s: read_records(Path(a.input, f"{s}.jsonl")) for s in SPLITS}
    reference = (
        {
            s: read_records(Path(a.reference, f"{s}.jsonl"))
            for s in SPLITS
            if Path(a.reference, f"{s}.jsonl").exists()
        }
        if a.reference
        else None
    )
    cache = ResponseCache(a.cache)
    cache.describe()
    tp = TranslateParams.from_params(params.get("translate") or {})
    if tp.without_reference == "skip" and reference is not None and not any(reference.values()):
        why = (
            f"the dataset has no English rows ({a.reference} is empty) and translate.without_reference is skip "
            "(llm translates it through llm:)"
        )
        for s in SPLITS:
            write_jsonl(Path(a.out, f"{s}.jsonl"), [])
            write_jsonl(Path(a.rejected, f"{s}.jsonl"), [])
        Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(a.metrics, json.dumps({"skipped": why}, ensure_ascii=False, indent=2) + "\n")
        say("translate", "en", why)
        return
    t = translate(
        splits,
        tp,
        LLMParams.from_params(params["llm"]),
        cache,
        a.prompt,
        reference,
    )
    for s in SPLITS:
        write_jsonl(Path(a.out, f"{s}.jsonl"), t.splits[s])
        write_jsonl(Path(a.rejected, f"{s}.jsonl"), t.rejected[s])
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.metrics, json.dumps(t.metrics, ensure_ascii=False, indent=2) + "\n")
    m = t.metrics
    print(
        f"translate: {m['rows']} rows, {m['from_reference']} from the reference, {m['requests']} prompts "
        f"({m['cache_hits']} from cache, {m['requests_sent']} sent, {m['tokens']} tokens), outcomes "
        f"{m['outcomes']}, rejected {m['rejected']}"
    )
    check_answered(m["unanswered"], "translate", a.metrics)
    check_complete(t, a.rejected)


if __name__ == "__main__":
    run_stage(main)
