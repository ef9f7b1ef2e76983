"""Bad input, as a hostile user would give it: every case ends in exit 2 with one line, or in rows rejected
with their reason (rows in = kept + rejected), never in a traceback, a hang or a merged row."""

import contextlib
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

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


def test_ingest_streams_rows_with_memory_far_below_the_file_size(tmp_path):
    """A whole-file read holds the text, its rows and their records at once (several times the file);
    streaming holds one row, the first 50 while the language is judged, and the IDs."""
    import tracemalloc

    from mcqflow.data.ingest import ingest_to

    src = tmp_path / "big.csv"
    with src.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(800):
            f.write(f"{i},{'題' * 1500}{i}？,甲,乙,丙,丁,{'ABCD'[i % 4]}\n")
    size = src.stat().st_size
    tracemalloc.start()
    try:
        res = ingest_to(src, tmp_path / "out.jsonl", tmp_path / "rejected.jsonl", "train")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.kept == 800 and res.rejected_rows == 0
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 800
    assert peak < size / 4, (peak, size)


def test_a_problem_deep_in_a_file_writes_nothing(tmp_path):
    """Bad bytes past the first MiB are found before any row is read; a broken quote near the end stops a
    stream that has already written rows, and neither output appears."""
    body = "".join(ROW.format(i=i) for i in range(1, 40_000))
    out = tmp_path / "out.jsonl"
    bad_bytes = tmp_path / "bytes.csv"
    bad_bytes.write_bytes((HEADER + body).encode("utf-8") + "9,café,x,y,z,w,A\n".encode("latin-1"))
    assert bad_bytes.stat().st_size > 1 << 20
    one_line_error(ingest(bad_bytes, out), "not UTF-8 (byte 1")
    bad_quote = tmp_path / "quote.csv"
    bad_quote.write_text(HEADER + body + '40000,"問題,甲,乙,丙,丁,A\n', encoding="utf-8")
    one_line_error(ingest(bad_quote, out), "row 40000", "never closed", "nothing was written")
    assert not out.exists() and not rejected(out)
    assert not list(tmp_path.glob(".*.tmp"))


@contextlib.contextmanager
def held(path):
    """Another process holding `path` (mcqflow.core.io.claim) until the block ends; yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mcqflow.core.io import claim; claim(out=sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.communicate("")


def test_two_writers_of_one_output_never_interleave(tmp_path, monkeypatch):
    """While one run holds an output, a second run on it is one line naming the first's pid, before any
    work; once the first ends, the output is free."""
    monkeypatch.setenv("MCQFLOW_CACHE", str(tmp_path / "cache"))
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text(HEADER + ROW.format(i=1), encoding="utf-8")
    with held(out) as pid:
        # another cache does not hide the holder (the locks are not in the cache)
        env = {"MCQFLOW_CACHE": str(tmp_path / "another-cache")}
        one_line_error(ingest(src, out, env=env), "--output", f"pid {pid}", "another mcqflow run")
        assert not out.exists()
    r = ingest(src, out, env={"MCQFLOW_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0 and len(out.read_text(encoding="utf-8").splitlines()) == 1
    # the predict stage claims its outputs too, before it reads params or loads a model
    metrics = tmp_path / "m.json"
    with held(metrics) as pid:
        r = subprocess.run(
            [sys.executable, ROOT / "stages/predict.py", "--name", "sft-plain", "--lang", "zh", "--models", "m",
             "--data", "d", "--submission", "s.csv", "--details", "det", "--metrics", metrics, "--headline", "h.json", "--report",
             "r.html", "--plots", "p"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        one_line_error(r, "--metrics", f"pid {pid}", "another mcqflow run")


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", *map(str, args)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_file_that_fails_to_read_is_one_line(tmp_path):
    # a regular file whose read is an I/O error (as a failing disk or a vanished network share gives)
    one_line_error(ingest("/proc/self/mem", tmp_path / "out.jsonl"), "cannot be read", "Input/output error")


def test_an_oversize_json_line_rejects_only_its_row(tmp_path):
    src = tmp_path / "in.jsonl"
    opts = {"A": "甲", "B": "乙", "C": "丙", "D": "丁"}
    rows = [{"id": "1", "question": "問" * 5_000_000, "options": opts, "answer": "A"}]
    rows += [{"id": "2", "question": "好問題", "options": opts, "answer": "B"}]
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = ingest(src, out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert [x["reason"] for x in rejected(out)] == [
        "line is 5,000,095 characters, over the limit of 100,000 (MCQFLOW_MAX_FIELD_CHARS)"
    ]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_a_chain_nested_100k_deep_is_a_rejected_row_at_validate(tmp_path):
    """The XML parser refuses the depth (lxml's default, not huge_tree): the row is quarantined with the
    reason, the next row is judged as usual."""
    src = tmp_path / "deep.tsv"
    head = "question\toption_A\toption_B\toption_C\toption_D\tcorrect_answer\treasoning\n"
    deep = "<a>" * 100_000 + "</a>" * 100_000
    src.write_text(head + f"問題一？\t甲\t乙\t丙\t丁\tA\t{deep}\n", encoding="utf-8")
    env = {"MCQFLOW_MAX_FIELD_CHARS": "1000000"}
    r = cli("validate", "--input", src, "--kind", "reasoning", "--split", "train", env=env)
    assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr[-800:]
    assert "row 1: failed" in r.stdout + r.stderr and "well_formed_reasoning_chain" in r.stdout + r.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_bad_batch_sizes_are_one_line_before_any_work(tmp_path, command):
    src = tmp_path / "in.csv"
    src.write_text(HEADER + ROW.format(i=1), encoding="utf-8")
    out = ["--output", tmp_path / "sub.csv"] if command == "predict" else []
    for bad in ("0", "-3"):
        r = cli(command, "--model", tmp_path / "no-model", "--input", src, "--batch-size", bad, *out)
        one_line_error(r, "--batch-size")
