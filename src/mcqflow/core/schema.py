"""The canonical record: the one schema every stage reads and writes (JSONL, UTF-8, input order)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcqflow.core.errors import UserError

LETTERS = ("A", "B", "C", "D")


@dataclass
class Record:
    id: str
    question: str
    options: dict[str, str]
    answer: str | None = None
    lang: str = "zh"
    topic: str | None = None
    difficulty: str | None = None
    qtype: str | None = None
    reasoning: str | None = None
    source: str = ""
    year: str | None = None  # exam year, where the dataset has one (GAOKAO-Bench: splits go by it)
    analysis: str | None = None  # a human-written explanation that came with the question
    chain_source: str | None = None  # where `reasoning` came from: dataset | llm | analysis | llm+analysis

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass
class Rejected:
    """A row that could not become a Record, kept with the reason (nothing is dropped silently)."""

    source: str
    row: int
    reason: str
    raw: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def line(self) -> str:
        return f"{self.source}: row {self.row}: {self.reason}"


RECORD_FIELDS = {f for f in Record.__dataclass_fields__}


MAX_INT_DIGITS = 4000  # under Python's own limit (4300), past which int() raises


def _int(digits: str) -> int | str:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


def loads(line: str):
    """json.loads for a line of input. A whole number too long for an int (a 5,000-digit ID) is read as
    its digits; nesting too deep for Python's reader is a JSONDecodeError like any malformed line, so the
    caller's one line (file, row, problem) covers it."""
    try:
        return json.loads(line, parse_int=_int)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to read", line[:200], 0) from None


def record_from_dict(d: dict) -> Record:
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {type(d).__name__}")
    missing = {"id", "question", "options"} - d.keys()
    if missing:
        raise ValueError(f"missing field(s) {', '.join(sorted(missing))}")
    unknown = d.keys() - RECORD_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    opts = d["options"]
    if not isinstance(opts, dict) or sorted(opts) != list(LETTERS):
        raise ValueError("options must be an object with keys A, B, C, D")
    if not isinstance(d["id"], (str, int)) or isinstance(d["id"], bool):
        raise ValueError(f"id must be a string, got {type(d['id']).__name__}")
    for k, v in [("question", d["question"]), *((f"option {k}", v) for k, v in opts.items())]:
        if not isinstance(v, str):
            raise ValueError(f"{k} must be a string, got {type(v).__name__}")
    for k in ("answer", "lang", "topic", "difficulty", "qtype", "reasoning", "source", "year", "analysis",
              "chain_source"):  # fmt: skip
        if d.get(k) is not None and not isinstance(d[k], str):
            raise ValueError(f"{k} must be a string or null, got {type(d[k]).__name__} {d[k]!r:.40}")
    if d.get("answer") is not None and d["answer"] not in LETTERS:
        raise ValueError(f"answer must be one of A, B, C, D or null, got {d['answer']!r:.40}")
    return Record(**{**d, "id": str(d["id"])})


def write_jsonl(path: str | Path, rows) -> int:
    from mcqflow.core.io import atomic_open

    n = 0
    with atomic_open(path) as f:
        for r in rows:
            f.write(r.to_json() + "\n")
            n += 1
    return n


def read_records(path: str | Path) -> list[Record]:
    """Read canonical records written by this project; a malformed line is a UserError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    out = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(record_from_dict(loads(line)))
            except (ValueError, TypeError) as e:
                raise UserError(f"{path}: line {i}: not a canonical record ({e})") from None
    return out
