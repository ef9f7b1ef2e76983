"""`mcqflow` command line. User mistakes (UserError) print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from functools import partial
from pathlib import Path

from mcqflow.config.predict import PredictParams
from mcqflow.core.errors import UserError, run_stage


def cmd_ingest(a: argparse.Namespace) -> None:
    from mcqflow.core.io import check_distinct, check_writable, claim
    from mcqflow.data.ingest import ingest_to

    rejected = a.rejected or str(Path(a.output).with_suffix("")) + ".rejected.jsonl"
    check_distinct(**{"--input": a.input, "--output": a.output, "--rejected": rejected})
    check_writable(**{"--output": a.output, "--rejected": rejected})
    claim(**{"--output": a.output, "--rejected": rejected})
    res = ingest_to(
        a.input, a.output, rejected, a.split, a.lang, empty_rejected=False,
        on_reject=lambda r: print(f"rejected: {r.line()}", file=sys.stderr),
    )  # fmt: skip
    print(
        f"{a.input}: {res.format} format, {res.encoding}, {res.rows} rows -> {res.kept} records in "
        f"{a.output}"
        + (f", {res.rejected_rows} rejected in {rejected}" if res.rejected_rows else "")
        + _labels_line(res.labels_removed)
    )
    if res.rejected_rows and a.strict:
        sys.exit(1)


def _labels_line(removed: dict) -> str:
    if not any(removed.values()):
        return ""
    return f"; option labels removed: {removed['own']} own, {removed['stray']} stray (another option's or a number)"


def cmd_predict(a: argparse.Namespace) -> None:
    # What needs no torch comes first: a wrong flag, an unreadable input or a formula ID is one line at once,
    # and so is a mistyped model folder, before the seconds of imports a model needs.
    from mcqflow.core.io import check_distinct, check_writable, claim
    from mcqflow.core.locate import check_folder
    from mcqflow.data.ingest import ingest_split
    from mcqflow.evaluation.submission import check_submission_ids, write_submission

    # the answer journal (<output>.partial.jsonl) is removed once the outputs are in: no output may be it
    journal_path = f"{a.output}.partial.jsonl"
    check_distinct(**{"--input": a.input, "--output": a.output, "--details": a.details,
                      "the answer journal": journal_path})  # fmt: skip
    check_writable(**{"--output": a.output, "--details": a.details})
    claim(**{"--output": a.output, "--details": a.details})
    if a.batch_size < 1 or a.max_new_tokens < 1:
        raise UserError("--batch-size and --max-new-tokens must be 1 or more")
    if not a.repetition_penalty > 0:
        raise UserError("--repetition-penalty must be above 0 (1.0 = off)")
    records = ingest_split(a.input, "test", a.lang).records
    if not records:
        raise UserError(f"{a.input}: no questions to answer (a header and nothing else?)")
    check_submission_ids([r.id for r in records], a.csv_formulas, a.input)
    check_folder(a.model, "--model")
    from mcqflow.evaluation.metrics import degenerate_warnings, evaluate
    from mcqflow.evaluation.predict import answer_resumably, write_details
    from mcqflow.modeling.models import load_for_inference, read_meta, resolve_base

    model, tokenizer = load_for_inference(a.model, a.adapter, a.quantization, a.dtype, param="--model")
    meta = read_meta(a.adapter or resolve_base(a.model))
    # A model trained by mcqflow knows its mode: reasoning models generate, plain models are letter-scored.
    prompt_mode = a.prompt or meta.get("mode") or ("reasoning" if a.mode == "generate" else "plain")
    inference = a.mode or ("generate" if prompt_mode == "reasoning" else "letter")
    # Answers go to <output>.partial.jsonl as they come: a stopped run, started again, resumes there.
    preds = answer_resumably(
        records, journal_path,
        {"model": a.model, "adapter": a.adapter, "quantization": a.quantization, "dtype": a.dtype},
        model=model, tokenizer=tokenizer, inference=inference, prompt_mode=prompt_mode, batch_size=a.batch_size,
        max_new_tokens=a.max_new_tokens, repetition_penalty=a.repetition_penalty,
        log=lambda m: print(m, file=sys.stderr),
    )  # fmt: skip
    write_submission(preds, a.output, a.csv_formulas)
    if a.details:
        write_details(preds, a.details)
    Path(journal_path).unlink()
    m = evaluate(preds)
    for line in degenerate_warnings(preds, str(a.output)):
        print(f"mcqflow: warning: {line}", file=sys.stderr)
    summary = f"{len(preds)} answers -> {a.output} (fallbacks: {m['fallbacks']})"
    if m["n"]:
        summary += f"; accuracy {m['accuracy']:.3f} on {m['n']} labelled rows"
    print(summary)


REJECTED_SHOWN = 5  # rejected rows evaluate names one by one before it goes on with the rest


def installed_version(name: str) -> str | None:
    """The installed distribution's version, or None (not installed: a checkout run from its folder)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run_record(a: argparse.Namespace, prompt_mode: str) -> dict:
    """What a metrics file needs to say which run made it (as lm-evaluation-harness records): the model,
    adapter, input file and its SHA-256, the read-out, the date and the versions."""
    import hashlib
    from datetime import datetime, timezone

    return {
        "model": a.model,
        "adapter": a.adapter,
        "input": str(a.input),
        "input_sha256": hashlib.sha256(Path(a.input).read_bytes()).hexdigest(),
        "prompt": prompt_mode,
        "repetition_penalty": a.repetition_penalty,
        "shots_from": a.shots_from,
        "dtype": a.dtype,
        "quantization": a.quantization,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {n: installed_version(n) for n in ("mcqflow", "torch", "transformers", "peft")},
    }


