"""zh -> en translation of questions, options and reasoning chains, through the same LLM client and
response cache as generate_reasoning.

Ids and gold letters never go through the model: they are copied. A translated chain must still parse as
the six-tag XML and end on the gold letter, or the row is rejected with the reason. Where existing English
translations are at hand (`translate.reference`: canonical records with the same ids and gold letters, e.g.
a human-translated test set), they are used and only the rest is sent; the embedded sample ships its
hand-written English this way, so the default pipeline runs offline.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from mcqflow.config.translate import OPENCC_MODES, TranslateParams  # noqa: F401
from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import ChainError, parse_chain
from mcqflow.core.schema import LETTERS, Record, Rejected
from mcqflow.data.llm import (
    LLMParams,
    ResponseCache,
    complete_all,
    json_reply,
    load_prompt,
    messages,
    request_counts,
    unanswered,
)

SPLITS = ("train", "dev", "test")


def normalise_script(rec: Record, mode: str) -> Record:
    """The record with its Chinese text converted by OpenCC (`t2s` Traditional -> Simplified, `s2t`)."""
    if mode == "keep":
        return rec
    import opencc

    conv = opencc.OpenCC(mode).convert
    return replace(
        rec,
        question=conv(rec.question),
        options={k: conv(v) for k, v in rec.options.items()},
        reasoning=conv(rec.reasoning) if rec.reasoning else rec.reasoning,
    )


def source_json(rec: Record) -> str:
    obj: dict = {"question": rec.question, "options": {k: rec.options[k] for k in LETTERS}}
    if rec.reasoning:
        obj["reasoning"] = rec.reasoning
    return json.dumps(obj, ensure_ascii=False, indent=1)


def parse_translation(text: str, rec: Record) -> tuple[Record | None, str | None]:
    """The English record from a model's reply, or (None, reason)."""
    try:
        obj = json_reply(text)
        question = str(obj["question"]).strip()
        options = {k: str(obj["options"][k]).strip() for k in LETTERS}
        reasoning = str(obj["reasoning"]).strip() if rec.reasoning else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "malformed-json"
    if not question or not all(options.values()):
        return None, "empty-field"
    if len(set(options.values())) < 4:
        return None, "options-merged"
    if reasoning is not None:
        try:
            parsed = parse_chain(reasoning)
        except ChainError:
            return None, "chain-broken"
        if rec.answer and parsed.output_letter() != rec.answer:
            return None, "chain-answer-changed"
    en = replace(
        rec, question=question, options=options, reasoning=reasoning, lang="en", source=f"translate:{rec.id}"
    )
    return en, None


def usable_reference(rec: Record, ref: Record | None) -> bool:
    return (
        ref is not None
        and ref.lang == "en"
        and ref.answer == rec.answer
        and bool(ref.reasoning) == bool(rec.reasoning)
    )


@dataclass
class Translated:
    splits: dict[str, list[Record]]
    rejected: dict[str, list[Rejected]]
    metrics: dict


def translate(
    splits: dict[str, list[Record]],
    p: TranslateParams,
    llm: LLMParams,
    cache: ResponseCache,
    prompt_path: str | Path,
    reference: dict[str, list[Record]] | None = None,
) -> Translated:
    """English records per split, in the input order; rows that could not be translated are rejected."""
    prompt = load_prompt(prompt_path)
    refs = {r.id: r for rs in (reference or {}).values() for r in rs} if p.reference else {}
    todo: list[tuple[str, int, Record]] = []
    out: dict[str, list[Record | None]] = {}
    changed = from_ref = 0
    for split, recs in splits.items():
        out[split] = [None] * len(recs)
        for i, rec in enumerate(recs):
            ref = refs.get(rec.id)
            if usable_reference(rec, ref):
                out[split][i] = replace(ref, topic=rec.topic, difficulty=rec.difficulty, qtype=rec.qtype)
                from_ref += 1
                continue
            norm = normalise_script(rec, p.opencc)
            changed += norm != rec
            todo.append((split, i, norm))
    reqs = [messages(prompt, source=source_json(rec)) for _, _, rec in todo]
    results = complete_all(reqs, llm, cache, desc="translate") if reqs else []
    reasons: Counter = Counter()
    rejected: dict[str, list[Rejected]] = {s: [] for s in splits}
    for (split, i, rec), res in zip(todo, results, strict=True):
        if res.error or not res.text:
            why, en = res.error or "empty", None
        else:
            en, why = parse_translation(res.text, rec)
        reasons[why or "ok"] += 1
        if en is None:
            extra = {"id": rec.id, **({"response": res.text} if res.text else {})}
            rejected[split].append(Rejected(f"translate:{split}", i + 1, why, extra))
        else:
            out[split][i] = en
    metrics = {
        "rows": sum(len(r) for r in splits.values()),
        "from_reference": from_ref,
        "requests": len(reqs),
        **request_counts(results),
        "unanswered": unanswered(results),
        "opencc": p.opencc,
        "opencc_changed": changed,
        "outcomes": dict(sorted(reasons.items())),
        "rejected": {s: len(r) for s, r in rejected.items()},
    }
    return Translated({s: [r for r in rs if r is not None] for s, rs in out.items()}, rejected, metrics)


def check_complete(t: Translated, rejected_dir: str) -> None:
    """Train rows may be left out (visibly); a dev or test row may not: the English run would score or
    submit a different question set."""
    missing = {s: len(t.rejected[s]) for s in ("dev", "test") if t.rejected.get(s)}
    if missing:
        parts = ", ".join(f"{n} {s}" for s, n in missing.items())
        raise UserError(
            f"translate: {parts} rows could not be translated (reasons in {rejected_dir}); re-run to retry "
            f"them (failed answers are cached too: change llm.temperature or the prompt to ask again)"
        )


__all__ = [
    "SPLITS",
    "TranslateParams",
    "translate",
    "parse_translation",
    "normalise_script",
    "check_complete",
]
