"""Per-model reports people look at: what happened first (accuracy, how the answers were read and how many
could not be, the run's warnings), gold vs predicted letters, accuracy per topic with intervals where the
data has topics, the accuracy under each rotation of the options (the position bias as a number) and a few
outputs, right, wrong and unreadable.

`build` computes them from a run's dev predictions and its records; `write_html` renders one self-contained
HTML page (no scripts, no CDN: it opens offline), and `plot_rows` gives the rows `dvc plots` draws
(dvc.yaml: a confusion matrix and a per-topic bar chart for every predict stage).
"""

from __future__ import annotations

import html
from collections import Counter

from mcqflow.core.io import write_text_atomic
from mcqflow.core.schema import LETTERS, Record
from mcqflow.evaluation.metrics import wilson_interval
from mcqflow.evaluation.predict import FALLBACK, Prediction

NONE = "none"  # the predicted column for an output with no letter


SAMPLES = 2  # outputs shown per kind (right, wrong, unreadable)
RAW_CHARS = 600  # of each shown output


def build(
    name: str,
    preds: list[Prediction],
    records: list[Record],
    rotations: dict[str, float] | None = None,
    warnings: list[str] | None = None,
    baseline: dict | None = None,
) -> dict:
    """The report of one model on one labelled split. `rotations`: accuracy under each rotation (from
    `evaluate.summarize`), when the run scored them; `warnings`: what the run said was wrong with its
    answers (`metrics.degenerate_warnings`), shown first; `baseline`: the untrained base's dev metrics
    (`accuracy`, `accuracy_ci95_low`/`_high`), shown beside."""
    topic = {r.id: r.topic or "(no topic)" for r in records}
    labelled = [p for p in preds if p.gold is not None]
    confusion = Counter((p.gold, p.answer if p.answer in LETTERS else NONE) for p in labelled)
    by_topic: dict[str, list[bool]] = {}
    for p in labelled:
        by_topic.setdefault(topic.get(p.id, "(no topic)"), []).append(p.answer == p.gold)
    topics = []
    for t, hits in sorted(by_topic.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lo, hi = wilson_interval(sum(hits), len(hits))
        topics.append(
            {
                "topic": t,
                "n": len(hits),
                "accuracy": round(sum(hits) / len(hits), 4),
                "ci95_low": round(lo, 4),
                "ci95_high": round(hi, 4),
            }
        )
    k, n = sum(p.answer == p.gold for p in labelled), len(labelled)
    lo, hi = wilson_interval(k, n)
    return {
        "name": name,
        "n": n,
        "accuracy": round(k / n, 4) if n else 0.0,
        "ci95": [round(lo, 4), round(hi, 4)],
        "confusion": [
            {"actual": g, "predicted": a, "count": confusion[(g, a)]}
            for g in LETTERS
            for a in [*LETTERS, NONE]
        ],
        "topics": topics,
        "rotations": rotations or {},
        "read": dict(Counter(p.method for p in labelled).most_common()),
        "letters": {x: round(sum(p.answer == x for p in labelled) / n, 4) if n else 0.0 for x in LETTERS},
        "warnings": list(warnings or []),
        "samples": _samples(labelled),
        "baseline": {
            k: baseline[k] for k in ("accuracy", "accuracy_ci95_low", "accuracy_ci95_high") if k in baseline
        }
        if baseline and "accuracy" in baseline
        else None,
    }


def _samples(preds: list[Prediction]) -> list[dict]:
    """A few outputs to look at: right, wrong and unreadable ones (a letter read-out's output is its four
    letter probabilities)."""
    read = [p for p in preds if p.method != FALLBACK]
    kinds = {
        "right": [p for p in read if p.answer == p.gold],
        "wrong": [p for p in read if p.answer != p.gold],
        "unreadable": [p for p in preds if p.method == FALLBACK],
    }
    return [
        {"kind": k, "id": p.id, "gold": p.gold, "answer": p.answer, "method": p.method,
         "raw": p.raw[:RAW_CHARS] + ("…" if len(p.raw) > RAW_CHARS else "")}
        for k, ps in kinds.items()
        for p in ps[:SAMPLES]
        if p.raw
    ]  # fmt: skip


def plot_rows(report: dict) -> dict[str, list[dict]]:
    """Rows for dvc plots: one per dev question for the confusion template, one per topic for the bars."""
    confusion = [
        {"actual": c["actual"], "predicted": c["predicted"]}
        for c in report["confusion"]
        for _ in range(c["count"])
    ]
    return {"confusion": confusion, "topics": report["topics"]}


def write_html(report: dict, path) -> None:
    write_text_atomic(path, render(report))


def render(report: dict) -> str:
    e = html.escape
    cells = {(c["actual"], c["predicted"]): c["count"] for c in report["confusion"]}
    top = max(cells.values(), default=0) or 1
    cols = [*LETTERS, NONE]
    rows = []
    for g in LETTERS:
        tds = []
        for a in cols:
            v = cells.get((g, a), 0)
            shade = int(235 - 150 * v / top)
            colour = f"rgb({shade},{shade + 15 if g == a else shade},{255 if g == a else shade + 15})"
            tds.append(f'<td style="background:{colour}">{v}</td>')
        rows.append(f"<tr><th>{g}</th>{''.join(tds)}</tr>")
    confusion = (
        "<table class=m><tr><th>gold \\ predicted</th>"
        + "".join(f"<th>{c}</th>" for c in cols)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    topic_rows = "".join(
        f"<tr><td>{e(t['topic'])}</td><td>{t['n']}</td><td>{t['accuracy']:.3f}</td>"
        f"<td>[{t['ci95_low']:.3f}, {t['ci95_high']:.3f}]</td><td>{_bar(t)}</td></tr>"
        for t in report["topics"]
    )
    rot = report["rotations"]
    rotations = (
        "<table><tr><th>rotation</th><th>accuracy</th></tr>"
        + "".join(f"<tr><td>{r} (A→{LETTERS[int(r)]})</td><td>{v:.3f}</td></tr>" for r, v in rot.items())
        + "</table><p>Rotation r moves every option r places: the gold letter moves with it, so a model that "
        "knows the answers scores the same under each; the spread is position bias.</p>"
        if rot
        else "<p>Not scored for this run (letter-scored runs score all four rotations).</p>"
    )
    lo, hi = report["ci95"]
    read = report.get("read", {})
    n = report["n"] or 1
    fell = read.get(FALLBACK, 0)
    how = ", ".join(f"{v} by {e(k)}" for k, v in read.items())
    summary = f"Dev accuracy <b>{report['accuracy']:.3f}</b> [{lo:.3f}, {hi:.3f}] (95% Wilson interval) on {report['n']} questions."
    if read and set(read) == {"letter-logits"}:
        summary += (
            " Every answer is the letter with the highest probability after the prompt (letter read-out)."
        )
    elif read:
        summary += f" Answers read from the generated text: {how}."
        if fell:
            summary += (
                f" <b>{fell} of {report['n']} ({fell / n:.0%}) had no readable answer</b> and were answered by"
                " letter scoring instead."
            )
    base = report.get("baseline")
    if base:
        summary += f" The untrained base model: <b>{base['accuracy']:.3f}</b>"
        if "accuracy_ci95_low" in base:
            summary += f" [{base['accuracy_ci95_low']:.3f}, {base['accuracy_ci95_high']:.3f}]"
        summary += " on the same questions."
    letters = report.get("letters", {})
    if letters:
        summary += " Predicted letters: " + ", ".join(f"{k} {v:.0%}" for k, v in letters.items()) + "."
    warns = "".join(f"<p class=warn>{e(w)}</p>" for w in report.get("warnings", []))
    samples = "".join(
        f"<tr><td>{e(x['kind'])}</td><td>{e(x['id'])}</td><td>{e(str(x['gold']))}</td><td>{e(x['answer'] or '–')}</td>"
        f"<td>{e(x['method'])}</td><td class=raw>{e(x['raw'])}</td></tr>"
        for x in report.get("samples", [])
    )
    samples = (
        "<h2>Some outputs</h2><table><tr><th>kind</th><th>id</th><th>gold</th><th>answer</th><th>read by</th>"
        f"<th>output</th></tr>{samples}</table>"
        if samples
        else ""
    )
    topics = report["topics"]
    per_topic = (
        "<h2>Accuracy per topic</h2><table><tr><th>topic</th><th>n</th><th>accuracy</th><th>95% interval</th>"
        f"<th></th></tr>{topic_rows}</table>"
        if len(topics) > 1 or (topics and topics[0]["topic"] != "(no topic)")
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(report["name"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222 }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em }}
td, th {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right }}
table.m td {{ min-width: 3em; text-align: center }}
.bar {{ position: relative; width: 14em; height: .9em; background: #eee }}
.bar span {{ position: absolute; top: 0; height: 100%; background: #8ab }}
.bar i {{ position: absolute; top: -2px; width: 2px; height: calc(100% + 4px); background: #234 }}
.warn {{ background: #fde8e4; border-left: 4px solid #c33; padding: .4em .8em }}
td.raw {{ text-align: left; white-space: pre-wrap; max-width: 36em; font-size: 12px }}
</style></head><body>
<h1>{e(report["name"])}</h1>
{warns}<p>{summary}</p>
<h2>Gold vs predicted letter</h2>{confusion}
{per_topic}
<h2>Accuracy under each rotation of the options</h2>{rotations}
{samples}
</body></html>
"""


def _bar(t: dict) -> str:
    lo, hi, acc = (100 * t[k] for k in ("ci95_low", "ci95_high", "accuracy"))
    return f'<div class=bar><span style="left:{lo:.1f}%;width:{hi - lo:.1f}%"></span><i style="left:{acc:.1f}%"></i></div>'