def cmd_evaluate(a: argparse.Namespace) -> None:
    # What needs no torch comes first (as in cmd_predict), the model folder last before the imports.
    from mcqflow.core.io import check_distinct, check_writable, claim, user_cache_dir, write_text_atomic
    from mcqflow.core.locate import check_folder
    from mcqflow.data.ingest import ingest_split

    check_distinct(
        **{"--input": a.input, "--details": a.details, "--metrics": a.metrics, "--report": a.report}
    )
    check_writable(**{"--details": a.details, "--metrics": a.metrics, "--report": a.report})
    claim(**{"--details": a.details, "--metrics": a.metrics, "--report": a.report})
    if a.shots < 0 or a.batch_size < 1 or a.max_new_tokens < 1:
        raise UserError("--shots must be 0 or more, --batch-size and --max-new-tokens 1 or more")
    if not a.repetition_penalty > 0:
        raise UserError("--repetition-penalty must be above 0 (1.0 = off)")
    res = ingest_split(a.input, "dev", a.lang)
    if not res.records:  # the one useful line first, not a line per rejected row before it
        why = Counter(r.reason for r in res.rejected).most_common(2)
        raise UserError(
            f"{a.input}: no labelled questions to evaluate"
            + (
                f" ({len(res.rejected)} rows rejected: " + "; ".join(f"{n} × {w}" for w, n in why) + ")"
                if why
                else ""
            )
        )
    check_folder(a.model, "--model")
    from mcqflow.evaluation.evaluate import as_prediction, journal_for, score_resumable, summarize
    from mcqflow.evaluation.predict import run_fingerprint, write_details
    from mcqflow.modeling.models import load_for_inference, read_meta, resolve_base

    for r in res.rejected[:REJECTED_SHOWN]:
        print(f"rejected: {r.line()}", file=sys.stderr)
    if len(res.rejected) > REJECTED_SHOWN:
        print(f"rejected: … and {len(res.rejected) - REJECTED_SHOWN} more rows", file=sys.stderr)
    shots = []
    if a.shots:
        if not a.shots_from:
            raise UserError("--shots needs --shots-from, a labelled file to take the examples from")
        ids = {r.id for r in res.records}
        pool = [r for r in ingest_split(a.shots_from, "dev", a.lang).records if r.id not in ids]
        if len(pool) < a.shots:
            raise UserError(f"{a.shots_from}: {len(pool)} usable examples, --shots asks for {a.shots}")
        shots = pool[: a.shots]
    model, tokenizer = load_for_inference(a.model, a.adapter, a.quantization, a.dtype, param="--model")
    meta = read_meta(a.adapter or resolve_base(a.model))
    prompt_mode = a.prompt or meta.get("mode") or "plain"
    rotations = (0, 1, 2, 3) if a.circular else (0,)
    # Scores go to a journal in the user's cache as they come: the same command, run again after a stop,
    # resumes there. It is removed once the run is through.
    fingerprint = run_fingerprint(
        res.records, model=a.model, adapter=a.adapter, quantization=a.quantization, dtype=a.dtype,
        protocol=a.protocol, rotations=rotations, prompt=prompt_mode,
        max_new_tokens=a.max_new_tokens if a.protocol == "generate" else None,
        repetition_penalty=a.repetition_penalty if a.protocol == "generate" else None,
        shots=[[r.id, r.question, r.options, r.answer] for r in shots],
    )  # fmt: skip
    journal = journal_for(user_cache_dir() / "evaluate" / f"{fingerprint[:20]}.partial.jsonl", fingerprint)
    claim(journal=journal.path)  # the same run started twice would write one journal
    scored = score_resumable(
        res.records, journal, chunk=8 * a.batch_size, log=lambda m: print(m, file=sys.stderr), model=model,
        tokenizer=tokenizer, protocol=a.protocol, rotations=rotations, shots=shots, prompt_mode=prompt_mode,
        batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, repetition_penalty=a.repetition_penalty,
    )  # fmt: skip
    m = {
        "protocol": a.protocol, "shots": a.shots, "circular": a.circular, **summarize(scored, rotations),
        "run": run_record(a, prompt_mode),
    }  # fmt: skip
    line = (
        f"{a.input}: {a.protocol}{' circular' if a.circular else ''}, {a.shots}-shot, {m['n']} questions: "
        f"accuracy {m['accuracy']:.3f} [{m['accuracy_ci95_low']:.3f}, {m['accuracy_ci95_high']:.3f}]"
    )
    if a.circular:
        per = " ".join(f"{v:.3f}" for v in m["rotation_accuracy"].values())
        line += f"; circular {m['circular_accuracy']:.3f}; per rotation {per}"
    print(line + "; letters " + " ".join(f"{k}={v:.2f}" for k, v in m["letter_share"].items()))
    if a.details:
        write_details([as_prediction(s) for s in scored], a.details)
    if a.metrics:
        write_text_atomic(a.metrics, json.dumps(m, indent=2) + "\n")
    if a.report:
        from mcqflow.evaluation.report import build, write_html

        first = [as_prediction(s) for s in scored if s.rotation == rotations[0]]
        name = f"{Path(a.input).name}: {a.model}, {a.protocol}{' circular' if a.circular else ''}, {a.shots}-shot"
        write_html(build(name, first, res.records, m.get("rotation_accuracy")), a.report)
    journal.path.unlink()


