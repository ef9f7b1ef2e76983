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
Rows are streamed (Reader, ingest_to): memory does not grow with the file, only by each ID (the duplicate
check).
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mcqflow.core.errors import UserError
from mcqflow.core.io import atomic_open
from mcqflow.core.reasoning import TAGS
from mcqflow.core.schema import LETTERS, Record, Rejected, loads, record_from_dict
from mcqflow.core.text import letter_of, stated_letter

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
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class IngestResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    format: str = ""
    rows: int = 0
    encoding: str = "utf-8"  # what the file was read in (mcqflow.data.ingest.open_text)
    labels_removed: dict = field(default_factory=lambda: {"own": 0, "stray": 0})  # option labels taken off
    kept: int = (
        0  # records out (equal to len(records) unless streamed to a file: mcqflow.data.ingest.ingest_to)
    )
    rejected_rows: int = 0  # rejected rows (likewise)

    def check_reconciles(self) -> None:
        if self.rows != self.kept + self.rejected_rows:
            raise AssertionError(
                f"rows in ({self.rows}) != records ({self.kept}) + rejected ({self.rejected_rows})"
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
    letter = letter_of(s)
    if letter is None:
        raise ValueError(f"answer {raw!r} is not one of A, B, C, D")
    return letter


_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str) -> str:
    """zh or en for one question (with its options): Chinese when its CJK characters are at least a third
    as many as its Latin letters (one character carries about a word), so an English question quoting 關係
    stays English and a Chinese one naming GDP stays Chinese."""
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if cjk and 3 * cjk >= latin else "en"


# What spreadsheet programs and Chinese-language systems write: UTF-16 with a BOM ("Unicode text"),
# Traditional (Big5) and Simplified (GB18030, a superset of GBK/GB2312) legacy code pages.
_LEGACY = ("big5", "gb18030")
_CHUNK = 1 << 16  # bytes read at a time when checking an encoding
_SAMPLE = 1 << 20  # bytes charset-normalizer judges Big5 against GB18030 on
_MAX_MESS = 0.1  # charset-normalizer's mess ratio above which a Big5/GB18030 reading is taken for mojibake


def _unreadable(path: Path, e: OSError) -> UserError:
    return UserError(f"{path}: cannot be read ({e.strerror or e})")


def open_text(path: Path) -> tuple[IO[str], str]:
    """The file opened for streaming text (newline="", as csv wants it) and the encoding it is in: UTF-8
    (with or without BOM), UTF-16 with a BOM, else Big5 or GB18030 as charset-normalizer judges from the
    first MiB (restricted to those two: a short Chinese file fits several code pages, and these are the ones
    the data comes in). The whole file is checked first, 64 KiB at a time, so a bad byte deep in it is one
    line before any row is read. Anything else is one line."""
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file (a folder, a device or a pipe?)")
    try:
        return _open_text(path)
    except OSError as e:  # no permission, an I/O error, a file that vanished
        raise _unreadable(path, e) from None


