"""The real-weights experiment's read-out (bench/exp_run_embedded.sh), over the per-experiment folders in
RUNS (`runs/<experiment>/`: metrics, predictions, dvclive, data, models, params.yaml as the run left them).

- `score`: every model of every finished experiment, letter-scored over the four rotations of its options
  (`mcqflow evaluate --protocol letter --circular`'s scoring, in one process so the base loads once per
  model), on the dev and test years: `runs/<experiment>/eval/<model>-<split>.json` (+ `.jsonl` details).
- `table`: the stage-by-stage table (Markdown) with Wilson intervals, circular accuracy, letter shares,
  the no-answer share of generated answers, each stage's paired difference against the one before
  (bootstrap interval, McNemar p), and the GRPO curves' first and last tenths. Among the GRPO variants of
  one mode the one with the best dev accuracy is chosen (the plan's rule); only its test score is shown
  in the main table, the others stay in the sweep table with dev scores only.
- `adapters`: the first experiment's LoRA adapters in bf16, tarred and cut into pieces under 16 MiB.

- `reproduce`: two leases' RUNS of the same plan, stage by stage: accuracy on each, the paired difference,
  the share of questions answered alike, and whether the second lies inside the first's 95% interval.

Usage: python bench/embedded_report.py {score,table,adapters} RUNS --plan PLAN [--out OUT]
       python bench/embedded_report.py reproduce RUNS RUNS_AGAIN --plan PLAN [--out OUT]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import yaml

MODELS = ("sft-plain", "sft-reasoning", "grpo")
SPLITS = ("dev", "test")


def read_plan(path: Path) -> list[tuple[str, dict[str, str]]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, *words = shlex.split(line)
        sets = dict(w.split("=", 1) for w in words if w != "-S")
        out.append((name, sets))
    return out


def finished(runs: Path, plan) -> list[tuple[str, dict[str, str]]]:
    return [(n, s) for n, s in plan if (runs / n / "done").exists()]


def source_of(sets: dict[str, str]) -> str:
    return Path(sets.get("data.source", "data/sample")).name


# --- score -------------------------------------------------------------------------------------------


def cmd_score(runs: Path, plan) -> None:
    from mcqflow.core.io import write_text_atomic
    from mcqflow.core.schema import read_records
    from mcqflow.evaluation.evaluate import as_prediction, score, summarize
    from mcqflow.evaluation.predict import write_details
    from mcqflow.modeling.models import load_for_inference

    rotations = (0, 1, 2, 3)
    seen: dict[str, tuple[Path, str]] = {}  # weights' hash -> (eval folder, label) of a model scored before
    for name, sets in finished(runs, plan):
        run = runs / name
        data = {s: read_records(run / "data/validated/zh" / f"{s}.jsonl") for s in SPLITS}
        if not data["dev"]:
            continue
        # The base is the same model for every experiment on one dataset: scored once, under _base/<source>.
        base = sets.get("model.base", "tiny")
        base = str(run / "models/tiny") if base == "tiny" else base
        models = [("base", base, runs / "_base" / source_of(sets))]
        models += [(m, str(run / "models" / f"{m}-zh"), run / "eval") for m in MODELS]
        for label, path, where in models:
            todo = [  # an unlabelled split (the sample's test) has nothing to score
                s for s in SPLITS
                if data[s] and all(r.answer for r in data[s]) and not (where / f"{label}-{s}.json").exists()
            ]  # fmt: skip
            trained = any((Path(path) / f).is_file() for f in ("adapter_config.json", "config.json"))
            if label != "base" and not trained:  # not made, or skipped (skipped.json)
                continue
            # A model another experiment made too (the run cache's: an experiment that changed only predict
            # settings) has its scores already: copied, not made again
            key = weights_hash(Path(path)) if label != "base" else None
            same = seen.get(key) if key else None
            if key:
                seen.setdefault(key, (where, label))
            for split in [s for s in todo if same and (same[0] / f"{same[1]}-{s}.json").is_file()]:
                where.mkdir(parents=True, exist_ok=True)
                for suffix in (".json", ".jsonl"):
                    shutil.copyfile(
                        same[0] / f"{same[1]}-{split}{suffix}", where / f"{label}-{split}{suffix}"
                    )
                print(f"{name} {label} {split}: the same weights as in {same[0].parent.name}, scores copied")
                todo.remove(split)
            if not todo:
                continue
            model, tok = load_for_inference(path)
            for split in todo:
                # Letter read-out with the plain prompt for every model, the reasoning ones too: what each
                # knows without writing a chain (their generated answers are the predict stage's).
                scored = score(
                    data[split], model, tok, "letter", rotations, prompt_mode="plain", batch_size=32
                )
                m = {
                    "protocol": "letter",
                    "prompt": "plain",
                    "circular": True,
                    **summarize(scored, rotations),
                }
                where.mkdir(parents=True, exist_ok=True)
                write_details([as_prediction(s) for s in scored], where / f"{label}-{split}.jsonl")
                write_text_atomic(where / f"{label}-{split}.json", json.dumps(m, indent=2) + "\n")
                print(
                    f"{name} {label} {split}: letter {m['accuracy']:.3f}, circular {m['circular_accuracy']:.3f}",
                    flush=True,
                )
            del model


def weights_hash(folder: Path) -> str | None:
    """SHA-256 over a model folder's weight files (adapter or full), or None when it has none."""
    import hashlib

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


