"""Ingest every MCQ format users have into canonical records.

CSV/TSV formats are recognised by their header, through one table of column aliases:
- Kaggle test:      ID,Question,Option A,Option B,Option C,Option D   (+ empty trailing columns)
- Kaggle #1 train:  ID,question,option_A,option_B,option_C,option_D,answer
- Kaggle #2/#3:     題目,選項A,選項B,選項C,選項D,正確答案,推理正確答案   (Simplified headers too)
- TSV:              question option_A option_B option_C option_D correct_answer reasoning
- CMMLU-style:      <unnamed index>,Question,A,B,C,D,Answer
JSONL files are either chat transcripts ({"messages": [...]}) or canonical records.

File-level problems (unknown header, not UTF-8, empty file) raise UserError: one line, file and problem.
Row-level problems become Rejected rows with their reason: rows in = records out + rejected.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mcqflow.errors import UserError
from mcqflow.extract import extract_answer
from mcqflow.reasoning import TAGS
from mcqflow.schema import LETTERS, Record, Rejected, record_from_dict

# canonical field -> header names that mean it (compared after strip + casefold)
_ALIASES = {
    "id": ["id", "qid", "question_id"],
    "question": ["question", "題目", "题目", "問題", "问题"],
    "A": ["option a", "option_a", "optiona", "選項a", "选项a", "a"],
    "B": ["option b", "option_b", "optionb", "選項b", "选项b", "b"],
    "C": ["option c", "option_c", "optionc", "選項c", "选项c", "c"],
    "D": ["option d", "option_d", "optiond", "選項d", "选项d", "d"],
    "answer": ["answer", "correct_answer", "正確答案", "正确答案", "答案", "label"],
    "reasoning": ["reasoning", "推理正確答案", "推理正确答案", "推理", "chain"],
    "topic": ["topic", "主題", "主题"],
    "difficulty": ["difficulty", "難度", "难度"],
    "qtype": ["qtype", "question_type", "題型", "题型"],
}
_HEADER_TO_FIELD = {alias: f for f, names in _ALIASES.items() for alias in names}
_NULLS = {"", "nan", "none", "null", "na", "n/a"}
# "A.", "A．", "(A)", "（A）", "A、", "A:", "A)" in front of option A's own text
_OPTION_PREFIX = r"^\s*[(（\[]?\s*{letter}\s*(?:[)）\].．、:：]\s*|\s+)"
_STRAY_LABEL = re.compile(
    r"[(（\[]\s*[A-DＡ-Ｄ1-4１-４]\s*[)）\]]\s*|[A-DＡ-Ｄ1-4１-４]\s?[.．、:：)）](?![0-9０-９])\s*"
)
_WS = re.compile(r"[\s\u3000\u00a0]+")
_ANSWER = re.compile(r"^[(（\[]?\s*([A-Da-dＡ-Ｄａ-ｄ])\s*[)）\].．、:：]?$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class IngestResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    format: str = ""
    rows: int = 0
    encoding: str = "utf-8"  # what the file was read in (mcqflow.ingest.decode)
    labels_removed: dict = field(default_factory=lambda: {"own": 0, "stray": 0})  # option labels taken off

    def check_reconciles(self) -> None:
        if self.rows != len(self.records) + len(self.rejected):
            raise AssertionError(
                f"rows in ({self.rows}) != records ({len(self.records)}) + rejected ({len(self.rejected)})"
            )


def clean_text(s: str | None) -> str:
    """Collapse runs of whitespace (ASCII, full-width, NBSP) to one space and strip the ends."""
    return _WS.sub(" ", s or "").strip()


def clean_option(letter: str, s: str | None) -> str:
    return strip_label(letter, s)[0]


def strip_label(letter: str, s: str | None) -> tuple[str, str | None]:
    """(the option's text, which label was removed: "own", "stray" or None).

    Its own letter goes ("A. 甲" under A, also "A 甲"); so does a stray label of another option or a number
    with explicit punctuation, as real competition files carry them in the wrong column ("A. 2021年" under
    B, "1. 2020年" under A). A decimal ("1.5倍") and a letter that is part of the text ("B型", "A股") stay."""
    s = clean_text(s)
    if not s:
        return s, None
    own = re.sub(_OPTION_PREFIX.format(letter=letter), "", s, count=1)
    if own != s and own.strip():
        return own.strip(), "own"
    m = _STRAY_LABEL.match(s)
    if m and s[m.end() :].strip():
        return s[m.end() :].strip(), "stray"
    return s, None


def normalize_answer(raw: str | None) -> str | None:
    """' A', 'a', 'A.', '(A)', 'Ａ' -> 'A'; missing/NaN -> None. Raises ValueError for anything else."""
    s = clean_text(raw)
    if s.casefold() in _NULLS:
        return None
    m = _ANSWER.match(s)
    if not m:
        raise ValueError(f"answer {raw!r} is not one of A, B, C, D")
    return m.group(1).translate(str.maketrans("ＡＢＣＤａｂｃｄ", "ABCDabcd")).upper()


def detect_lang(texts: list[str]) -> str:
    sample = "".join(texts[:50])
    return "zh" if _CJK.search(sample) else "en"


# What spreadsheet programs and Chinese-language systems write: UTF-16 with a BOM ("Unicode text"),
# Traditional (Big5) and Simplified (GB18030, a superset of GBK/GB2312) legacy code pages.
_LEGACY = ("big5", "gb18030")


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was read in: UTF-8 (with or without BOM), UTF-16 with a BOM,
    else Big5 or GB18030 as charset-normalizer judges (restricted to those two: a short Chinese file fits
    several code pages, and these are the ones the data comes in). Anything else is one line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise UserError(
                f"{path}: starts with a UTF-16 byte order mark but is not UTF-16 (byte {e.start})"
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as e:
        first_bad = e.start
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(_LEGACY)).best()
    if best is not None and best.encoding in _LEGACY:
        return str(best), best.encoding
    raise UserError(
        f"{path}: not UTF-8 (byte {first_bad}), UTF-16 with a BOM, Big5 or GB18030; convert it to UTF-8 first "
        f"(e.g. iconv -f <encoding> -t utf-8)"
    )


def ingest(path: str | Path, lang: str | None = None) -> IngestResult:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file (a folder, a device or a pipe?)")
    text, encoding = decode(path.read_bytes(), path)
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    if path.suffix.lower() in {".jsonl", ".json"}:
        result = _ingest_jsonl(path, text)
    else:
        result = _ingest_table(path, text)
    result.encoding = encoding
    detected = lang or detect_lang([r.question for r in result.records])
    for r in result.records:
        r.lang = lang or (r.lang if result.format == "records" else detected)
    result.check_reconciles()
    return result


def max_field_chars() -> int:
    """The longest cell or JSONL line ingest takes (characters): `$MCQFLOW_MAX_FIELD_CHARS`, default 100,000
    (a question with a long reading passage is a few thousand). A longer one rejects its row."""
    try:
        return int(os.environ.get("MCQFLOW_MAX_FIELD_CHARS", "100000"))
    except ValueError:
        raise UserError("MCQFLOW_MAX_FIELD_CHARS: expected a whole number of characters") from None


# C0 control characters other than tab, newline and carriage return: never text, often a corrupt file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _read_rows(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """All rows, strictly: a quote that is never closed is one line naming its row, not a row that
    swallows every row after it. Cells may be as long as the limit allows (checked per row later)."""
    csv.field_size_limit(2**31 - 1)  # the limit is ours (per row, below): a long cell rejects its row only
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    start = 1
    try:
        for row in reader:
            rows.append(row)
            start = reader.line_num + 1
    except csv.Error as e:
        what = "a quote that is never closed" if "end of data" in str(e) or "EOF" in str(e) else str(e)
        raise UserError(
            f"{path}: row {len(rows)} (line {start}): {what}; nothing was read, so no "
            f"rows are merged: fix the file"
        ) from None
    return rows


def _ingest_table(path: Path, text: str) -> IngestResult:
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.splitlines()[0] else ","
    rows = _read_rows(path, text, delimiter)
    header, body = rows[0], rows[1:]
    limit = max_field_chars()
    columns = _map_header(path, header)
    fmt = _table_format(columns, delimiter)
    res = IngestResult(format=fmt)
    seen: dict[str, int] = {}
    for i, row in enumerate(body, 1):
        if not any(c.strip() for c in row):
            continue  # blank line: not a row
        res.rows += 1
        raw = {header[j] if j < len(header) else f"col{j}": v for j, v in enumerate(row)}
        get = {f: (row[j] if j < len(row) else "") for f, j in columns.items()}
        long = next(((f, len(v)) for f, v in get.items() if len(v) > limit), None)
        if long:
            reason = (
                f"{long[0]} is {long[1]:,} characters, over the limit of {limit:,} (MCQFLOW_MAX_FIELD_CHARS)"
            )
            res.rejected.append(Rejected(str(path), i, reason, {k: v[:200] for k, v in raw.items()}))
            continue
        try:
            bad = next((f for f, v in get.items() if _CONTROL.search(v)), None)
            if bad:
                ch = _CONTROL.search(get[bad]).group(0)
                raise ValueError(f"control character U+{ord(ch):04X} in {bad} (a corrupt or binary file?)")
            rec = _make_record(get, f"{path.stem}-{i:05d}", f"{path.name}:{i}", res.labels_removed)
            if rec.id in seen:
                raise ValueError(f"duplicate id {rec.id!r} (first at row {seen[rec.id]})")
            seen[rec.id] = i
            res.records.append(rec)
        except ValueError as e:
            res.rejected.append(Rejected(str(path), i, str(e), raw))
    return res


def _map_header(path: Path, header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for j, name in enumerate(header):
        key = clean_text(name).casefold()
        if not key or key.startswith("unnamed"):
            if j == 0:
                columns["id"] = j  # CMMLU-style unnamed index column
            continue  # empty trailing columns
        f = _HEADER_TO_FIELD.get(key)
        if f and f in columns:
            raise UserError(
                f"{path}: row 0 (header): columns {columns[f] + 1} ({header[columns[f]]!r}) and {j + 1} "
                f"({name!r}) both mean {f}; rename or drop one"
            )
        if f:
            columns[f] = j
    missing = [f for f in ("question", *LETTERS) if f not in columns]
    if missing:
        raise UserError(
            f"{path}: row 0 (header): unrecognised format, no column for {', '.join(missing)}; "
            f"header is {header!r}"
        )
    return columns


def _table_format(columns: dict[str, int], delimiter: str) -> str:
    if delimiter == "\t":
        return "tsv"
    if "reasoning" in columns:
        return "reasoning-train"
    if "answer" in columns:
        return "train"
    return "test"


def _make_record(get: dict[str, str], default_id: str, source: str, removed: dict | None = None) -> Record:
    # IDs are matched byte for byte by the grader: only the cell's surrounding whitespace goes.
    rid = (get.get("id") or "").strip() or default_id
    question = clean_text(get.get("question"))
    if not question:
        raise ValueError("empty question")
    stripped = {k: strip_label(k, get.get(k)) for k in LETTERS}
    options = {k: v for k, (v, _) in stripped.items()}
    empty = [k for k, v in options.items() if not v]
    if empty:
        raise ValueError(f"empty option {', '.join(empty)}")
    for _, kind in stripped.values():
        if kind and removed is not None:
            removed[kind] += 1
    answer = normalize_answer(get.get("answer"))
    reasoning = (get.get("reasoning") or "").strip() or None
    return Record(
        id=rid,
        question=question,
        options=options,
        answer=answer,
        reasoning=reasoning,
        topic=clean_text(get.get("topic")) or None,
        difficulty=clean_text(get.get("difficulty")) or None,
        qtype=clean_text(get.get("qtype")) or None,
        source=source,
    )


def _ingest_jsonl(path: Path, text: str) -> IngestResult:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    first = _loads(path, *lines[0])
    fmt = "chat" if isinstance(first, dict) and "messages" in first else "records"
    res = IngestResult(format=fmt)
    seen: dict[str, int] = {}
    limit = max_field_chars()
    for i, line in lines:
        res.rows += 1
        if len(line) > limit:
            reason = (
                f"line is {len(line):,} characters, over the limit of {limit:,} (MCQFLOW_MAX_FIELD_CHARS)"
            )
            res.rejected.append(Rejected(str(path), i, reason, {"line": line[:200]}))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            res.rejected.append(Rejected(str(path), i, f"invalid JSON ({e.msg})", {"line": line}))
            continue
        try:
            if fmt == "chat":
                rec = parse_chat(obj, default_id=f"{path.stem}-{i:05d}", source=f"{path.name}:{i}")
            else:
                rec = record_from_dict(obj)
            if rec.id in seen:
                raise ValueError(f"duplicate id {rec.id!r} (first at line {seen[rec.id]})")
            seen[rec.id] = i
            res.records.append(rec)
        except (ValueError, TypeError) as e:
            res.rejected.append(
                Rejected(str(path), i, str(e), obj if isinstance(obj, dict) else {"value": obj})
            )
    return res


def _loads(path: Path, i: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {i}: invalid JSON ({e.msg})") from None


_OPTION_LINE = re.compile(r"^\s*[(（]?([A-D])\s*[)）.．、:：]\s*(.*\S)\s*$")
_QUESTION_LABEL = re.compile(r"(?:題目|题目|問題|问题|Question)\s*[:：]\s*", re.IGNORECASE)


def parse_chat(obj: dict, default_id: str, source: str) -> Record:
    """A chat transcript: the user turn holds the question and lettered option lines; the assistant
    turn holds the answer (a letter or a reasoning chain)."""
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
        raise ValueError("'messages' must be a list of {role, content} objects")
    user = [m.get("content", "") for m in msgs if m.get("role") == "user"]
    assistant = [m.get("content", "") for m in msgs if m.get("role") == "assistant"]
    if not user:
        raise ValueError("no user message")
    lines = user[-1].splitlines()
    found: dict[str, tuple[int, str]] = {}
    for n, ln in enumerate(lines):
        m = _OPTION_LINE.match(ln)
        if m:
            found[m.group(1)] = (n, m.group(2))
    if sorted(found) != list(LETTERS):
        raise ValueError(f"user message has option lines for {''.join(sorted(found)) or 'none'} of A-D")
    head = "\n".join(lines[: found["A"][0]])
    labels = list(_QUESTION_LABEL.finditer(head))
    question = clean_text(head[labels[-1].end() :] if labels else head)
    answer, reasoning = None, None
    if assistant:
        reply = assistant[-1]
        answer = extract_answer(reply).answer
        if any(f"<{t}>" in reply for t in TAGS[:-1]):
            reasoning = reply.strip()
        if answer is None and reply.strip():
            raise ValueError(f"assistant reply has no readable answer: {reply[:60]!r}")
    rec = _make_record(
        {"id": str(obj.get("id", "")), "question": question, "answer": answer or ""}
        | {k: v for k, (_, v) in found.items()},
        default_id=default_id,
        source=source,
    )
    rec.reasoning = reasoning
    return rec


SPLITS = ("train", "dev", "test")


def ingest_split(path: str | Path, split: str, lang: str | None = None) -> IngestResult:
    """Ingest one split with its rules: train and dev need an answer (rows without one are rejected with
    the reason); every test row must survive, since the submission needs one line per test ID."""
    res = ingest(path, lang)
    if split in ("train", "dev"):
        kept = []
        for r in res.records:
            if r.answer is None:
                res.rejected.append(
                    Rejected(str(path), _row_of(r), "no answer in a labelled split", r.to_dict())
                )
            else:
                kept.append(r)
        res.records = kept
    elif res.rejected:
        first = res.rejected[0]
        raise UserError(f"{first.line()} (a test row cannot be dropped: every ID needs an answer)")
    res.check_reconciles()
    return res


def _row_of(r: Record) -> int:
    tail = r.source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
