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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mcqflow.llm import (
    LLMParams,
    ResponseCache,
    complete_all,
    json_reply,
    load_prompt,
    messages,
    request_counts,
)
from mcqflow.reasoning import TAGS, ChainError, parse_chain
from mcqflow.schema import LETTERS, Record, Rejected
from mcqflow.text import letter_of

TOPICS = [
    "科技倫理",
    "經濟發展",
    "環境保護",
    "教育體系",
    "網絡安全",
    "法律制度",
    "人權議題",
    "政治治理",
    "言論自由",
    "宗教文化",
    "民族關係",
    "地區自治",
    "國際關係",
    "社會問題",
    "歷史事件",
]
DIFFICULTIES = ["基礎", "中級", "高級"]
QTYPES = ["事實性", "概念性", "分析性", "比較性", "評估性"]


@dataclass
class GenerateParams:
    """params.yaml `generate:`."""

    per_cell: int = 0  # new questions per (topic, difficulty, qtype) cell; 3 gives 675
    chains_for_missing: bool = True  # write chains for train questions that have none
    topics: list = field(default_factory=lambda: list(TOPICS))
    difficulties: list = field(default_factory=lambda: list(DIFFICULTIES))
    qtypes: list = field(default_factory=lambda: list(QTYPES))

    @classmethod
    def from_params(cls, d: dict) -> GenerateParams:
        from mcqflow.config import build

        return build(cls, d, "generate")


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
    need_chain = [i for i, r in enumerate(records) if p.chains_for_missing and not r.reasoning and r.answer]
    cells = grid(p)
    reqs = [
        messages(chain_prompt, question=records[i].question, answer=records[i].answer, **records[i].options)
        for i in need_chain
    ]
    reqs += [
        messages(new_prompt, topic=c.topic, difficulty=c.difficulty, qtype=c.qtype, gold=c.gold)
        for c in cells
    ]
    results = complete_all(reqs, llm, cache, desc="generate") if reqs else []

    reasons: Counter = Counter()
    out, rejected = list(records), []
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
            out[i] = dataclasses.replace(rec, reasoning=chain)
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
        "chains_requested": len(need_chain),
        "questions_requested": len(cells),
        "questions_generated": len(new),
        "outcomes": dict(sorted(reasons.items())),
        "new_letter_share": {k: round(sum(r.answer == k for r in new) / len(new), 4) for k in LETTERS}
        if new
        else {},
    }
    return Generated(out, rejected, metrics)