def cmd_extract(a: argparse.Namespace) -> None:
    from mcqflow.core.schema import loads
    from mcqflow.evaluation.extract.rules import extract_answer

    for i, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
            text, options = obj["text"], obj.get("options")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"stdin: line {i}: expected a JSON object with 'text' ({e})") from None
        if not isinstance(text, str):
            raise UserError(f"stdin: line {i}: 'text' is {type(text).__name__}, expected a string")
        if options is not None and not (
            isinstance(options, dict) and all(isinstance(v, str) for v in options.values())
        ):
            raise UserError(
                f"stdin: line {i}: 'options' must be an object of letter -> text, got {json.dumps(options)[:80]}"
            )
        ex = extract_answer(text, options)
        print(json.dumps({"answer": ex.answer, "method": ex.method}, ensure_ascii=False), flush=True)


def cmd_validate(a: argparse.Namespace) -> None:
    from mcqflow.config.schema import load_params
    from mcqflow.data.ingest import ingest, ingest_split
    from mcqflow.quality.validation import (
        ValidateParams,
        build_data_docs,
        gx_context,
        summary_table,
        validate,
    )

    params = load_params(a.params)["validate"] if Path(a.params).exists() else {}
    settings = ValidateParams.from_params(params)
    if a.docs:  # before any work: GX reports a folder it cannot write as tracebacks in its log, not an error
        docs = Path(a.docs)
        if docs.exists() and not docs.is_dir():
            raise UserError(f"--docs {docs}: is a file; give a folder for the Data Docs")
        try:
            docs.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--docs {docs}: cannot make the folder ({e.strerror or e})") from None
        if not os.access(docs, os.W_OK):
            raise UserError(f"--docs {docs}: the folder is not writable")
    res = ingest(a.input, a.lang)
    for r in res.rejected:
        print(f"rejected by ingest: {r.line()}", file=sys.stderr)
    reference = ingest_split(a.reference, "test", a.lang).records if a.reference else None
    context = gx_context()
    rep = validate(
        res.records, a.split, a.kind, settings, reference=reference, source=a.input, context=context
    )
    for r in rep.rejected:
        print(f"fails: {r.line()}", file=sys.stderr)
    for f in rep.failures:
        print(f"fails: {f}", file=sys.stderr)
    print(summary_table([rep]))
    if a.docs:
        print(f"Data Docs: {build_data_docs(context, a.docs)}")
    if rep.failures or rep.rejected or res.rejected:
        sys.exit(1)


