"""The validate gate: Great Expectations suites over canonical records.

Row-level expectations quarantine the rows they fail (kept, with the names of what they failed); dataset-
level expectations stop the pipeline. Every row is accounted for: rows in = kept + rejected.
The suites are built in code on an ephemeral GX context; Data Docs render the results as HTML.
"""

from __future__ import annotations

import logging
import os
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from mcqflow.config.validate import ValidateParams
from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import ChainError, parse_chain
from mcqflow.core.schema import LETTERS, Record, Rejected
from mcqflow.core.text import LABEL
from mcqflow.quality.dedup import near_duplicates
from mcqflow.quality.injection import instruction_like
from mcqflow.quality.neutrality import neutrality_score

KINDS = ("mcq", "reasoning")
ROW, DATASET = "row", "dataset"
_PREFIX = r"^\s*" + LABEL


@dataclass
class Report:
    split: str
    kept: list[Record]
    rejected: list[Rejected]
    failures: list[str]  # dataset-level expectations that failed, as readable lines
    metrics: dict
    gx_results: object = field(default=None, repr=False)
    leakage: list[dict] | None = field(default=None, repr=False)  # per question (dev, test): see leakage()


@lru_cache(maxsize=2)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def script_of(text: str) -> str:
    """hant / hans by which script's own characters dominate (3:1), 'mixed' otherwise, 'none' for text
    without script-specific characters. Counted per character: OpenCC's s2t also rewrites a few characters
    that Traditional text shares, so "any change" would call most Traditional text mixed."""
    to_simp, to_trad = _opencc("t2s").convert(text), _opencc("s2t").convert(text)
    if len(to_simp) != len(text) or len(to_trad) != len(text):  # phrase-level rewrites: compare as wholes
        trad, simp = int(to_simp != text), int(to_trad != text)
    else:
        trad = sum(a != b for a, b in zip(text, to_simp, strict=True))
        simp = sum(a != b for a, b in zip(text, to_trad, strict=True))
    if trad == simp == 0:
        return "none"
    if trad >= 3 * simp:
        return "hant"
    if simp >= 3 * trad:
        return "hans"
    return "mixed"


def _chain_output(text: str | None) -> str | None:
    try:
        return parse_chain(text).output_letter() if text else None
    except ChainError:
        return None


def gx_context():
    """An ephemeral GX context without per-metric progress bars (they would flood the stage log)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # GX sets this one module's logger to INFO on import ("Created temporary directory … for ephemeral docs
    # site" in every validate run): nothing a user can act on
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def build_frame(
    records: list[Record],
    reference: list[Record] | None,
    s: ValidateParams,
    leak_rows: list[dict] | None = None,
):
    import pandas as pd

    questions = [r.question for r in records]
    dup = near_duplicates(questions, s.near_duplicate_threshold)
    leak = (
        near_duplicates(questions, s.near_duplicate_threshold, [r.question for r in reference])
        if reference
        else None
    )
    rows = []
    for i, r in enumerate(records):
        rows.append(
            {
                "id": r.id,
                "question": r.question,
                **{k: r.options.get(k) for k in LETTERS},
                "answer": r.answer,
                "reasoning": r.reasoning,
                "chain_output": _chain_output(r.reasoning),
                "duplicate_of": records[dup[i]].id if dup[i] is not None else None,
                "in_test": reference[leak[i]].id if leak and leak[i] is not None else None,
                "script": script_of(r.question + "".join(r.options.values())) if r.lang == "zh" else "none",
                "instruction_like": instruction_like(r.reasoning),
            }
        )
    if leak_rows is not None:
        for row, lk in zip(rows, leak_rows, strict=True):
            row["gold_in_train_answers"] = lk["gold_in_train_answers"]
    return pd.DataFrame(rows)


_CIRCLED = "①②③④⑤⑥"


def resolve_option(text: str, question: str) -> str:
    """An option's own content: a choice among statements (`①③`) is the text of those statements, from
    the stem's lines that start with them; any other option is its text."""
    t = re.sub(r"[\s、，,和与]", "", text)
    if not t or any(c not in _CIRCLED for c in t):
        return text
    statements = {ln.strip()[0]: ln.strip()[1:] for ln in question.splitlines() if ln.strip()[:1] in _CIRCLED}
    if not all(c in statements for c in t):
        return text
    return "；".join(statements[c] for c in t)


