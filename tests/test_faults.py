"""Bad input, as a hostile user would give it: every case ends in exit 2 with one line, or in rows rejected
with their reason (rows in = kept + rejected), never in a traceback, a hang or a merged row."""

import json
import os
import subprocess
import sys

import pytest

HEADER = "ID,Question,A,B,C,D,Answer\n"
ROW = "{i},問題{i}？,甲,乙,丙,丁,A\n"


def ingest(src, out, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", "ingest", "--input", str(src), "--output", str(out)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcqflow: error:"), lines
    for w in words:
        assert w in lines[0], (w, lines[0])


def rejected(out):
    path = out.with_name(out.stem + ".rejected.jsonl")
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (HEADER + '1,"問題一,甲,乙,丙,丁,A\n' + ROW.format(i=2) + ROW.format(i=3), ["row 1", "never closed"]),
        (HEADER + '1,"問題"一,甲,乙,丙,丁,A\n' + ROW.format(i=2), ["row 1", "expected after"]),
        ("ID,Question,A,B,C,D,選項A,Answer\n1,問,甲,乙,丙,丁,戊,A\n", ["row 0 (header)", "both mean A"]),
        ("ID,Question,A,B,C\n1,問,甲,乙,丙\n", ["no column for D"]),
    ],
    ids=["unterminated-quote", "stray-quote", "duplicate-header-column", "missing-column"],
)
def test_a_broken_table_is_one_line_and_no_row_is_merged(tmp_path, content, words):
    src = tmp_path / "in.csv"
    src.write_text(content, encoding="utf-8")
    r = ingest(src, tmp_path / "out.jsonl")
    one_line_error(r, str(src), *words)
    assert not (tmp_path / "out.jsonl").exists()


def test_not_a_regular_file_is_one_line_and_never_read(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # reading it would block forever
    for src in (fifo, "/dev/zero", tmp_path):
        one_line_error(ingest(src, tmp_path / "out.jsonl"), "not a regular file")


def test_rows_with_bad_fields_are_rejected_with_their_reason(tmp_path):
    src = tmp_path / "in.jsonl"
    opts = {"A": "甲", "B": "乙", "C": "丙", "D": "丁"}
    lines = [
        {"id": "1", "question": "問", "options": opts, "answer": ["A"]},
        [1, 2],
        "text",
        {"id": "4", "question": 7, "options": opts},
        {"id": "5", "question": "問", "options": {**opts, "A": None}},
        {"id": "6", "question": "問", "options": opts, "answer": "E"},
        {"id": "7", "question": "好問題", "options": opts, "answer": "B"},
    ]
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = ingest(src, out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    kept = out.read_text(encoding="utf-8").splitlines()
    reasons = [x["reason"] for x in rejected(out)]
    assert len(kept) == 1 and len(kept) + len(reasons) == len(lines)
    assert reasons == [
        "answer must be a string or null, got list ['A']",
        "expected a JSON object, got list",
        "expected a JSON object, got str",
        "question must be a string, got int",
        "option A must be a string, got NoneType",
        "answer must be one of A, B, C, D or null, got 'E'",
    ]


def test_oversize_fields_and_control_characters_reject_only_their_row(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        HEADER
        + "1,問"
        + "題" * 200_000
        + ",甲,乙,丙,丁,A\n"
        + "2,問\x00題,甲,乙,丙,丁,A\n"
        + ROW.format(i=3),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    r = ingest(src, out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    reasons = [x["reason"] for x in rejected(out)]
    assert reasons == [
        "question is 200,001 characters, over the limit of 100,000 (MCQFLOW_MAX_FIELD_CHARS)",
        "control character U+0000 in question (a corrupt or binary file?)",
    ]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    r = ingest(src, out, env={"MCQFLOW_MAX_FIELD_CHARS": "300000"})  # the limit is the user's to set
    assert len([x for x in rejected(out) if "limit" in x["reason"]]) == 0


def test_an_output_that_cannot_be_written_is_one_line_before_any_work(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(HEADER + ROW.format(i=1), encoding="utf-8")
    one_line_error(ingest(src, "/proc/no-such-folder/out.jsonl"), "--output", "cannot make its folder")
    one_line_error(ingest(src, tmp_path), "--output", "is a folder")
