"""Stage predict: for one trained model family (e.g. sft-plain), per language: dev metrics, test submission."""

import argparse
import json
from pathlib import Path

from mcqflow.cli import run_stage
from mcqflow.config import load_params
from mcqflow.metrics import evaluate
from mcqflow.models import load_for_inference, read_meta
from mcqflow.predict import predict_records, write_details, write_submission
from mcqflow.profiles import profile_from_params
from mcqflow.schema import read_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--name", required=True, help="model family, e.g. sft-plain; models are <models>/<name>-<lang>"
    )
    ap.add_argument("--langs", nargs="+", default=["zh", "en"])
    ap.add_argument("--models", default="models")
    ap.add_argument("--data", default="data/prepared")
    ap.add_argument("--submissions", default="submissions")
    ap.add_argument("--details", default="predictions")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    params = load_params()
    p, profile = params["predict"], profile_from_params(params)
    metrics = {}
    for lang in a.langs:
        model_dir = Path(a.models, f"{a.name}-{lang}")
        prompt_mode = read_meta(model_dir)["mode"]
        inference = p["inference"][prompt_mode]
        model, tokenizer = load_for_inference(str(model_dir))
        for split in ("dev", "test"):
            records = read_records(Path(a.data, lang, f"{split}.jsonl"))
            preds = predict_records(
                records,
                model,
                tokenizer,
                inference,
                prompt_mode,
                p["batch_size"],
                p["max_new_tokens"],
                share_prefix=profile.share_prefix,
            )
            write_details(preds, Path(a.details, f"{a.name}-{lang}-{split}.jsonl"))
            if split == "dev":
                metrics[lang] = evaluate(preds)
            else:
                write_submission(preds, Path(a.submissions, f"{a.name}-{lang}.csv"))
        m = metrics[lang]
        print(
            f"{a.name} {lang}: dev accuracy {m['accuracy']:.3f} "
            f"[{m['accuracy_ci95_low']:.3f}, {m['accuracy_ci95_high']:.3f}], fallbacks {m['fallbacks']}"
        )
    Path(a.metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(a.metrics).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    run_stage(main)