def leakage(records: list[Record], train: list[Record]) -> list[dict]:
    """For each question: its nearest train question (character 3-gram Jaccard on the stem) and whether
    its gold option's text (statements resolved: resolve_option) appears in train as an option, or as a
    train question's gold answer. Texts compared after mcqflow.quality.dedup.normalize."""
    from mcqflow.quality.dedup import nearest, normalize

    options, answers = set(), set()
    for t in train:
        for k, v in t.options.items():
            key = normalize(resolve_option(v, t.question))
            options.add(key)
            if k == t.answer:
                answers.add(key)
    near = nearest([r.question for r in records], [t.question for t in train])
    out = []
    for r, (j, sim) in zip(records, near, strict=True):
        gold = normalize(resolve_option(r.options[r.answer], r.question)) if r.answer in LETTERS else None
        out.append(
            {
                "id": r.id,
                "nearest_train": train[j].id if j is not None else None,
                "similarity": round(sim, 4),
                "gold_in_train_options": bool(gold) and gold in options,
                "gold_in_train_answers": bool(gold) and gold in answers,
            }
        )
    return out


def leakage_metrics(rows: list[dict], threshold: float) -> dict:
    n = len(rows)
    if not n:
        return {"n": 0}
    sims = [r["similarity"] for r in rows]
    return {
        "n": n,
        "nearest_train_similarity_mean": round(statistics.fmean(sims), 4),
        "nearest_train_similarity_max": max(sims),
        "near_duplicate_share": round(sum(x >= threshold for x in sims) / n, 4),
        "gold_in_train_options_share": round(sum(r["gold_in_train_options"] for r in rows) / n, 4),
        "gold_in_train_answers_share": round(sum(r["gold_in_train_answers"] for r in rows) / n, 4),
    }


def expectations(
    kind: str,
    labelled: bool,
    has_reference: bool,
    lang: str,
    s: ValidateParams,
    has_train: bool = False,
    script: str = "hant",
) -> list[tuple[str, object]]:
    """(level, expectation) pairs: the suite for one split."""
    import great_expectations.expectations as gxe

    from mcqflow.quality.expectations import (
        ExpectColumnMostCommonValueShareToBeAtMost,
        ExpectColumnValuesToBeNeutral,
        ExpectColumnValuesToBeWellFormedReasoningChain,
        ExpectReasoningChainToHaveAtLeastNSteps,
    )

    qlo, qhi = s.question_length
    olo, ohi = s.option_length
    out: list[tuple[str, object]] = [
        (ROW, gxe.ExpectColumnValuesToNotBeNull(column="id")),
        (ROW, gxe.ExpectColumnValuesToBeUnique(column="id")),
        (ROW, gxe.ExpectColumnValueLengthsToBeBetween(column="question", min_value=qlo, max_value=qhi)),
        (ROW, gxe.ExpectSelectColumnValuesToBeUniqueWithinRecord(column_list=list(LETTERS))),
        (ROW, gxe.ExpectColumnValuesToBeNull(column="duplicate_of")),
    ]
    for k in LETTERS:
        out.append((ROW, gxe.ExpectColumnValueLengthsToBeBetween(column=k, min_value=olo, max_value=ohi)))
        out.append((ROW, gxe.ExpectColumnValuesToNotMatchRegex(column=k, regex=_PREFIX)))
    if labelled:
        out += [
            (ROW, gxe.ExpectColumnValuesToNotBeNull(column="answer")),
            (ROW, gxe.ExpectColumnValuesToBeInSet(column="answer", value_set=list(LETTERS))),
            (
                DATASET,
                ExpectColumnMostCommonValueShareToBeAtMost(
                    column="answer",
                    max_share=s.max_letter_share,
                    description=f"No single answer letter takes more than {s.max_letter_share:.0%} of the rows "
                    "(a model that always answers one letter scores 25% on balanced data).",
                ),
            ),
        ]
    if kind == "reasoning":
        out += [
            (ROW, gxe.ExpectColumnValuesToNotBeNull(column="reasoning")),
            (ROW, ExpectColumnValuesToBeWellFormedReasoningChain(column="reasoning", description=CHAIN_TEXT)),
            (
                ROW,
                ExpectReasoningChainToHaveAtLeastNSteps(
                    column="reasoning",
                    min_steps=s.min_steps,
                    description=f"The chain's reasoning tag holds at least {s.min_steps} items written "
                    "'step k: ...'.",
                ),
            ),
            (ROW, gxe.ExpectColumnPairValuesToBeEqual(column_A="chain_output", column_B="answer")),
            (
                ROW,
                ExpectColumnValuesToBeNeutral(
                    column="reasoning",
                    threshold=s.neutrality_threshold,
                    description=f"The chain scores at least {s.neutrality_threshold} on the lexicon neutrality "
                    "score (mcqflow.quality.neutrality: absolutist and loaded terms against hedged, many-sided ones).",
                ),
            ),
            (ROW, gxe.ExpectColumnValueLengthsToBeBetween(column="reasoning", max_value=s.max_chain_length)),
            (ROW, gxe.ExpectColumnValuesToBeNull(column="instruction_like")),
        ]
    if has_reference:
        out.append((ROW, gxe.ExpectColumnValuesToBeNull(column="in_test")))
    if has_train:
        out.append(
            (
                DATASET,
                gxe.ExpectColumnValuesToBeInSet(
                    column="gold_in_train_answers", value_set=[False], mostly=1 - s.max_answer_leak_share
                ),
            )
        )
    if lang == "zh":
        other = "hans" if script == "hant" else "hant"
        out.append(
            (
                DATASET,
                gxe.ExpectColumnValuesToNotBeInSet(
                    column="script", value_set=[other], mostly=1 - s.max_other_script_share
                ),
            )
        )
    return out