def cmd_compare(a: argparse.Namespace) -> None:
    from mcqflow.core.io import check_distinct, write_text_atomic
    from mcqflow.evaluation.stats import compare, read_correct, summary_line

    if a.json:  # an output that is an input would overwrite it
        check_distinct(A=a.a, **{"--json": a.json})
        check_distinct(B=a.b, **{"--json": a.json})
    if a.n_boot < 1:
        raise UserError(f"--n-boot {a.n_boot}: expected 1 or more resamples (10000 is the default)")
    r = compare(read_correct(a.a), read_correct(a.b), n_boot=a.n_boot, seed=a.seed)
    print(summary_line(a.name_a or Path(a.a).stem, a.name_b or Path(a.b).stem, r))
    if a.json:
        write_text_atomic(a.json, json.dumps(r, indent=2) + "\n")


def cmd_exps(a: argparse.Namespace) -> None:
    from mcqflow.evaluation.exps import show

    print(show("significance" if a.significance else "accuracy"))


def cmd_pull(a: argparse.Namespace) -> None:
    from mcqflow.data.share import pull

    missing = pull(a.remote)
    for m in missing:
        print(f"mcqflow: missing: {m.line()}", file=sys.stderr)
    if missing:
        sys.exit(1)
    print("pulled every output: `dvc status` is clean and `dvc repro` has nothing to run")


def _names(csv_arg: str | None) -> list[str] | None:
    return csv_arg.split(",") if csv_arg else None