def _open_text(path: Path) -> tuple[IO[str], str]:
    with path.open("rb") as f:
        bom = f.read(2)
    if bom in (b"\xff\xfe", b"\xfe\xff"):
        bad = _first_bad_byte(path, "utf-16")
        if bad is not None:
            raise UserError(f"{path}: starts with a UTF-16 byte order mark but is not UTF-16 (byte {bad})")
        return path.open(encoding="utf-16", newline=""), "utf-16"
    first_bad = _first_bad_byte(path, "utf-8")
    if first_bad is None:
        return path.open(encoding="utf-8-sig", newline=""), "utf-8"
    from charset_normalizer import from_bytes

    with path.open("rb") as f:
        head = f.read(_SAMPLE)
    # a whole number of lines: no multi-byte character is cut (no Big5 or GB18030 byte after the first is \n)
    sample = head[: head.rfind(b"\n") + 1] or head if len(head) == _SAMPLE else head
    best = from_bytes(sample, cp_isolation=list(_LEGACY)).best()
    if best is not None and best.chaos > _MAX_MESS:
        # Bytes of another code page that happen to decode as Chinese (EUC-KR Hangul as GB18030): mojibake,
        # which charset-normalizer's mess ratio tells from the real thing (0.00-0.08 on real Big5/GB18030
        # files of one row and up, 0.15-0.17 on EUC-KR and Shift-JIS ones read as GB18030)
        # (no guess at which code page it is: on a few lines charset-normalizer took Shift-JIS for cp1250)
        raise UserError(
            f"{path}: not UTF-8 (byte {first_bad}); read as {best.encoding} it is not Chinese text (mess ratio "
            f"{best.chaos:.2f}): another code page (Shift-JIS, EUC-KR, cp1252, ...)? Convert it to UTF-8 first "
            f"(e.g. iconv -f <encoding> -t utf-8)"
        )
    if best is not None and best.encoding in _LEGACY and _first_bad_byte(path, best.encoding) is None:
        return path.open(encoding=best.encoding, newline=""), best.encoding
    raise UserError(
        f"{path}: not UTF-8 (byte {first_bad}), UTF-16 with a BOM, Big5 or GB18030; convert it to UTF-8 first "
        f"(e.g. iconv -f <encoding> -t utf-8)"
    )


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """The offset of the first byte that is not `encoding`, or None: read 64 KiB at a time."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            pending = len(dec.getstate()[0])  # bytes of a character cut at the last chunk's end
            try:
                dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                return offset - pending + e.start
            if not chunk:
                return None
            offset += len(chunk)


class Reader:
    """One input file as a stream of Record and Rejected, in file order, with only one row in memory (plus
    every ID, for the duplicate check, and the first 50 questions while the language is judged).

    Opening it reads the encoding and the header (or the first JSON line), so file-level problems are one
    line before any row; a broken quote further down is one line where it is met. With `split`, that split's
    rules apply: train and dev rows need an answer (rejected with the reason otherwise); a test row can never
    be dropped (its rejection is one line: the submission needs one answer per ID). Counts are in `.result`."""

    def __init__(self, path: str | Path, lang: str | None = None, split: str | None = None):
        self.path, self.lang, self.split = Path(path), lang, split
        self.result = IngestResult()
        self._f, self.result.encoding = open_text(self.path)
        try:
            jsonl = self.path.suffix.lower() in {".jsonl", ".json"}
            self._rows = self._open_jsonl() if jsonl else self._open_table()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[Record | Rejected]:
        res = self.result
        detect = self.lang is None and res.format != "records"  # records carry their own language
        for item in _readable(self.path, self._rows):
            # Each row's own language: a file of English rows and then Chinese ones is both, not the first's
            lang = (
                detect_lang(" ".join([item.question, *item.options.values()]))
                if detect and isinstance(item, Record)
                else self.lang
            )
            yield self._finish(item, lang)
        res.check_reconciles()

    def _finish(self, item: Record | Rejected, lang: str | None) -> Record | Rejected:
        res = self.result
        if isinstance(item, Record):
            item.lang = lang or item.lang
            if self.split in ("train", "dev") and item.answer is None:
                item = Rejected(
                    str(self.path), _row_of(item), "no answer in a labelled split", item.to_dict()
                )
        if isinstance(item, Rejected):
            if self.split == "test":
                raise UserError(f"{item.line()} (a test row cannot be dropped: every ID needs an answer)")
            res.rejected_rows += 1
        else:
            res.kept += 1
        return item

    # -- tables

    def _open_table(self) -> Iterator[Record | Rejected]:
        first = self._f.readline()
        self._f.seek(0)
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" or "\t" in first else ","
        csv.field_size_limit(
            2**31 - 1
        )  # the limit is ours (per row, below): a long cell rejects its row only
        reader = csv.reader(self._f, delimiter=delimiter, strict=True)
        rows = _strict_rows(self.path, reader)
        header = next((row for row in rows if any(c.strip() for c in row)), None)
        if header is None:
            raise UserError(f"{self.path}: file is empty")
        columns = _map_header(self.path, header)
        self.result.format = _table_format(columns, delimiter)
        return self._table_rows(rows, header, columns)

    def _table_rows(self, rows: Iterator[list[str]], header: list[str], columns: dict[str, int]):
        path, res, limit = self.path, self.result, max_field_chars()
        seen: dict[str, int] = {}
        for i, row in enumerate(rows, 1):
            if not any(c.strip() for c in row):
                continue  # blank line: not a row
            res.rows += 1
            raw = {header[j] if j < len(header) else f"col{j}": v for j, v in enumerate(row)}
            get = {f: (row[j] if j < len(row) else "") for f, j in columns.items()}
            long = next(((f, len(v)) for f, v in get.items() if len(v) > limit), None)
            if long:
                reason = f"{long[0]} is {long[1]:,} characters, over the limit of {limit:,} (MCQFLOW_MAX_FIELD_CHARS)"
                yield Rejected(str(path), i, reason, {k: v[:200] for k, v in raw.items()})
                continue
            try:
                bad = next((f for f, v in get.items() if _CONTROL.search(v)), None)
                if bad:
                    ch = _CONTROL.search(get[bad]).group(0)
                    raise ValueError(
                        f"control character U+{ord(ch):04X} in {bad} (a corrupt or binary file?)"
                    )
                rec = _make_record(get, f"{path.stem}-{i:05d}", f"{path.name}:{i}", res.labels_removed)
                if rec.id in seen:
                    raise ValueError(f"duplicate id {rec.id!r} (first at row {seen[rec.id]})")
                seen[rec.id] = i
                yield rec
            except ValueError as e:
                yield Rejected(str(path), i, str(e), raw)

    # -- JSON lines

    def _open_jsonl(self) -> Iterator[Record | Rejected]:
        lines = ((i, ln) for i, ln in enumerate(self._f, 1) if ln.strip())
        first = next(lines, None)
        if first is None:
            raise UserError(f"{self.path}: file is empty")
        obj = _loads(self.path, *first)
        self.result.format = "chat" if isinstance(obj, dict) and "messages" in obj else "records"
        return self._jsonl_rows(itertools.chain([first], lines))

    def _jsonl_rows(self, lines: Iterator[tuple[int, str]]):
        path, res, limit, fmt = self.path, self.result, max_field_chars(), self.result.format
        seen: dict[str, int] = {}
        for i, line in lines:
            line = line.rstrip("\r\n")
            res.rows += 1
            if len(line) > limit:
                reason = (
                    f"line is {len(line):,} characters, over the limit of {limit:,} (MCQFLOW_MAX_FIELD_CHARS)"
                )
                yield Rejected(str(path), i, reason, {"line": line[:200]})
                continue
            try:
                obj = loads(line)
            except json.JSONDecodeError as e:
                yield Rejected(str(path), i, f"invalid JSON ({e.msg})", {"line": line})
                continue
            try:
                if fmt == "chat":
                    rec = parse_chat(obj, default_id=f"{path.stem}-{i:05d}", source=f"{path.name}:{i}")
                else:
                    rec = record_from_dict(obj)
                if rec.id in seen:
                    raise ValueError(f"duplicate id {rec.id!r} (first at line {seen[rec.id]})")
                seen[rec.id] = i
                yield rec
            except (ValueError, TypeError) as e:
                yield Rejected(str(path), i, str(e), obj if isinstance(obj, dict) else {"value": obj})


def _readable(path: Path, rows: Iterator[Record | Rejected]) -> Iterator[Record | Rejected]:
    """The rows, with a read failure part-way (an I/O error, a file cut short on a network disk) as one line."""
    try:
        yield from rows
    except OSError as e:
        raise _unreadable(path, e) from None


def ingest(path: str | Path, lang: str | None = None) -> IngestResult:
    """The whole file in memory: records and rejected rows (see Reader; ingest_to streams to files)."""
    return _collect(Reader(path, lang))


def max_field_chars() -> int:
    """The longest cell or JSONL line ingest takes (characters): `$MCQFLOW_MAX_FIELD_CHARS`, default 100,000
    (a question with a long reading passage is a few thousand). A longer one rejects its row."""
    try:
        return int(os.environ.get("MCQFLOW_MAX_FIELD_CHARS", "100000"))
    except ValueError:
        raise UserError("MCQFLOW_MAX_FIELD_CHARS: expected a whole number of characters") from None


# C0 control characters other than tab, newline and carriage return: never text, often a corrupt file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _strict_rows(path: Path, reader) -> Iterator[list[str]]:
    """The rows, strictly: a quote that is never closed is one line naming its row, not a row that
    swallows every row after it. Cells may be as long as the limit allows (checked per row later)."""
    n, start = 0, 1
    try:
        for row in reader:
            yield row
            n, start = n + 1, reader.line_num + 1
    except csv.Error as e:
        what = "a quote that is never closed" if "end of data" in str(e) or "EOF" in str(e) else str(e)
        raise UserError(
            f"{path}: row {n} (line {start}): {what}; nothing was written, so no rows are merged: fix the file"
        ) from None


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
        chain_source="dataset" if reasoning else None,
    )


def _loads(path: Path, i: int, line: str):
    try:
        return loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {i}: invalid JSON ({e.msg})") from None


_OPTION_LINE = re.compile(r"^\s*[(（]?([A-D])\s*[)）.．、:：]\s*(.*\S)\s*$")
_QUESTION_LABEL = re.compile(r"(?:題目|题目|問題|问题|Question)\s*[:：]\s*", re.IGNORECASE)


def _content(content) -> str:
    """A message's text: a string, or OpenAI's content parts ([{"type": "text", "text": …}, …]) joined;
    parts of other types (images, audio) carry no text for a question."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text") for p in content if p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise ValueError(
        "a message's 'content' must be a string or a list of content parts ({'type': 'text', 'text': ...})"
    )


