"""Stage predict: one model on one language: dev metrics, test predictions and the Kaggle submission.

`--name base` scores the untrained `model.base` zero-shot (plain prompt, letter scoring): the baseline
every trained model is compared with. Any other name is a trained model, `<models>/<name>-<lang>`."""

import argparse
import json
import sys
from pathlib import Path

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.io import claim, write_text_atomic
from mcqflow.core.schema import read_records
from mcqflow.core.skip import reason, say
from mcqflow.evaluation.evaluate import score, summarize
from mcqflow.evaluation.metrics import degenerate_warnings, evaluate, headline
from mcqflow.evaluation.predict import answer_resumably, write_details
from mcqflow.evaluation.report import build, plot_rows, write_html
from mcqflow.evaluation.submission import check_submission_ids, write_submission
from mcqflow.modeling.models import load_for_inference, read_meta, resolve_base
from mcqflow.train.profiles import profile_from_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True, help="base, or a model family such as sft-plain")
    ap.add_argument("--lang", required=True)
    ap.add_argument("--models", help="folder of trained models, <name>-<lang>; needed unless --name base")
    ap.add_argument(
        "--tiny-dir", help="the tiny model's folder (for model.base: tiny); needed with --name base"
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", required=True)
    ap.add_argument("--details", required=True, help="folder for <name>-<lang>-{dev,test}.jsonl")
    ap.add_argument("--metrics", required=True, help="the whole dev (and labelled test) record, JSON")
    ap.add_argument(
        "--headline", required=True, help="the DVC metric: dev accuracy, interval, no-answer share (JSON)"
    )
    ap.add_argument("--report", required=True, help="the dev report, HTML (mcqflow.evaluation.report)")
    ap.add_argument("--plots", required=True, help="folder for <name>-<lang>-{confusion,topics}.json")
    ap.add_argument(
        "--base-metrics", help="the untrained base's metrics (predict_base), shown beside in the report"
    )
    a = ap.parse_args()
    if a.name == "base" and not a.tiny_dir:
        ap.error("--name base needs --tiny-dir")
    if a.name != "base" and not a.models:
        ap.error(f"--name {a.name} needs --models")
    # two runs writing these at once (two workspaces on one checkout, a stage and a CLI run) are refused
    details = {f"--details ({s})": Path(a.details, f"{a.name}-{a.lang}-{s}.jsonl") for s in ("dev", "test")}
    outs = {
        "--submission": a.submission,
        "--metrics": a.metrics,
        "--headline": a.headline,
        "--report": a.report,
    }
    claim(**outs, **details)
    params = load_params()
    p, profile = section(params, "predict"), profile_from_params(params)
    model_params = section(params, "model")
    dtype = model_params.dtype
    if a.name == "base":
        base = model_params.base
        model_path, prompt_mode = resolve_base(base, a.tiny_dir), "plain"
    else:
        model_path = str(Path(a.models, f"{a.name}-{a.lang}"))
    formulas, penalty = p.csv_formulas, p.repetition_penalty
    test_ids = [r.id for r in read_records(Path(a.data, a.lang, "test.jsonl"))]
    dev_empty = not read_records(Path(a.data, a.lang, "dev.jsonl"))
    why = (reason(model_path) if a.name != "base" else None) or (
        f"{Path(a.data, a.lang)} has no rows (the branch is skipped upstream)"
        if dev_empty and not test_ids
        else None
    )
    if why:  # a language the dataset lacks (mcqflow.core.skip)
        write_skipped(a, why)
        return
    if a.name != "base":
        base, prompt_mode = read_meta(model_path).get("base"), read_meta(model_path)["mode"]
    inference = p.inference[prompt_mode]
    check_submission_ids(test_ids, formulas, str(Path(a.data, a.lang, "test.jsonl")))  # before any work
    model, tokenizer = load_for_inference(model_path, dtype=dtype)
    metrics, report, test_metrics = {}, {}, None
    for split in ("dev", "test"):
        records = read_records(Path(a.data, a.lang, f"{split}.jsonl"))
        # Answers are journalled as they come (beside the outputs, not one of them): a killed run resumes.
        journal = Path(a.details, f".{a.name}-{a.lang}-{split}.partial.jsonl")
        preds = answer_resumably(
            records, journal, {"model": model_path, "base": base, "dtype": dtype}, model=model,
            tokenizer=tokenizer, inference=inference, prompt_mode=prompt_mode, batch_size=p.batch_size,
            max_new_tokens=p.max_new_tokens, repetition_penalty=penalty, share_prefix=profile.share_prefix,
        )  # fmt: skip
        write_details(preds, Path(a.details, f"{a.name}-{a.lang}-{split}.jsonl"))
        journal.unlink()
        if split == "dev":
            metrics = evaluate(preds)
            rotations = None
            if inference == "letter":  # the four rotations of the options: position bias as a number
                circ = summarize(score(records, model, tokenizer, "letter", (0, 1, 2, 3), None, prompt_mode,
                                       p.batch_size), (0, 1, 2, 3))  # fmt: skip
                rotations = circ["rotation_accuracy"]
                metrics.update({k: circ[k] for k in ("circular_accuracy", "rotation_accuracy")})
            title = (
                f"base ({a.lang}): {base} as it is, untrained"
                if a.name == "base"
                else f"{a.name} ({a.lang}): {inference} read-out of the model trained from {base}"
            )
            baseline = None
            if a.base_metrics and Path(a.base_metrics).is_file():
                baseline = json.loads(Path(a.base_metrics).read_text(encoding="utf-8")).get(a.lang)
            report = build(
                title,
                preds,
                records,
                rotations,
                degenerate_warnings(preds, f"{a.name} {a.lang} dev"),
                baseline,
            )
        else:
            write_submission(preds, a.submission, formulas)
            if records and all(
                r.answer is not None for r in records
            ):  # a labelled test split: scored like dev
                test_metrics = evaluate(preds)
        for line in degenerate_warnings(preds, f"{a.name} {a.lang} {split}"):
            print(f"mcqflow: warning: {line}", file=sys.stderr)
    m = metrics
    print(
        f"{a.name} {a.lang} ({base}): dev accuracy {m['accuracy']:.3f} "
        f"[{m['accuracy_ci95_low']:.3f}, {m['accuracy_ci95_high']:.3f}] on {m['n']}, "
        f"fallbacks {m['fallbacks']}, letter shares "
        + " ".join(f"{k}={v:.2f}" for k, v in m["letter_share"].items())
    )
    if test_metrics is not None:
        t = test_metrics
        print(
            f"{a.name} {a.lang}: test accuracy {t['accuracy']:.3f} [{t['accuracy_ci95_low']:.3f}, "
            f"{t['accuracy_ci95_high']:.3f}] on {t['n']}"
        )
        metrics = {**metrics, "test": test_metrics}
    write_text_atomic(a.metrics, json.dumps({a.lang: metrics}, indent=2) + "\n")
    write_text_atomic(a.headline, json.dumps(headline(metrics), indent=2) + "\n")
    write_html(report, a.report)
    for kind, rows in plot_rows(report).items():
        write_text_atomic(
            Path(a.plots, f"{a.name}-{a.lang}-{kind}.json"), json.dumps(rows, ensure_ascii=False) + "\n"
        )


def write_skipped(a, why: str) -> None:
    """Every output of a skipped branch, saying so: no submission rows, no predictions, a one-line page."""
    from html import escape

    write_text_atomic(a.submission, "ID,Answer\n")
    for split in ("dev", "test"):
        write_text_atomic(Path(a.details, f"{a.name}-{a.lang}-{split}.jsonl"), "")
    write_text_atomic(a.metrics, json.dumps({a.lang: {"skipped": why}}, ensure_ascii=False, indent=2) + "\n")
    write_text_atomic(a.headline, json.dumps(headline({"skipped": why})) + "\n")
    title = escape(f"{a.name} ({a.lang}): skipped")
    write_text_atomic(
        a.report,
        f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1><p>{escape(why)}</p>\n",
    )
    for kind in ("confusion", "topics"):
        write_text_atomic(Path(a.plots, f"{a.name}-{a.lang}-{kind}.json"), "[]\n")
    say("predict", f"{a.name} {a.lang}", why)


if __name__ == "__main__":
    run_stage(main)