def cmd_bench(a: argparse.Namespace) -> None:
    import tempfile

    from mcqflow.benchmark.bench import Shapes, ensure_weights, markdown, run
    from mcqflow.train.launch import TrainParams, is_main_process, launched, run_under_accelerate

    only = tuple(a.only.split(","))
    unknown = set(only) - {"sft", "predict", "grpo"}
    if unknown:
        raise UserError(
            f"--only: unknown bench(es) {', '.join(sorted(unknown))}; choose from sft, predict, grpo"
        )
    if a.processes > 1 and "predict" in only:
        raise UserError("--processes: predict runs in one process; use --only sft,grpo")
    shapes = (Shapes.smoke() if a.smoke else Shapes()).replace(a.shape or [])
    with tempfile.TemporaryDirectory(prefix="mcqflow-bench-") as tmp:
        work = a.work or tmp
        if a.processes > 1 and not launched():
            # The weights are built once, here, before the processes start; then each runs the benches.
            ensure_weights(a.arch, work, weights=a.weights)
            t = TrainParams(launcher="accelerate", num_processes=a.processes, accelerate_config=a.config)
            os.environ["MCQFLOW_ACCELERATE_CONFIG"] = a.config  # named in the results
            run_under_accelerate(t, ["--module", "mcqflow.cli", *sys.argv[1:], "--work", work])
        res = run(
            a.arch, a.out, work, only, shapes, a.profile, sft_variants=_names(a.sft_variants),
            grpo_variants=_names(a.grpo_variants), baseline=a.baseline, previous=a.continue_from,
            weights=a.weights,
        )  # fmt: skip
    if is_main_process():
        print(markdown(res))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option with a default says it, unless its help already
    explains the default in words."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def model_run_options() -> argparse.ArgumentParser:
    """The options predict and evaluate share (a parent parser): the model and how it is run. The defaults
    are params.yaml's `predict:` section's (config.PredictParams), so the CLI and the stage agree."""
    d = PredictParams()
    p = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
    p.add_argument(
        "--model",
        required=True,
        help="'embedded' (pip install 'mcqflow[embedded]'), 'tiny', a HF id, a local model dir, "
        "or a dir trained by mcqflow",
    )
    p.add_argument("--adapter", help="LoRA adapter directory to apply on --model")
    p.add_argument("--prompt", choices=["plain", "reasoning"], help="default: the model's training mode")
    p.add_argument(
        "--lang", choices=["zh", "en"], help="the questions' language (default: detected from the text)"
    )
    p.add_argument(
        "--quantization",
        choices=["none", "nf4"],
        help="none: the weights as they are; nf4: 4-bit NF4 through bitsandbytes (GPU only)",
    )
    p.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32"],
        default="auto",
        help="auto: bf16 on a GPU, fp32 on a CPU; bfloat16 halves the time on CPUs with bf16 kernels",
    )
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size,
        help="questions per forward pass (lower it on out-of-memory)",
    )  # fmt: skip
    p.add_argument(
        "--max-new-tokens", type=int, default=d.max_new_tokens,
        help="generate mode / protocol: the longest answer written",
    )  # fmt: skip
    p.add_argument(
        "--repetition-penalty", type=float, default=d.repetition_penalty,
        help="generate mode / protocol: >1 penalises tokens already written (a guard against greedy loops); "
        "1.0 = off",
    )  # fmt: skip
    return p