# Data Docs show these in words (an expectation's `description`), where GX would print a custom one's code
CHAIN_TEXT = (
    "The chain parses as XML (a hardened parser: no entities, no network) and holds the six tags question, "
    "think, reasoning, reflection, adjustment and output, each exactly once, in this order."
)


def describe(cfg) -> str:
    """A readable label for an ExpectationConfiguration: type(columns)."""
    cols = (
        cfg.kwargs.get("column")
        or cfg.kwargs.get("column_list")
        or [cfg.kwargs.get("column_A"), cfg.kwargs.get("column_B")]
    )
    cols = ",".join(cols) if isinstance(cols, list) else cols
    return f"{cfg.type}({cols})"


def validate(
    records: list[Record],
    split: str,
    kind: str,
    s: ValidateParams,
    reference: list[Record] | None = None,
    quarantine: bool = True,
    source: str = "",
    context=None,
    train: list[Record] | None = None,
    script: str = "hant",
) -> Report:
    """Run the suite for one split. `quarantine=False` (test data, where every ID needs an answer) keeps
    failing rows and only reports them. `reference` (the test set) turns on the contamination check; `train` (for dev and test) the leakage
    check (mcqflow.quality.validation.leakage), `script` the dataset's Chinese script."""
    import great_expectations as gx

    if kind not in KINDS:
        raise UserError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    lang = records[0].lang if records else "zh"
    labelled = split != "test" and any(r.answer is not None for r in records)
    answered = [r for r in records if r.answer is not None]  # an unlabelled test set has no gold to leak
    leak = leakage(records, train) if train is not None and len(answered) == len(records) > 0 else None
    frame = build_frame(records, reference, s, leak)
    context = context or gx_context()
    name = f"{lang}-{split}"
    batch_def = (
        context.data_sources.add_or_update_pandas(f"mcqflow-{name}")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("all")
    )
    specs = expectations(kind, labelled, reference is not None, lang, s, leak is not None, script)
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}-{kind}", expectations=[e for _, e in specs]))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_def, suite=suite)
    )
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]}
    # A fixed run identity: the Data Docs are a stage output, and a wall-clock run time in their paths made
    # every `dvc repro` write a different reports/validate (git and dvc.lock keep when it ran).
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=name, run_time=datetime(1970, 1, 1, tzinfo=timezone.utc))
    results = validation.run(
        batch_parameters={"dataframe": frame}, result_format=result_format, run_id=run_id
    )

    level = {describe(e.configuration): lvl for lvl, e in specs}
    failed_by_row: dict[str, list[str]] = {}
    failures, per_expectation = [], {}
    for res in results.results:
        cfg = res.expectation_config
        label = describe(cfg)
        info = res.exception_info or {}
        raised = (
            info.get("raised_exception")
            if isinstance(info, dict)
            else any(v.get("raised_exception") for v in info.values())
        )
        if raised:  # GX reports errors inside the result instead of raising
            raise RuntimeError(f"expectation {label} could not run: {info}")
        r = res.result or {}
        if r.get("unexpected_percent") is not None and r.get("element_count"):
            per_expectation[label] = round(1 - r["unexpected_percent"] / 100, 4)
        else:  # aggregates, and map checks whose column is all null (GX skips nulls; NotBeNull catches them)
            per_expectation[label] = 1.0 if res.success else 0.0
        if level.get(label) == DATASET:
            if not res.success:
                failures.append(
                    f"{source or name}: {label} failed (observed {r.get('observed_value', r.get('unexpected_percent'))})"
                )
            continue
        for row in r.get("unexpected_index_list") or []:
            failed_by_row.setdefault(row["id"], []).append(label)

    kept, rejected = [], []
    for i, rec in enumerate(records, 1):
        names = failed_by_row.get(rec.id)
        if names and quarantine:
            rejected.append(Rejected(source or name, i, "failed " + "; ".join(names), rec.to_dict()))
        else:
            kept.append(rec)
    if len(kept) + len(rejected) != len(records):
        raise AssertionError(
            f"{name}: rows in ({len(records)}) != kept ({len(kept)}) + rejected ({len(rejected)})"
        )
    pass_rate = 1 - len(failed_by_row) / len(records) if records else 1.0
    if quarantine and pass_rate < s.min_pass_rate:
        failures.append(
            f"{source or name}: pass rate {pass_rate:.1%} is below validate.min_pass_rate {s.min_pass_rate:.0%}"
        )
    metrics = _metrics(records, frame, kept, rejected, pass_rate, per_expectation, kind, failed_by_row)
    if leak is not None:
        metrics["leakage"] = leakage_metrics(leak, s.near_duplicate_threshold)
    return Report(split, kept, rejected, failures, metrics, results, leak)