# --- table -------------------------------------------------------------------------------------------


def load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def predict_metrics(run: Path, model: str, split: str) -> dict | None:
    m = load(run / "metrics/predict" / f"{model}-zh.json")
    if not m or "skipped" in m.get("zh", {}):
        return None
    m = m["zh"]
    return m if split == "dev" else m.get("test")


def pct(x: float) -> str:
    return f"{x:.3f}"


def paired(run_a: Path, a: str, run_b: Path, b: str, split: str | tuple[str, ...]) -> dict | None:
    """B against A question by question on one split, or on several pooled (question ids are unique
    across splits)."""
    from mcqflow.evaluation.stats import compare, read_correct

    xa, xb = {}, {}
    for sp in (split,) if isinstance(split, str) else split:
        pa, pb = run_a / "predictions" / f"{a}-zh-{sp}.jsonl", run_b / "predictions" / f"{b}-zh-{sp}.jsonl"
        if not (pa.is_file() and pb.is_file()):
            return None
        xa.update(read_correct(pa))
        xb.update(read_correct(pb))
    return compare(xa, xb)


def curve(run: Path, *parts: str) -> list[float]:
    path = run.joinpath("dvclive/grpo-zh/plots/metrics", *parts)
    if not path.is_file():
        return []
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    col = header.split("\t").index(Path(parts[-1]).stem)
    return [float(r.split("\t")[col]) for r in rows if r.strip()]


