"""DVC's experiments as tables a person can read in a terminal (`make compare`, `make significance`).

`dvc exp show` gives every metric and parameter a column of its own. Here each experiment is a block of
rows, one per model and language (or per comparison), with the few numbers that matter side by side, and
the parameters an experiment changed in a table of their own. The experiments, their commits and params
come from `dvc exp show --json` (DVC's own serialisation: the workspace, the baseline commit, and the
experiments derived from it). The numbers come from the predict and compare stages' whole records
(`metrics/predict/`, `metrics/compare/`): plain outputs kept in git, so each experiment's are read at its
own commit (`git show <rev>:<path>`), the workspace's from disk. Only the headline (`metrics/dev/`) is a
DVC metric (mcqflow.evaluation.metrics).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mcqflow.core.errors import UserError

MODELS = ("base", "sft-plain", "sft-reasoning", "grpo")
PREDICT = re.compile(r"(?:^|/)metrics/predict/(?P<model>[\w-]+)-(?P<lang>[a-z]{2})\.json$")
COMPARE = re.compile(r"(?:^|/)metrics/compare/(?P<key>[\w-]+)\.json$")
# the predict and compare stages' whole records, read at each experiment's commit
RECORDS = ("metrics/predict", "metrics/compare")


@dataclass
class Exp:
    name: str
    params: dict[str, object] = field(default_factory=dict)  # flattened: "grpo.learning_rate" -> 1e-5
    metrics: dict[str, dict] = field(default_factory=dict)  # DVC metrics file -> its data (the headline)
    rev: str = "workspace"  # the experiment's commit, or "workspace"
    records: dict[str, dict] = field(default_factory=dict)  # file under RECORDS -> its data, at rev


def read(doc: list[dict]) -> list[Exp]:
    """Experiments from `dvc exp show --json`, in its order: the workspace, the baseline, then the
    baseline's experiments (named, or by short hash)."""
    out = []

    def add(state: dict, name: str) -> None:
        data = state.get("data") or {}
        params = {}
        for result in (data.get("params") or {}).values():
            params.update(_flatten((result or {}).get("data") or {}))
        metrics = {path: (r or {}).get("data") or {} for path, r in (data.get("metrics") or {}).items()}
        out.append(Exp(name, params, metrics, state.get("rev") or data.get("rev") or "workspace"))

    for base in doc:
        rev = base.get("rev", "")
        add(base, base.get("name") or ("workspace" if rev == "workspace" else rev[:7]))
        for group in base.get("experiments") or []:
            for state in group.get("revs") or []:
                add(state, state.get("name") or group.get("name") or state.get("rev", "")[:7])
    return out


Loader = Callable[[str], dict[str, dict]]  # rev -> {path: data} of the JSON files under RECORDS


def git_records(root: str | Path = ".") -> Loader:
    """Read RECORDS in the project at `root`: from disk for the workspace, else from git at the commit."""
    root = Path(root)

    def load(rev: str) -> dict[str, dict]:
        if rev == "workspace":
            paths = sorted(p.relative_to(root).as_posix() for d in RECORDS for p in (root / d).glob("*.json"))
            texts = {p: (root / p).read_text(encoding="utf-8") for p in paths}
        else:
            listed = _git(root, "ls-tree", "-r", "--name-only", rev, "--", *RECORDS)
            texts = {p: _git(root, "show", f"{rev}:{p}") for p in listed.splitlines() if p.endswith(".json")}
        out = {}
        for path, text in texts.items():
            try:
                out[path] = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} (at {rev[:12]}): not JSON ({e})") from None
        return out

    return load


def _git(root: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"git {' '.join(args[:2])}: {last}")
    return r.stdout


