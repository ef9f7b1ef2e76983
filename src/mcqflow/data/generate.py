"""LLM-written training data: reasoning chains for questions that lack one, and new questions over the
grid of topics x difficulties x question types, in Traditional Chinese.

Prompts are files under version control (`prompts/`, DVC deps of the stage). Gold letters of new questions
are assigned round-robin over the grid, so they are balanced by design (the seed's reasoning data had
every answer on "A"). A chain whose <output> disagrees with the gold answer is kept and counted
(`output-mismatch`), for the validate gate to quarantine; a response that cannot be used at all is a
rejected row with its reason.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mcqflow.config.generate import DIFFICULTIES, QTYPES, TOPICS, GenerateParams  # noqa: F401
from mcqflow.core.reasoning import TAGS, ChainError, build_chain, parse_chain
from mcqflow.core.schema import LETTERS, Record, Rejected
from mcqflow.core.text import letter_of
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


@dataclass(frozen=True)
class Cell:
    topic: str
    difficulty: str
    qtype: str
    n: int
    gold: str

    @property
    def id(self) -> str:
        return f"gen-{self.topic}-{self.difficulty}-{self.qtype}-{self.n}"


def grid(p: GenerateParams) -> list[Cell]:
    cells = [
        (t, d, q, n) for t in p.topics for d in p.difficulties for q in p.qtypes for n in range(p.per_cell)
    ]
    return [Cell(t, d, q, n, LETTERS[i % 4]) for i, (t, d, q, n) in enumerate(cells)]


def extract_chain(text: str) -> str | None:
    start, end = text.find(f"<{TAGS[0]}>"), text.rfind(f"</{TAGS[-1]}>")
    return text[start : end + len(f"</{TAGS[-1]}>")] if start >= 0 and end > start else None


def check_chain(chain: str | None, gold: str) -> str | None:
    """None when the chain is usable as is; otherwise the reason."""
    if chain is None:
        return "no-chain"
    try:
        parsed = parse_chain(chain)
    except ChainError:
        return "malformed-xml"
    if parsed.output_letter() != gold:
        return "output-mismatch"
    return None


_SENTENCE_END = re.compile(r"(?<=[。；;！？])|\n")
_ASK = re.compile(r"([^。；？！\n]*（　　）[^。；？！\n]*)")


def chain_from_analysis(rec: Record) -> tuple[str | None, str | None]:
    """(chain, None) or (None, reason): a human analysis as a six-tag chain, deterministically.

    `<question>` the stem; `<think>` what it asks (the clause with the answer blank `（　　）`, else the
    stem's last sentence); `<reasoning>` the analysis, one step per sentence, its concluding `故选：X`
    sentence left out, then a last step naming the gold option and its text; `<reflection>` and
    `<adjustment>` fixed sentences (the analysis has nothing to put there); `<output>` the gold letter. An
    analysis that names no answer or another letter than gold is refused with that reason."""
    from mcqflow.data.gaokao import analysis_letter

    said = analysis_letter(rec.analysis or "")
    if said is None:
        return None, "the analysis names no answer letter"
    if said != rec.answer:
        return None, f"the analysis concludes {said}, the gold answer is {rec.answer}"
    sentences = [t.strip() for t in _SENTENCE_END.split(rec.analysis) if t and t.strip()]
    steps = [t for t in sentences if analysis_letter(t) is None or not re.match(r"^(?:故|所以|因此)", t)]
    steps = [re.sub(r"^(?:解析|分析|【解析】|【分析】)\s*[：:]\s*", "", t) for t in steps]
    steps = [t for t in steps if t]
    steps.append(f"综上，选项{rec.answer}（{rec.options[rec.answer]}）符合题意。")
    asks = _ASK.findall(rec.question)
    ask = (asks[-1] if asks else rec.question.splitlines()[-1]).strip()
    chain = build_chain(
        question=rec.question,
        think=f"题目问的是：{ask}。要结合材料，逐一判断各选项是否符合题意。",
        steps=steps,
        reflection="核对：每一步都依据题目材料与选项本身，结论与分析一致。",
        adjustment="无需调整，维持原判断。",
        output=rec.answer,
    )
    return chain, check_chain(chain, rec.answer)


def parse_new_question(text: str, cell: Cell) -> tuple[Record | None, str | None]:
    try:
        obj = json_reply(text)
        options = {k: str(obj["options"][k]).strip() for k in LETTERS}
        question, answer, reasoning = (
            str(obj["question"]).strip(),
            letter_of(obj["answer"]),
            obj["reasoning"],
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "malformed-json"
    if answer != cell.gold:
        return None, "answer-not-as-asked"
    rec = Record(
        id=cell.id,
        question=question,
        options=options,
        answer=answer,
        lang="zh",
        topic=cell.topic,
        difficulty=cell.difficulty,
        qtype=cell.qtype,
        reasoning=str(reasoning).strip(),
        source="generated",
    )
    return rec, check_chain(rec.reasoning, answer)


def _chain_request(rec: Record, chain_prompt, analysis_prompt) -> list[dict]:
    """The teacher's messages for one chain: with the human analysis, where the question has one."""
    if rec.analysis:
        return messages(
            analysis_prompt, question=rec.question, answer=rec.answer, analysis=rec.analysis, **rec.options
        )
    return messages(chain_prompt, question=rec.question, answer=rec.answer, **rec.options)


@dataclass
class Generated:
    records: list[Record]
    rejected: list[Rejected]
    metrics: dict


def generate(
    records: list[Record], p: GenerateParams, llm: LLMParams, cache: ResponseCache, prompts_dir: str | Path
) -> Generated:
    """Existing records (chains filled in where missing) followed by the new grid questions."""
    chain_prompt = load_prompt(Path(prompts_dir, "reasoning_chain.txt"))
    new_prompt = load_prompt(Path(prompts_dir, "new_question.txt"))
    missing = [i for i, r in enumerate(records) if p.chains_for_missing and not r.reasoning and r.answer]
    convert = [i for i in missing if records[i].analysis and p.analysis_chains == "convert"]
    need_chain = sorted(set(missing) - set(convert))
    cells = grid(p)
    analysis_prompt = load_prompt(Path(prompts_dir, "chain_from_analysis.txt"))
    reqs = [_chain_request(records[i], chain_prompt, analysis_prompt) for i in need_chain]
    reqs += [
        messages(new_prompt, topic=c.topic, difficulty=c.difficulty, qtype=c.qtype, gold=c.gold)
        for c in cells
    ]
    results = complete_all(reqs, llm, cache, desc="generate") if reqs else []

    reasons: Counter = Counter()
    out, rejected = list(records), []
    for i in convert:
        rec = records[i]
        chain, why = chain_from_analysis(rec)
        reasons[f"analysis:{'ok' if why is None else 'refused'}"] += 1
        if chain is None or why is not None:
            rejected.append(
                Rejected("generate:analysis", i + 1, why, {"id": rec.id, "analysis": rec.analysis})
            )
        else:
            out[i] = dataclasses.replace(rec, reasoning=chain, chain_source="analysis")
    for i, res in zip(need_chain, results, strict=False):
        rec = records[i]
        if res.error or not res.text:
            reasons[res.error or "empty"] += 1
            rejected.append(Rejected("generate:chain", i + 1, res.error or "empty", {"id": rec.id}))
            continue
        chain = extract_chain(res.text)
        why = check_chain(chain, rec.answer)
        reasons[why or "ok"] += 1
        if chain is None or why == "malformed-xml":
            rejected.append(Rejected("generate:chain", i + 1, why, {"id": rec.id, "response": res.text}))
        else:  # output-mismatch is kept: validate quarantines it, visibly
            source = "llm+analysis" if rec.analysis else "llm"
            out[i] = dataclasses.replace(rec, reasoning=chain, chain_source=source)
    for n, (cell, res) in enumerate(zip(cells, results[len(need_chain) :], strict=True), 1):
        if res.error or not res.text:
            reasons[res.error or "empty"] += 1
            rejected.append(Rejected("generate:new", n, res.error or "empty", {"id": cell.id}))
            continue
        rec, why = parse_new_question(res.text, cell)
        reasons[why or "ok"] += 1
        if rec is None or why == "malformed-xml":
            rejected.append(Rejected("generate:new", n, why, {"id": cell.id, "response": res.text}))
        else:
            out.append(rec)
    new = out[len(records) :]
    metrics = {
        "requests": len(reqs),
        **request_counts(results),
        "unanswered": unanswered(results),
        "chains_requested": len(need_chain),
        "chains_from_analysis": sum(r.chain_source == "analysis" for r in out),
        "analyses_refused": sum(r.source == "generate:analysis" for r in rejected),
        "questions_requested": len(cells),
        "questions_generated": len(new),
        "outcomes": dict(sorted(reasons.items())),
        "new_letter_share": {k: round(sum(r.answer == k for r in new) / len(new), 4) for k in LETTERS}
        if new
        else {},
    }
    return Generated(out, rejected, metrics)
