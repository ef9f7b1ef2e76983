"""Questions whose options sit inline in the text, as exam PDFs give them: GAOKAO-Bench's JSON files.

GAOKAO-Bench (OpenLMLab, Apache-2.0) holds each question as one string extracted from a PDF:
`3．（ 4分）<stem with line breaks mid-sentence>\\n①…\\n②…\\nA．①③  B．①④  C．②③  D．②④`, the answer as a
list of letters, and a human-written analysis ending in `故选：X`. `split_inline` turns such a string into
a stem and four options:

- the options are the text after the last complete label sequence A…B…C…D (labels `A．`, `A.`, `A、`,
  `A:`), each running to the next label, D to the end;
- the score prefix (`3．（ 4分）`) and the shared-passage instruction (`回答 3﹣4题。`) go; the passage
  itself stays with every question that shares it;
- a line break, and any space beside a Chinese character or full-width punctuation, is PDF layout, not
  text: it goes (spaces between two Latin letters or digits stay);
- statements ①②③④ stay in the stem, one per line.

A row that cannot be split, has an empty option, or has other than one answer letter is rejected with its
reason (`parse_example` raises ValueError), never guessed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mcqflow.core.errors import UserError
from mcqflow.core.schema import LETTERS, Record, Rejected

# an option label: a capital A-D (half- or full-width) followed by the punctuation exams put after it
_LABEL = re.compile(r"(?<![A-Za-z0-9Ａ-Ｚａ-ｚ])([A-DＡ-Ｄ])\s*[．.、:：]")
_SCORE = re.compile(r"^\s*\d+\s*[．.、]\s*(?:[（(]\s*\d+\s*分\s*[）)])?\s*")
_PASSAGE = re.compile(
    r"(?:据此|根据材料|结合材料)?\s*(?:回答|完成)\s*(?:下列)?\s*\d+\s*[﹣\-－～~—–至到]\s*\d+\s*(?:小?题|问题)\s*[。．.，,]?"
)
_WIDE = r"\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\u2460-\u2473\u201c\u201d\u2018\u2019\u2026\u2014"
_SPACE_BY_WIDE = re.compile(rf"[ \t\u00a0]+(?=[{_WIDE}])|(?<=[{_WIDE}])[ \t\u00a0]+")
_CIRCLED = "①②③④⑤⑥"
_STATEMENT = re.compile(rf"(?<![{_CIRCLED}])(?=[{_CIRCLED}](?![{_CIRCLED}]))")
_BLANK = re.compile(r"[（(][\s\u3000]*[）)]")
_DECISION = re.compile(
    r"故(?:本题)?(?:正确)?(?:答案)?(?:应|应该)?(?:选择?|为|是)\s*[：:]?\s*([A-D])(?![A-D])"
)
_CALLED_RIGHT = re.compile(r"(?<![A-Za-z])([A-D])(?:项|选项)?(?:说法|表述)?(?:正确|符合题意)")
_FULL = str.maketrans("ＡＢＣＤ", "ABCD")


def tidy(text: str) -> str:
    """PDF layout out of a Chinese text: line breaks and the spaces beside wide characters go, statements
    ①②③④ start a line of their own, the answer blank becomes `（　　）`."""
    text = text.replace("\r", "")
    text = re.sub(r"\s*\n\s*", "", text)
    text = _SPACE_BY_WIDE.sub("", text)
    text = re.sub(r"[ \t\u00a0]{2,}", " ", text)
    text = _BLANK.sub("（　　）", text)
    text = _STATEMENT.sub("\n", text)
    return "\n".join(ln.strip() for ln in text.split("\n") if ln.strip())


def split_inline(text: str) -> tuple[str, dict[str, str]]:
    """(stem, options A-D) of a question whose options are inline; ValueError when it cannot be split."""
    labels = list(_LABEL.finditer(text))
    # the last A that B, C and D follow in order, each the first after the one before
    for start in reversed([i for i, m in enumerate(labels) if m.group(1).translate(_FULL) == "A"]):
        seq, want = [labels[start]], 1
        for m in labels[start + 1 :]:
            if want < 4 and m.group(1).translate(_FULL) == LETTERS[want]:
                seq.append(m)
                want += 1
        if want == 4:
            break
    else:
        found = "".join(sorted({m.group(1).translate(_FULL) for m in labels}))
        raise ValueError(f"no complete A-D option sequence in the question (labels found: {found or 'none'})")
    ends = [m.start() for m in seq[1:]] + [len(text)]
    options = {k: tidy(text[m.end() : end]) for k, m, end in zip(LETTERS, seq, ends, strict=True)}
    empty = [k for k, v in options.items() if not v]
    if empty:
        raise ValueError(f"empty option {', '.join(empty)} (a figure in the PDF?)")
    stem = _PASSAGE.sub("", _SCORE.sub("", text[: seq[0].start()], count=1))
    stem = tidy(stem)
    if not stem:
        raise ValueError("empty question stem")
    return stem, options


def analysis_letter(analysis: str) -> str | None:
    """The letter an analysis concludes with: its last `故选：X` (`故答案选择 X`, `故正确答案选X`, ...), else
    the one option it calls right (`故A正确`, `C项符合题意`) when it calls exactly one so; None otherwise."""
    text = tidy(analysis or "")
    found = _DECISION.findall(text)
    if found:
        return found[-1]
    right = set(_CALLED_RIGHT.findall(text))
    return right.pop() if len(right) == 1 else None


def parse_example(ex: dict, subject: str, source: str) -> Record:
    """One GAOKAO-Bench example as a canonical record; ValueError with the reason when it cannot be one."""
    if not isinstance(ex, dict):
        raise ValueError(f"expected an object, got {type(ex).__name__}")
    for key in ("year", "question", "answer", "index"):
        if key not in ex:
            raise ValueError(f"missing field {key!r}")
    if not isinstance(ex["question"], str):
        raise ValueError("question must be a string")
    answer = ex["answer"]
    if not isinstance(answer, list) or len(answer) != 1:
        n = len(answer) if isinstance(answer, list) else "not a list"
        raise ValueError(f"answer {answer!r} is not one letter ({n}): a single-choice record needs one")
    letter = str(answer[0]).strip().translate(_FULL)
    if letter not in LETTERS:
        raise ValueError(f"answer {answer[0]!r} is not one of A, B, C, D")
    stem, options = split_inline(ex["question"])
    year = str(ex["year"]).strip()
    analysis = ex.get("analysis")
    return Record(
        id=f"gaokao-{subject}-{year}-{ex['index']}",
        question=stem,
        options=options,
        answer=letter,
        lang="zh",
        topic=subject,
        year=year,
        analysis=tidy(analysis) if isinstance(analysis, str) and analysis.strip() else None,
        source=source,
    )


# GAOKAO-Bench file name -> the subject kept as the record's topic
SUBJECTS = {"Political_Science": "政治", "History": "历史"}


def subject_of(path: Path) -> str:
    for key, name in SUBJECTS.items():
        if key in path.name:
            return name
    return path.stem


def read_file(path: str | Path) -> tuple[list[Record], list[Rejected], int]:
    """(records, rejected rows, rows in) of one GAOKAO-Bench JSON file; a file that is not one is a
    UserError (one line)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a GAOKAO-Bench JSON file ({e})") from None
    examples = data.get("example") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise UserError(f"{path}: not a GAOKAO-Bench JSON file (no 'example' list)")
    subject = subject_of(path)
    records, rejected = [], []
    for i, ex in enumerate(examples, 1):
        try:
            records.append(parse_example(ex, subject, f"{path.name}:{i}"))
        except ValueError as e:
            rejected.append(Rejected(str(path), i, str(e), ex if isinstance(ex, dict) else {"value": ex}))
    return records, rejected, len(examples)