def attach(exps: list[Exp], load: Loader) -> list[Exp]:
    """Each experiment's records, at its commit; an experiment with no metrics yet (queued, failed) has
    none, so a queued run's commit does not show the baseline's numbers as its own."""
    for e in exps:
        e.records = load(e.rev) if e.metrics else {}
    return exps


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _interval(m: dict) -> str:
    if "accuracy" not in m:
        return "–"
    lo, hi = m.get("accuracy_ci95_low"), m.get("accuracy_ci95_high")
    return (
        f"{m['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"
        if lo is not None and hi is not None
        else f"{m['accuracy']:.3f}"
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def accuracy_table(exps: list[Exp]) -> str:
    """Per experiment, model and language: dev accuracy with its interval, circular accuracy (right under
    all four rotations of the options, where the stage measured it), labelled-test accuracy, the share of
    outputs with no readable answer, and the largest letter share with its letter."""
    rows = []
    for e in exps:
        found = []
        for path, data in e.records.items():
            m = PREDICT.search(path)
            if m and m["model"] in MODELS:
                key = (MODELS.index(m["model"]), m["lang"] != "zh", m["lang"])  # Chinese first
                found.append((key, m["lang"], m["model"], data.get(m["lang"], {})))
        for _, lang, model, d in sorted(found, key=lambda f: f[0]):
            if "skipped" in d:
                rows.append([e.name, model, lang, "skipped", "", "", "", ""])
                continue
            test = d.get("test") or {}
            share = d.get("max_letter_share")
            rows.append(
                [
                    e.name,
                    model,
                    lang,
                    _interval(d),
                    f"{d['circular_accuracy']:.3f}" if "circular_accuracy" in d else "–",
                    _interval(test) if test else "–",
                    f"{d['invalid_extraction_rate']:.2f}" if "invalid_extraction_rate" in d else "–",
                    f"{share:.2f} ({d.get('max_letter', '?')})" if share is not None else "–",
                ]
            )
    header = ["experiment", "model", "lang", "dev accuracy [95% CI]", "circular", "test accuracy [95% CI]",
              "no answer", "top letter"]  # fmt: skip
    return _table(header, rows) if rows else "No experiment has predict metrics yet (run `dvc repro`)."


def significance_table(exps: list[Exp]) -> str:
    """Per experiment and comparison (metrics/compare/<b>-vs-<a>-<lang>.json, <b>-en-vs-zh.json): the
    difference B − A with its paired bootstrap interval, McNemar's p, and the discordant counts."""
    rows = []
    for e in exps:
        for path, d in sorted(e.records.items()):
            m = COMPARE.search(path)
            if not m:
                continue
            if "skipped" in d:
                rows.append([e.name, m["key"], "", "skipped", "", ""])
                continue
            for split, c in (("dev", d), ("test", d.get("test"))):
                if not c or "difference" not in c:
                    continue
                rows.append(
                    [
                        e.name,
                        m["key"],
                        split,
                        f"{c['difference']:+.3f} [{c['difference_ci95_low']:+.3f}, {c['difference_ci95_high']:+.3f}]",
                        f"{c['mcnemar_p']:.3g}",
                        f"{c.get('only_b_correct', '?')} vs {c.get('only_a_correct', '?')}",
                    ]
                )
    header = ["experiment", "B vs A (lang)", "split", "B − A [paired bootstrap 95%]", "McNemar p",
              "right only in B vs only in A"]  # fmt: skip
    return _table(header, rows) if rows else "No experiment has comparison metrics yet (run `dvc repro`)."


def params_table(exps: list[Exp]) -> str:
    """The parameters each experiment set differently from the baseline commit (the first non-workspace
    row), one line per experiment."""
    base = next((e for e in exps if e.name != "workspace"), None)
    if base is None:
        return ""
    rows = []
    for e in exps:
        if e is base:
            continue
        changed = [f"{k}={v}" for k, v in sorted(e.params.items()) if base.params.get(k) != v]
        rows.append([e.name, ", ".join(changed) or "(as the baseline)"])
    return _table([f"experiment (vs {base.name})", "changed params"], rows) if rows else ""


def show(kind: str = "accuracy", dvc: str = "dvc", load: Loader | None = None) -> str:
    """`dvc exp show --json`, read, each experiment's records attached, and rendered: kind is accuracy or
    significance."""
    r = subprocess.run([dvc, "exp", "show", "--json", "--no-pager"], capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"dvc exp show failed: {last}")
    try:
        exps = read(json.loads(r.stdout))
    except (json.JSONDecodeError, AttributeError, TypeError) as e:
        raise UserError(f"dvc exp show --json: unexpected output ({e})") from None
    attach(exps, load or git_records())
    body = accuracy_table(exps) if kind == "accuracy" else significance_table(exps)
    params = params_table(exps)
    return body + ("\n\n" + params if params else "")