def build_parser() -> argparse.ArgumentParser:
    ours = installed_version("mcqflow") or "unknown (not installed)"
    ap = argparse.ArgumentParser(
        prog="mcqflow", description="Train and run LLMs on Chinese single-choice questions.",
        formatter_class=HelpFormatter,
    )  # fmt: skip
    ap.add_argument("--version", action="version", version=f"mcqflow {ours}")
    sub = ap.add_subparsers(
        dest="command",
        required=True,
        parser_class=partial(argparse.ArgumentParser, formatter_class=HelpFormatter),
    )

    p = sub.add_parser("ingest", help="any supported MCQ file -> canonical JSONL")
    p.add_argument(
        "--input",
        required=True,
        help="an MCQ file: CSV/TSV (Kaggle, CMMLU, C-Eval), JSONL records or chat JSONL",
    )
    p.add_argument("--output", required=True, help="canonical JSONL, one record a line")
    p.add_argument("--lang", choices=["zh", "en"], help="default: detected from the text")
    p.add_argument(
        "--split", choices=["train", "dev", "test"], help="apply the split's rules (labels required...)"
    )
    p.add_argument("--rejected", help="where rejected rows go (default: <output>.rejected.jsonl)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any row was rejected")
    p.set_defaults(fn=cmd_ingest)

    shared = model_run_options()
    p = sub.add_parser(
        "predict", parents=[shared], help="answer a question file, write a Kaggle ID,Answer CSV"
    )
    p.add_argument("--input", required=True, help="questions in any supported format")
    p.add_argument("--output", required=True, help="submission CSV")
    p.add_argument("--mode", choices=["letter", "generate"], help="default: generate for reasoning models")
    p.add_argument("--details", help="per-question JSONL (raw output, extracted letter, method)")
    p.add_argument(
        "--csv-formulas",
        choices=["refuse", "escape", "raw"],
        default=PredictParams().csv_formulas,
        help="IDs starting with = + - @ (spreadsheet formulas): refuse (default, before any work), escape "
        "(prefix ') for spreadsheets, or raw (byte for byte, what Kaggle scores)",
    )
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser(
        "evaluate",
        parents=[shared],
        help="score a labelled question file (any format ingest reads, CMMLU/C-Eval CSVs included) by a "
        "chosen protocol, optionally over the four rotations of the options and with few-shot examples",
    )
    p.add_argument("--input", required=True, help="labelled questions (rows without an answer are rejected)")
    p.add_argument(
        "--protocol",
        choices=["letter", "calibrated", "cloze", "generate"],
        default="letter",
        help="letter: A-D next-token logits; calibrated: the same with the letter prior of content-free "
        "prompts divided out; cloze: mean log-likelihood of each option's text; generate: generation + "
        "answer extraction",
    )
    p.add_argument(
        "--circular", action="store_true", help="score all four rotations; right only if right in all"
    )
    p.add_argument("--shots", type=int, default=0, help="solved examples before each question")
    p.add_argument("--shots-from", help="labelled file the --shots examples come from (its first rows)")
    p.add_argument("--details", help="per question (and rotation) JSONL: answer, gold, scores")
    p.add_argument("--metrics", help="write the metrics JSON here")
    p.add_argument(
        "--report", help="write an HTML report here: gold vs predicted letters, accuracy per topic, rotations"
    )
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("validate", help="run the validate gate's checks on any supported file")
    p.add_argument("--input", required=True, help="an MCQ file ingest reads")
    p.add_argument(
        "--kind", choices=["mcq", "reasoning"], default="mcq", help="reasoning: check the chains too"
    )
    p.add_argument(
        "--split",
        choices=["train", "dev", "test"],
        default="train",
        help="which suite: test rows are reported, never dropped",
    )
    p.add_argument(
        "--lang", choices=["zh", "en"], help="the questions' language (default: detected from the text)"
    )
    p.add_argument("--reference", help="test questions to check for contamination")
    p.add_argument("--params", default="params.yaml", help="thresholds (`validate:`); defaults if absent")
    p.add_argument("--docs", help="write GX Data Docs HTML to this folder")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser(
        "pull", help="dvc pull, then name each output the remote lacks and the stage that makes it"
    )
    p.add_argument("--remote", help="DVC remote name (default: the default remote)")
    p.set_defaults(fn=cmd_pull)

    from mcqflow.evaluation.extract.rules import RULES
    from mcqflow.modeling.architectures import ARCHITECTURES

    p = sub.add_parser(
        "bench", help="time sft, predict and grpo against the vanilla recipe on random-init or real weights"
    )
    p.add_argument(
        "--arch",
        default="qwen2.5-7b",
        choices=[*ARCHITECTURES, "tiny"],
        help="random-init weights of this architecture",
    )
    p.add_argument(
        "--weights",
        metavar="NAME_OR_DIR",
        help="real weights instead of random ones: `embedded` (the real Qwen2.5-Coder-0.5B-Instruct of the "
        "`embedded` extra) or a model folder; GRPO then runs the pipeline's plain and reasoning modes, each "
        "completion ending where the model ends it (default: random weights of --arch)",
    )
    p.add_argument("--out", default="experiments/bench", help="where the JSON and markdown results go")
    p.add_argument("--work", help="where the random weights and outputs go (default: a temporary folder)")
    p.add_argument("--only", default="sft,predict,grpo", help="comma-separated subset of sft,predict,grpo")
    p.add_argument(
        "--profile", default="fast", choices=["fast", "memory"], help="the profile set against vanilla"
    )
    again = "; a name given again runs again (A,B,B,A: what running later is worth, both ways)"
    p.add_argument(
        "--sft-variants", help="comma-separated SFT variants (default: vanilla and the profile)" + again
    )
    p.add_argument(
        "--grpo-variants", help="comma-separated GRPO variants (default: vanilla and the profile)" + again
    )
    p.add_argument(
        "--processes", type=int, default=1, help="run under accelerate launch with this many processes"
    )
    p.add_argument(
        "--config",
        default="configs/accelerate/ddp.yaml",
        help="accelerate config for --processes: ddp.yaml, fsdp2.yaml (shards the model over the GPUs), ...",
    )
    p.add_argument("--baseline", help="a one-process results JSON: SFT scaling is reported against it")
    p.add_argument(
        "--continue-from",
        metavar="RESULTS_JSON",
        help="a results file of this bench on this device (a run cut short, or the first half of one): its "
        "rows are kept, its variants not run again, and the new rows join them in one results file",
    )
    p.add_argument("--smoke", action="store_true", help="tiny shapes: checks the harness, not the speed")
    p.add_argument(
        "--shape",
        action="append",
        metavar="KEY=N",
        help="change one of the bench's shapes (repeatable), e.g. --shape sft_batch=4 --shape grpo_new_tokens=64",
    )
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser(
        "extract-answer",
        help='JSON lines {"text", "options"?} on stdin -> {"answer", "method"}',
        description="Read the answer letter out of model outputs, the way predict and the GRPO rewards do. "
        'Input: one JSON object a line on stdin, {"text": OUTPUT} or {"text": OUTPUT, "options": {"A": ..., '
        '"B": ..., "C": ..., "D": ...}} (the options let an output that names an option\'s text count). '
        'Output: one line each, {"answer": "A".."D" or null, "method": the rule that decided}. The first '
        "rule that applies decides (mcqflow/evaluation/extract/rules.py).",
        epilog="rules, in the order they run:\n"
        + "\n".join(f"  {r.name:<22}{'none: ' if r.reads is None else ''}{r.says}" for r in RULES)
        + '\n\nexample:\n  echo \'{"text": "<think>A?</think>排除A和B……最終選擇D"}\' | mcqflow extract-answer\n'
        '  {"answer": "D", "method": "zh-phrase"}',
    )
    p.set_defaults(fn=cmd_extract)

    p = sub.add_parser(
        "compare",
        help="paired comparison of two runs on the same questions: accuracy difference (B - A) with a "
        "paired bootstrap 95%% interval and McNemar's exact p",
    )
    p.add_argument("a", help="per-question predictions of run A (predictions/<name>-<lang>-dev.jsonl)")
    p.add_argument("b", help="per-question predictions of run B, on the same question ids")
    p.add_argument("--name-a", help="label for A (default: the file name)")
    p.add_argument("--name-b", help="label for B (default: the file name)")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser(
        "exps",
        help="DVC's experiments as readable tables: per experiment, model and language, dev and test "
        "accuracy with intervals, no-answer share, largest letter share; then the params each changed",
        description="Reads `dvc exp show --json` in the current project (make compare / make significance).",
    )
    p.add_argument("--significance", action="store_true",
                   help="the paired comparisons (metrics/compare/) instead: B - A, bootstrap interval, McNemar p")  # fmt: skip
    p.set_defaults(fn=cmd_exps)
    return ap


def main(argv: list[str] | None = None) -> None:
    allocator_defaults()
    a = build_parser().parse_args(argv)
    run_stage(lambda: a.fn(a))


def allocator_defaults(environ=None) -> None:
    """PyTorch's CUDA caching allocator with expandable segments, unless its configuration is set already
    (read when CUDA first allocates, which no command has done yet here). Whole-batch SFT on ragged lengths
    has a new set of block sizes every step: on an H200 at 121.8 GiB of 139 one step took 3.7 s against
    ~0.8 s for the others (bench run 0419), and on an H100 16 x 2 ran out of memory (run 0026) where with
    expandable segments it ran at 77 GiB (runs 0432, 0449). No effect without a GPU."""
    environ = os.environ if environ is None else environ
    if not any(environ.get(k) for k in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")):
        environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"


if __name__ == "__main__":
    main()