def _metrics(records, frame, kept, rejected, pass_rate, per_expectation, kind, failed_by_row) -> dict:
    n = len(records)
    letters = Counter(r.answer for r in records if r.answer)
    scripts = Counter(frame["script"]) if n else Counter()
    m = {
        "rows": n,
        "kept": len(kept),
        "rejected": len(rejected),
        "rows_failing": len(failed_by_row),
        "pass_rate": round(pass_rate, 4),
        "expectations": per_expectation,
        "letter_share": {k: round(letters[k] / sum(letters.values()), 4) for k in LETTERS} if letters else {},
        "duplicates": int(frame["duplicate_of"].notna().sum()) if n else 0,
        "contamination": int(frame["in_test"].notna().sum()) if n else 0,
        "script_share": {k: round(v / n, 4) for k, v in sorted(scripts.items())},
    }
    if kind == "reasoning":
        scores = sorted(neutrality_score(r.reasoning or "") for r in records)
        m["neutrality"] = {
            "mean": round(statistics.fmean(scores), 4) if scores else 0.0,
            "p10": round(scores[len(scores) // 10], 4) if scores else 0.0,
            "min": round(scores[0], 4) if scores else 0.0,
        }
    return m


def build_data_docs(context, out_dir: str | Path) -> Path:
    """Render every validation run on `context` as GX Data Docs HTML under `out_dir`."""
    out_dir = Path(out_dir).resolve()
    context.add_data_docs_site(
        site_name="mcqflow",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    escape_results(context)
    context.build_data_docs(site_names=["mcqflow"])
    make_offline(out_dir)
    return out_dir / "index.html"


def escape_results(context) -> None:
    """HTML-escape every string of the stored validation results (unexpected values, their ids) before GX
    renders them: its templates write a failing row's values into the page as they are, so a question
    holding `<script>` ran in the browser of whoever opened the Data Docs."""
    import html

    def esc(v):
        if isinstance(v, str):
            return html.escape(v, quote=True)
        if isinstance(v, list | tuple):
            return type(v)(esc(x) for x in v)
        if isinstance(v, dict):
            return {k: esc(x) for k, x in v.items()}
        return v

    store = context.validation_results_store
    for key in store.list_keys():
        suite_result = store.get(key)
        for res in suite_result.results:
            if res.result:
                res.result = esc(res.result)
        store.set(key, suite_result)


ASSETS = Path(__file__).resolve().parents[1] / "assets"
# What GX's pages load from CDNs -> the copy under assets/gx (`vega:` ones come out of the plots page).
_OFFLINE = {
    "maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "js/bootstrap-table-filter-control.min.js"
    ),
    "cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "css/bootstrap-datepicker.min.css"
    ),
    "cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "js/bootstrap-datepicker.min.js"
    ),
    "cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "css/bootstrap-prefers-dark.css"
    ),
    "cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "cdn.jsdelivr.net/npm/vega@5": "vega:vega",
    "cdn.jsdelivr.net/npm/vega-lite@5": "vega:vega-lite",
    "cdn.jsdelivr.net/npm/vega-embed@6": "vega:vega-embed",
}
_ASSET_URL = re.compile(r'(src|href)="https://([^"?]+)[^"]*"')
_REMOTE_IMG = re.compile(r'<img[^>]*src="https?://[^"]*"[^>]*>')


