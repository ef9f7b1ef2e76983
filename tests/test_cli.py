import csv
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT


def mcqflow(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", *args], input=stdin, capture_output=True, text=True, cwd=cwd
    )


def test_extract_answer_json_lines():
    lines = [
        {"text": "排除A和B……最終選擇D"},
        {"text": "<output>b</output>"},
        {"text": "抱歉，我無法回答"},
        {"text": "我認為是環境保護", "options": {"A": "經濟", "B": "環境保護", "C": "人權", "D": "法治"}},
    ]
    r = mcqflow("extract-answer", stdin="".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    assert r.returncode == 0, r.stderr
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert got == [
        {"answer": "D", "method": "zh-phrase"},
        {"answer": "B", "method": "tag"},
        {"answer": None, "method": "refusal"},
        {"answer": "B", "method": "option-text"},
    ]


def test_extract_answer_bad_line_is_one_line():
    r = mcqflow("extract-answer", stdin='{"txt": 1}\n')
    assert r.returncode == 2
    assert r.stderr.strip() == "mcqflow: error: stdin: line 1: expected a JSON object with 'text' ('text')"


def test_ingest(tmp_path):
    out = tmp_path / "dev.jsonl"
    r = mcqflow(
        "ingest", "--input", str(ROOT / "data/sample/dev.csv"), "--output", str(out), "--split", "dev"
    )
    assert r.returncode == 0, r.stderr
    assert "61 rows -> 60 records" in r.stdout and "1 rejected" in r.stdout
    assert "dev.csv: row 61: no answer in a labelled split" in r.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 60
    rejected = [
        json.loads(x) for x in (tmp_path / "dev.rejected.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert rejected[0]["reason"] == "no answer in a labelled split" and rejected[0]["raw"]["id"] == "dev-999"
    strict = mcqflow(
        "ingest",
        "--input",
        str(ROOT / "data/sample/dev.csv"),
        "--output",
        str(out),
        "--split",
        "dev",
        "--strict",
    )
    assert strict.returncode == 1


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    r = mcqflow("ingest", "--input", str(bad), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "bad.csv: row 0 (header): unrecognised format" in r.stderr


def test_predict_writes_kaggle_submission_for_quirky_test_file(tiny_dir, tmp_path):
    out, details = tmp_path / "sub.csv", tmp_path / "details.jsonl"
    r = mcqflow(
        "predict",
        "--model",
        tiny_dir,
        "--input",
        str(ROOT / "data/sample/test.csv"),
        "--output",
        str(out),
        "--details",
        str(details),
    )
    assert r.returncode == 0, r.stderr
    with open(ROOT / "data/sample/test.csv", encoding="utf-8", newline="") as f:
        ids = [row[0] for row in list(csv.reader(f))[1:]]
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ID", "Answer"]
    assert [r[0] for r in rows[1:]] == ids
    assert all(len(r) == 2 and r[1] in {"A", "B", "C", "D"} for r in rows[1:])
    assert len(details.read_text(encoding="utf-8").splitlines()) == len(ids)
    assert not (
        tmp_path / "sub.csv.partial.jsonl"
    ).exists()  # the answer journal goes once the outputs are in


def test_predict_generate_mode_counts_fallbacks(tiny_dir, tmp_path):
    r = mcqflow(
        "predict",
        "--model",
        tiny_dir,
        "--input",
        str(ROOT / "data/sample/dev.csv"),
        "--mode",
        "generate",
        "--max-new-tokens",
        "6",
        "--output",
        str(tmp_path / "s.csv"),
    )
    assert r.returncode == 0, r.stderr
    assert "61 answers" in r.stdout and "fallbacks:" in r.stdout and "accuracy" in r.stdout


def test_predict_tiny_means_the_pipeline_model(tiny_dir, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(tiny_dir)
    r = mcqflow(
        "predict",
        "--model",
        "tiny",
        "--input",
        str(ROOT / "data/sample/test.csv"),
        "--output",
        "s.csv",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    r = mcqflow(
        "predict",
        "--model",
        "tiny",
        "--input",
        str(ROOT / "data/sample/test.csv"),
        "--output",
        "s.csv",
        cwd=empty,
    )
    assert r.returncode == 2 and "dvc repro tiny_model" in r.stderr and "Traceback" not in r.stderr


def test_bench_mistakes_are_one_line(tmp_path):
    bad = tmp_path / "not-results.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    cases = [
        (("--processes", "2"), "--processes: predict runs in one process; use --only sft,grpo"),
        (("--only", "sft", "--baseline", str(bad)), "not-results.json: not a results file of mcqflow bench"),
        (("--only", "sft", "--sft-variants", "turbo"), "unknown sft variant(s) turbo; known: vanilla-qlora"),
    ]
    for args, said in cases:
        r = mcqflow("bench", "--arch", "tiny", "--smoke", "--out", str(tmp_path / "o"), *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.stderr.count("\n") == 1 and said in r.stderr, r.stderr


def _cli(*args, cwd=None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def test_outputs_that_would_overwrite_an_input_or_each_other_are_refused(tmp_path):
    src = tmp_path / "test.csv"
    src.write_text(
        "ID,Question,Option A,Option B,Option C,Option D\nq1,題目？,甲,乙,丙,丁\n", encoding="utf-8"
    )
    before = src.read_bytes()
    for args, flags in (
        (["ingest", "--input", src, "--output", src], "--input and --output"),
        (
            ["ingest", "--input", src, "--output", tmp_path / "o.jsonl", "--rejected", tmp_path / "o.jsonl"],
            "--output and --rejected",
        ),
        (["predict", "--model", "tiny", "--input", src, "--output", src], "--input and --output"),
        (
            [
                "predict",
                "--model",
                "tiny",
                "--input",
                src,
                "--output",
                tmp_path / "s.csv",
                "--details",
                tmp_path / "s.csv",
            ],
            "--output and --details",
        ),
    ):
        r = _cli(*args)
        assert r.returncode == 2 and flags in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert src.read_bytes() == before


def test_header_only_test_file_is_an_error_not_an_empty_submission(tmp_path, tiny_dir):
    src = tmp_path / "test.csv"
    src.write_text("ID,Question,Option A,Option B,Option C,Option D\n", encoding="utf-8")
    r = _cli("predict", "--model", tiny_dir, "--input", src, "--output", tmp_path / "s.csv")
    assert r.returncode == 2 and "no questions to answer" in r.stderr and not (tmp_path / "s.csv").exists()


def test_missing_model_folder_and_undownloaded_hub_id_are_told_apart(tmp_path):
    import os

    (tmp_path / "models").mkdir()
    env_offline = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "MCQFLOW_DOWNLOAD")}
    import subprocess
    import sys

    def run(model):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mcqflow.cli",
                "predict",
                "--model",
                model,
                "--input",
                "x.csv",
                "--output",
                "s.csv",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env_offline,
        )

    (tmp_path / "x.csv").write_text("ID,Question,A,B,C,D\nq1,題目？,甲,乙,丙,丁\n", encoding="utf-8")
    folder = run("models/Qwen2.5-7B-Instruct")
    assert (
        folder.returncode == 2
        and "no such model folder" in folder.stderr
        and "hf download" not in folder.stderr
    )
    import time

    start = time.monotonic()
    hub = run("Qwen/Qwen2.5-7B-Instruct")  # no HF_HUB_OFFLINE: mcqflow itself does not go to the hub
    assert hub.returncode == 2 and "hf download Qwen/Qwen2.5-7B-Instruct" in hub.stderr
    assert "MCQFLOW_DOWNLOAD=1" in hub.stderr and len(hub.stderr.strip().splitlines()) == 1
    # the errors name the flag the user gave, not a params key they never set
    assert "--model models/Qwen2.5-7B-Instruct: no such model folder" in folder.stderr
    assert "give --model that directory" in hub.stderr and "model.base" not in folder.stderr + hub.stderr
    tiny = run("tiny")  # outside the project: says where it looked and what `tiny` means
    assert tiny.returncode == 2 and f"expected {tmp_path / 'models/tiny'}" in tiny.stderr
    assert "run from the project's root or give the folder itself" in tiny.stderr
    assert time.monotonic() - start < 30  # no minute of hub retries (the process itself takes seconds)


def test_formula_ids_are_refused_before_any_work_escaped_or_kept_raw(tmp_path, tiny_dir):
    src = tmp_path / "test.csv"
    src.write_text(
        "ID,Question,Option A,Option B,Option C,Option D\n"
        "=1+1,哪一項正確？,甲,乙,丙,丁\n@SUM(A1),哪一項正確？,甲,乙,丙,丁\n7,哪一項正確？,甲,乙,丙,丁\n",
        encoding="utf-8",
    )
    out = tmp_path / "s.csv"
    r = _cli("predict", "--model", "/nonexistent/model", "--input", src, "--output", out)
    # refused first: the missing model would have been the error had any work started
    assert r.returncode == 2 and "ID '=1+1' (and 1 more) starts with '='" in r.stderr and not out.exists()
    assert len(r.stderr.strip().splitlines()) == 1
    for mode, first in [("escape", ["'=1+1", "'@SUM(A1)", "7"]), ("raw", ["=1+1", "@SUM(A1)", "7"])]:
        r = _cli("predict", "--model", tiny_dir, "--input", src, "--output", out, "--csv-formulas", mode)
        assert r.returncode == 0, r.stderr
        with open(out, encoding="utf-8", newline="") as f:
            assert [row[0] for row in list(csv.reader(f))[1:]] == first


def test_stray_option_labels_are_removed_and_counted(tmp_path):
    src = tmp_path / "test.csv"
    src.write_text(
        "ID,Question,A,B,C,D\n"
        "1,哪一年？,1. 2020年,A. 2021年,C. 2022年,2023年\n"
        "2,哪一項？,B型血,1.5倍,（3）丙,丁\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    r = _cli("ingest", "--input", src, "--output", out)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert recs[0]["options"] == {"A": "2020年", "B": "2021年", "C": "2022年", "D": "2023年"}
    assert recs[1]["options"] == {"A": "B型血", "B": "1.5倍", "C": "丙", "D": "丁"}
    assert "option labels removed: 1 own, 3 stray" in r.stdout


def test_every_subcommand_and_option_says_what_it_is_for():
    from mcqflow.cli import build_parser

    ap = build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    described = {c.dest for c in sub._choices_actions if c.help}
    assert described == set(sub.choices)
    for name, p in sub.choices.items():
        bare = [a.option_strings or a.dest for a in p._actions if not a.help and a.dest != "help"]
        assert not bare, (name, bare)


def test_version_and_help_show_defaults_equal_to_params():
    """`--help` names each default, and predict's are the pipeline's (params.yaml `predict:`)."""
    import yaml

    from mcqflow.cli import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--version"])
    assert e.value.code == 0
    r = subprocess.run([sys.executable, "-m", "mcqflow.cli", "--version"], capture_output=True, text=True)
    assert re.fullmatch(r"mcqflow \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    predict = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["predict"]
    for cmd in ("predict", "evaluate"):
        a = build_parser().parse_args(
            [cmd, "--model", "m", "--input", "i", *(["--output", "o"] * (cmd == "predict"))]
        )
        assert (a.batch_size, a.max_new_tokens) == (predict["batch_size"], predict["max_new_tokens"]), cmd
    r = subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", "predict", "--help"], capture_output=True, text=True
    )
    text = " ".join(r.stdout.split())
    assert f"(default: {predict['batch_size']})" in text and "(default: auto)" in text
    assert "(default: None)" not in text and "detected from the text)" in text  # a default in words stays


def test_evaluate_on_an_unlabelled_file_says_so_in_one_line(tmp_path):
    rows = "".join(f"q{i},題目{i}？,甲,乙,丙,丁\n" for i in range(40))
    (tmp_path / "test.csv").write_text("ID,Question,A,B,C,D\n" + rows, encoding="utf-8")
    r = mcqflow("evaluate", "--model", "tiny", "--input", str(tmp_path / "test.csv"), cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (
        "no labelled questions to evaluate (40 rows rejected: 40 × no answer in a labelled split)" in r.stderr
    )


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_repetition_penalty_not_above_zero_is_one_line(command, tmp_path):
    out = ["--output", str(tmp_path / "s.csv")] if command == "predict" else []
    r = mcqflow(command, "--model", "tiny", "--input", str(ROOT / "data/sample/dev.csv"),
                "--repetition-penalty", "0", *out, cwd=tmp_path)  # fmt: skip
    assert (
        r.returncode == 2
        and r.stderr.strip() == "mcqflow: error: --repetition-penalty must be above 0 (1.0 = off)"
    )


def test_predict_details_cannot_be_the_answer_journal(tmp_path):
    """The journal (<output>.partial.jsonl) is removed once the outputs are written: details written there
    would be deleted with it."""
    out = tmp_path / "s.csv"
    r = mcqflow("predict", "--model", "tiny", "--input", str(ROOT / "data/sample/dev.csv"), "--output", str(out),
                "--details", f"{out}.partial.jsonl", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "--details and the answer journal are the same file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_evaluate_generate_with_no_new_tokens_is_one_line(tmp_path):
    r = mcqflow("evaluate", "--model", "tiny", "--input", str(ROOT / "data/sample/dev.csv"), "--protocol",
                "generate", "--max-new-tokens", "0", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "--max-new-tokens 1 or more" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "line, says",
    [
        ('{"text": 5}', "'text' is int, expected a string"),
        ('{"text": ["答案A"]}', "'text' is list, expected a string"),
        ('{"text": "答案A", "options": [1, 2]}', "'options' must be an object of letter -> text"),
        ('{"text": "答案A", "options": {"A": 1}}', "'options' must be an object of letter -> text"),
        ('{"text": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ],
)
def test_extract_answer_wrong_json_types_are_one_line(line, says):
    r = mcqflow("extract-answer", stdin=line + "\n")
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_mistyped_model_folder_is_one_line_before_torch_is_imported(tmp_path, command):
    """The typo is answered before the seconds of imports a model needs (`--help` does not import torch
    either)."""
    import subprocess
    import sys

    sample = ROOT / "data/sample" / ("test.csv" if command == "predict" else "dev.csv")
    extra = ["--output", str(tmp_path / "s.csv")] if command == "predict" else []
    code = (
        "import sys\nfrom mcqflow.cli import main\n"
        f"try:\n    main({[command, '--model', 'models/nosuch', '--input', str(sample), *extra]!r})\n"
        "except SystemExit as e:\n    print('rc', e.code, 'torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "rc 2 False", r.stdout + r.stderr
    assert r.stderr.strip() == (
        "mcqflow: error: --model models/nosuch: no such model folder; give an existing folder, a Hugging Face "
        "id (owner/name) or 'embedded'"
    )
    helped = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom mcqflow.cli import build_parser\nbuild_parser()\n"
         "print('torch' in sys.modules)"], capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert helped.stdout.strip() == "False", helped.stderr


@pytest.mark.parametrize(
    "env, want",
    [
        ({}, "expandable_segments:True"),
        ({"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}, "max_split_size_mb:128"),  # the user's stays
        ({"PYTORCH_ALLOC_CONF": "expandable_segments:False"}, None),  # (the newer name counts too)
    ],
)
def test_commands_run_with_expandable_segments_unless_the_allocator_is_configured(monkeypatch, env, want):
    from mcqflow import cli

    monkeypatch.setattr(os, "environ", dict(env))
    with pytest.raises(SystemExit):
        cli.main(["--help"])  # set before any command runs
    assert os.environ.get("PYTORCH_CUDA_ALLOC_CONF") == want