def parse_chat(obj: dict, default_id: str, source: str) -> Record:
    """A chat transcript: the user turn holds the question and lettered option lines; the assistant
    turn holds the answer (a letter or a reasoning chain)."""
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
        raise ValueError("'messages' must be a list of {role, content} objects")
    user = [_content(m.get("content")) for m in msgs if m.get("role") == "user"]
    assistant = [_content(m.get("content")) for m in msgs if m.get("role") == "assistant"]
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
        answer = stated_letter(reply)
        if any(f"<{t}>" in reply for t in TAGS[:-1]):
            reasoning = reply.strip()
        if answer is None and reply.strip():
            raise ValueError(f"assistant reply states no answer letter: {reply[:60]!r}")
    rec = _make_record(
        {"id": str(obj.get("id", "")), "question": question, "answer": answer or ""}
        | {k: v for k, (_, v) in found.items()},
        default_id=default_id,
        source=source,
    )
    rec.reasoning = reasoning
    rec.chain_source = "dataset" if reasoning else None
    return rec


SPLITS = ("train", "dev", "test")


def ingest_split(path: str | Path, split: str, lang: str | None = None) -> IngestResult:
    """One split in memory, with its rules (see Reader)."""
    return _collect(Reader(path, lang, split))


def ingest_to(
    path: str | Path,
    output: str | Path,
    rejected: str | Path,
    split: str | None = None,
    lang: str | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    empty_rejected: bool = True,
) -> IngestResult:
    """Stream `path` into `output` (records) and `rejected` (rejected rows, each with its reason), one row
    in memory at a time; both appear whole or not at all. Without `empty_rejected`, no rejected file is
    written when nothing is rejected. The result holds the counts, not the rows."""
    with (
        Reader(path, lang, split) as reader,
        atomic_open(output) as out,
        atomic_open(rejected, publish_empty=empty_rejected) as rej,
    ):
        for item in reader:
            if isinstance(item, Record):
                out.write(item.to_json() + "\n")
            else:
                rej.write(item.to_json() + "\n")
                if on_reject:
                    on_reject(item)
    return reader.result


def _collect(reader: Reader) -> IngestResult:
    with reader:
        res = reader.result
        for item in reader:
            (res.records if isinstance(item, Record) else res.rejected).append(item)
    return res


def _row_of(r: Record) -> int:
    tail = r.source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