# Subresource-integrity and CORS attributes GX copies from its CDN tags: on local copies opened from disk
# (file://) Chromium refuses the scripts they guard, and the Expectation Suites tab and "Show more info" die.
_SRI = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"')
_BODY = re.compile(r"(<body[^>]*>)")
FIXED_TIME_NOTE = (
    '<div style="background:#fff8e1;border-bottom:1px solid #e0c97f;padding:.4em 1em;font-size:13px">'
    "Run times on these pages read 1970-01-01 on purpose: the pages are a DVC stage output "
    "(<code>reports/validate</code>), rebuilt only when a result changes; git and <code>dvc.lock</code> keep "
    "when the run happened.</div>"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_STAMP = re.compile(r"(?<![0-9])(?!19700101T)\d{8}T\d{6}\.\d{6}Z")


def _stable(text: str) -> str:
    """The same page for the same data: GX's random element ids numbered in order of appearance, and its
    validation wall-clock time left out (git and dvc.lock keep when a run happened)."""
    ids: dict[str, str] = {}
    text = _UUID.sub(lambda m: ids.setdefault(m.group(0), f"id{len(ids)}"), text)
    return _STAMP.sub("(time not kept)", text)


def make_offline(docs_dir: str | Path) -> None:
    """Point every page of a GX Data Docs site at local copies of its CSS, scripts and fonts (under
    `static/vendor/`), drop the remote logo, and make each page the same for the same data (`_stable`), so
    the site renders styled with no network and `dvc repro` rewrites it only when a result changes. (GX
    loads them from CDNs, and the logo's address, its element ids and a time in the page differed on every
    build.) The copies carry no integrity/crossorigin attributes, so the pages work opened from disk, and
    each page says why its run times are fixed."""
    import shutil

    docs_dir = Path(docs_dir)
    vendor = docs_dir / "static" / "vendor"
    shutil.copytree(ASSETS / "gx", vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    page = (ASSETS / "vega" / "dvc-plots.html").read_text(encoding="utf-8")
    for name in ("vega", "vega-lite", "vega-embed"):
        m = re.search(rf"<!-- {re.escape(name)} \S+ .*?-->\n<script>(.*?)</script>", page, re.S)
        if m is None:
            raise RuntimeError(f"{name} is missing from assets/vega/dvc-plots.html")
        (vendor / "js" / f"{name}.min.js").write_text(m.group(1), encoding="utf-8")

    def local(m: re.Match, page_dir: Path) -> str:
        target = _OFFLINE.get(m.group(2))
        if target is None:
            return m.group(0)  # a link to read, not an asset to load
        if target.startswith("vega:"):
            target = f"js/{target[5:]}.min.js"
        rel = Path(os.path.relpath(vendor / target, page_dir)).as_posix()
        return f'{m.group(1)}="{rel}"'

    for html_file in docs_dir.rglob("*.html"):
        text = _stable(html_file.read_text(encoding="utf-8"))
        text = _REMOTE_IMG.sub("", text)
        text = _ASSET_URL.sub(lambda m, d=html_file.parent: local(m, d), text)
        text = _SRI.sub("", text)
        text = _BODY.sub(lambda m: m.group(1) + FIXED_TIME_NOTE, text, count=1)
        html_file.write_text(text, encoding="utf-8")


def summary_table(reports: list[Report]) -> str:
    lines = [f"{'split':<8}{'rows':>6}{'kept':>6}{'rejected':>9}{'pass':>8}  failing expectations"]
    for rep in reports:
        m = rep.metrics
        worst = sorted((v, k) for k, v in m["expectations"].items() if v < 1)[:3]
        lines.append(
            f"{rep.split:<8}{m['rows']:>6}{m['kept']:>6}{m['rejected']:>9}{m['pass_rate']:>8.1%}  "
            + ", ".join(f"{re.sub(r'^expect_', '', k)} {v:.0%}" for v, k in worst)
        )
    return "\n".join(lines)


def leakage_line(lang: str, reports: list[Report]) -> str:
    """One line: how much of dev and test the train split gives away."""
    parts = []
    for rep in reports:
        m = rep.metrics.get("leakage")
        if m and m["n"]:
            parts.append(
                f"{rep.split}: gold text a train option {m['gold_in_train_options_share']:.0%}, a train answer "
                f"{m['gold_in_train_answers_share']:.0%}, nearest train question {m['nearest_train_similarity_mean']:.2f} "
                f"similar on average (max {m['nearest_train_similarity_max']:.2f})"
            )
    return f"[{lang}] leakage: " + ("; ".join(parts) or "no labelled dev/test rows")