def ends(values: list[float]) -> str:
    if not values:
        return "–"
    k = max(1, len(values) // 10)
    return f"{sum(values[:k]) / k:.2f} → {sum(values[-k:]) / k:.2f}"


def grpo_row(run: Path) -> dict:
    return {
        "reward": ends(curve(run, "rewards/correctness/mean.tsv")),
        "zero_std": ends(curve(run, "frac_reward_zero_std.tsv")),
        "entropy": ends(curve(run, "entropy.tsv")),
        "length": ends(curve(run, "completions/mean_length.tsv")),
        "steps": len(curve(run, "rewards/correctness/mean.tsv")),
    }


def family(sets: dict[str, str]) -> tuple:
    """Experiments that differ only in grpo.* share everything up to GRPO (DVC's run cache restores it):
    one family, whose GRPO variants are chosen among on dev. Anything else (the data SFT sees, the predict
    settings) makes a family of its own, with its own chain."""
    return tuple(sorted((k, v) for k, v in sets.items() if not k.startswith("grpo.")))


def delta(c: dict) -> str:
    return (
        f"{c['difference']:+.3f} [{c['difference_ci95_low']:+.3f}, {c['difference_ci95_high']:+.3f}], "
        f"p {c['mcnemar_p']:.3g} ({c['only_b_correct']} vs {c['only_a_correct']} right only here / only there)"
    )


def cmd_table(runs: Path, plan, out: Path) -> None:
    done = finished(runs, plan)
    if not done:
        print("no finished experiment", file=sys.stderr)
        return
    lines = [
        "# Real weights on a GPU: the pipeline's stages on GAOKAO (generated by bench/embedded_report.py)",
        "",
    ]
    by_family: dict[tuple, list] = {}
    for name, sets in done:
        by_family.setdefault(family(sets), []).append((name, sets))
    heads: dict[str, tuple[str, dict]] = {}  # each dataset's first family: what later families differ from
    for exps in by_family.values():
        source = source_of(exps[0][1])
        first, first_sets = exps[0]
        run0 = runs / first
        head = heads.setdefault(source, (first, first_sets))
        differs = {k: v for k, v in first_sets.items() if not k.startswith("grpo.") and head[1].get(k) != v}
        differs.update({k: "(unset)" for k in head[1] if not k.startswith("grpo.") and k not in first_sets})
        # The GRPO variant of each mode chosen on dev (ties: the earlier line).
        chosen = {}
        for name, _ in exps:
            mode = yaml.safe_load((runs / name / "params.yaml").read_text(encoding="utf-8"))["grpo"]["mode"]
            m = predict_metrics(runs / name, "grpo", "dev")
            if m and (mode not in chosen or m["accuracy"] > chosen[mode][1]):
                chosen[mode] = (name, m["accuracy"])
        chain = [("base", run0, "base", None), ("sft-plain", run0, "sft-plain", "base")]
        chain.append(("sft-reasoning", run0, "sft-reasoning", "sft-plain"))
        for mode, prev in (("reasoning", "sft-reasoning"), ("plain", "sft-plain")):
            if mode in chosen:
                chain.append((f"grpo ({mode}, {chosen[mode][0]})", runs / chosen[mode][0], "grpo", prev))
        title = f"## {source}: base → sft-plain → sft-reasoning → grpo"
        if differs:
            title += " with " + ", ".join(f"{k}={v}" for k, v in differs.items())
        lines += [title, ""]
        if differs:
            lines += [
                f"The same as the `{head[0]}` family but for {', '.join(differs)}; the last column compares "
                f"each stage with the same stage there, question by question.",
                "",
            ]
        years = yaml.safe_load((run0 / "params.yaml").read_text(encoding="utf-8"))["data"].get("years", {})
        for split in SPLITS:
            span = "–".join(map(str, years.get(split, []))) if source != "sample" else ""
            lines += [
                f"### {split}{f' (exam years {span})' if span else ''}",
                "",
                "| stage | read-out | n | accuracy [95% Wilson] | no answer | letters A B C D | letter read-out, "
                "4 rotations: accuracy / circular [95% Wilson] | vs previous stage: difference [paired "
                "bootstrap 95%], McNemar p |" + (f" vs the same stage in `{head[0]}` |" if differs else ""),
                "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if differs else ""),
            ]
            runs_of = {label: (run, model) for label, run, model, _ in chain}
            for label, run, model, prev in chain:
                pm = predict_metrics(run, model, split)
                if pm is None:
                    continue
                where = runs / "_base" / source if model == "base" else run / "eval"
                ev = load(where / f"{model}-{split}.json")
                if model == "sft-reasoning" or (model == "grpo" and "reasoning" in label):
                    readout, no_answer = "generate", pct(pm["invalid_extraction_rate"])
                else:
                    readout, no_answer = "letter", "–"
                shares = " ".join(f"{pm['letter_share'][k]:.2f}" for k in "ABCD")
                acc = f"{pm['accuracy']:.3f} [{pm['accuracy_ci95_low']:.3f}, {pm['accuracy_ci95_high']:.3f}]"
                circ = (
                    f"{ev['accuracy']:.3f} / {ev['circular_accuracy']:.3f} "
                    f"[{ev['circular_ci95_low']:.3f}, {ev['circular_ci95_high']:.3f}]"
                    if ev
                    else "–"
                )
                diff = "–"
                if prev:
                    c = paired(*runs_of[prev], run, model, split)
                    if c:
                        diff = f"{delta(c)} vs {prev}"
                row = (
                    f"| {label} | {readout} | {pm['n']} | {acc} | {no_answer} | {shares} | {circ} | {diff} |"
                )
                if differs:
                    c = (
                        paired(runs / head[0], model, run, model, split)
                        if not label.startswith("grpo")
                        else None
                    )
                    row += f" {delta(c)} |" if c else " – |"
                lines.append(row)
            lines.append("")
        pooled = []
        for label, run, model, prev in chain:
            c = paired(*runs_of[prev], run, model, SPLITS) if prev else None
            if c:
                pooled.append(
                    f"| {label} | {prev} | {c['n']} | {c['accuracy_a']:.3f} → {c['accuracy_b']:.3f} | {delta(c)} |"
                )
        if pooled:
            lines += [
                f"### {' + '.join(SPLITS)} pooled",
                "",
                "| stage | vs | n | accuracy | difference [paired bootstrap 95%], McNemar p |",
                "| --- | --- | --- | --- | --- |",
                *pooled,
                "",
            ]
        grpo_exps = [(n, s) for n, s in exps if predict_metrics(runs / n, "grpo", "dev")]
        if grpo_exps:
            lines += [
                "### GRPO sweep (chosen on dev; test only for the chosen one, in the table above)",
                "",
                "| experiment | init / mode | lr | steps × prompts × generations | dev accuracy | vs its start "
                "(dev), McNemar p | correctness reward, first → last tenth | groups with zero reward std | "
                "entropy | completion length |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for name, _ in grpo_exps:
                run = runs / name
                pm = predict_metrics(run, "grpo", "dev")
                gp = yaml.safe_load((run / "params.yaml").read_text(encoding="utf-8"))["grpo"]  # as it ran
                init = gp["init"]
                # results/ keeps the shared SFT stages' files once, in the first experiment (they are the run
                # cache's, byte for byte); a run that has its own uses them
                start = run if (run / "predictions" / f"{init}-zh-dev.jsonl").is_file() else run0
                c = paired(start, init, run, "grpo", "dev")
                g = grpo_row(run)
                shape = f"{gp['max_steps']} × {gp['prompts_per_step']} × {gp['num_generations']}"
                vs = f"{c['difference']:+.3f}, p {c['mcnemar_p']:.3g}" if c else "–"
                mark = " (chosen)" if any(v[0] == name for v in chosen.values()) else ""
                lines.append(
                    f"| {name}{mark} | {init} / {gp['mode']} | {gp['learning_rate']} | {shape} "
                    f"| {pm['accuracy']:.3f} | {vs} | {g['reward']} | {g['zero_std']} | {g['entropy']} | {g['length']} |"
                    if pm
                    else f"| {name} | – | – | – | – | – | – | – | – | – |"
                )
            lines.append("")
    lines += ["## Commands", ""]
    for name, sets in done:
        args = " ".join(f"-S {k}={v}" for k, v in sets.items())
        lines.append(f"- `{name}`: `dvc exp run -n {name} {args}`")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


# --- reproduce ---------------------------------------------------------------------------------------


def predictions_of(runs: Path, name: str, model: str, split: str, plan) -> Path | None:
    """An experiment's predictions for one model; a stage it shares with its family's first experiment
    (results/ keeps those once, there) is read from that one."""
    path = runs / name / "predictions" / f"{model}-zh-{split}.jsonl"
    if path.is_file() or model == "grpo":
        return path if path.is_file() else None
    sets = dict(plan)[name]
    head = next(n for n, s in plan if family(s) == family(sets) and (runs / n / "done").exists())
    path = runs / head / "predictions" / f"{model}-zh-{split}.jsonl"
    return path if path.is_file() else None


def answers(path: Path) -> dict[str, str]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {r["id"]: r["answer"] for r in rows}


def cmd_reproduce(first: Path, second: Path, plan, out: Path) -> None:
    """Every experiment both leases finished, stage by stage: the second lease's accuracy against the
    first's, question by question (paired bootstrap, McNemar), the share of questions answered alike, and
    whether the second accuracy lies inside the first one's 95% Wilson interval."""
    from mcqflow.evaluation.metrics import wilson_interval
    from mcqflow.evaluation.stats import compare, read_correct

    both = [(n, s) for n, s in plan if (first / n / "done").exists() and (second / n / "done").exists()]
    lines = [
        f"# The same command on two leases: {first} (A) and {second} (B)",
        "",
        "| experiment | stage | split | n | A | B | B − A [paired bootstrap 95%], McNemar p | same answer "
        "| B inside A's 95% Wilson interval |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    seen = set()
    for name, sets in both:
        for model in ("base", *MODELS):
            for split in SPLITS:
                pa, pb = (predictions_of(r, name, model, split, plan) for r in (first, second))
                key = (name if model == "grpo" else family(sets), model, split)
                if not (pa and pb) or key in seen:
                    continue  # a stage shared with an experiment above (its family's) is shown there
                seen.add(key)
                c = compare(read_correct(pa), read_correct(pb))
                lo, hi = wilson_interval(round(c["accuracy_a"] * c["n"]), c["n"])
                aa, ab = answers(pa), answers(pb)
                same = sum(aa[i] == ab.get(i) for i in aa) / len(aa)
                inside = "yes" if lo <= c["accuracy_b"] <= hi else "**no**"
                lines.append(
                    f"| {name} | {model} | {split} | {c['n']} | {c['accuracy_a']:.3f} | {c['accuracy_b']:.3f} "
                    f"| {delta(c)} | {same:.2f} | {inside} |"
                )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


# --- adapters ----------------------------------------------------------------------------------------


def cmd_adapters(runs: Path, plan, out: Path, limit: int = 15 << 20, total: int = 56 << 20) -> None:
    import io
    import tarfile

    import torch
    from safetensors.torch import load_file, save_file

    done = finished(runs, plan)
    if not done:
        return
    name = done[0][0]
    buf, sent = io.BytesIO(), []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for model in MODELS:
            folder = runs / name / "models" / f"{model}-zh"
            if not (folder / "adapter_config.json").is_file():
                continue
            sent.append(model)
            for f in sorted(folder.iterdir()):
                if f.is_dir():
                    continue
                if f.suffix == ".safetensors":
                    t = {
                        k: v.to(torch.bfloat16) if v.is_floating_point() else v
                        for k, v in load_file(f).items()
                    }
                    data = io.BytesIO(save_bytes(t, save_file))
                    info = tarfile.TarInfo(f"{name}/{model}-zh/{f.name}")
                    info.size = len(data.getvalue())
                    tar.addfile(info, data)
                else:
                    tar.add(f, arcname=f"{name}/{model}-zh/{f.name}")
    blob = buf.getvalue()
    if not sent:
        print(f"adapters: {name} trained no LoRA adapter")
        return
    if len(blob) > total:
        print(
            f"adapters: {len(blob) / 2**20:.1f} MiB in bf16, over the {total >> 20} MiB left for them: not sent"
        )
        return
    for i in range(0, len(blob), limit):
        (out / f"adapters.tar.{i // limit:02d}").write_bytes(blob[i : i + limit])
    print(f"adapters of {name}: {len(blob) / 2**20:.1f} MiB in {(len(blob) + limit - 1) // limit} pieces")


def save_bytes(tensors: dict, save_file) -> bytes:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        save_file(tensors, tmp.name, metadata={"format": "pt"})
        return Path(tmp.name).read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["score", "table", "adapters", "reproduce"])
    ap.add_argument("runs", type=Path)
    ap.add_argument("again", type=Path, nargs="?", help="reproduce: a second lease's RUNS, the same plan")
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    plan = read_plan(a.plan)
    if a.command == "score":
        cmd_score(a.runs, plan)
    elif a.command == "reproduce":
        if not a.again:
            ap.error("reproduce needs two RUNS folders")
        cmd_reproduce(a.runs, a.again, plan, a.out or a.again / "REPRODUCE.md")
    elif a.command == "table":
        cmd_table(a.runs, plan, a.out or a.runs / "README.md")
    else:
        cmd_adapters(a.runs, plan, a.out or Path("."))


if __name__ == "__main__":
    main()
