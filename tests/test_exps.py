"""mcqflow.evaluation.exps: `dvc exp show --json` as tables narrow enough to read (make compare / make significance)."""

import json

import pytest

from mcqflow.core.errors import UserError
from mcqflow.evaluation.exps import (
    accuracy_table,
    attach,
    git_records,
    params_table,
    read,
    show,
    significance_table,
)
from mcqflow.evaluation.metrics import headline

RECORDS = {}  # rev -> the records (metrics/predict/, metrics/compare/) at that commit


def _state(rev, name, lr, acc, *, test=None, skipped_en=False):
    zh = {"n": 60, "accuracy": acc, "accuracy_ci95_low": acc - 0.1, "accuracy_ci95_high": acc + 0.1,
          "invalid_extraction_rate": 0.5, "max_letter_share": 0.4, "max_letter": "C", "circular_accuracy": 0.1}  # fmt: skip
    if test:
        zh["test"] = {
            "n": 83,
            "accuracy": test,
            "accuracy_ci95_low": test - 0.1,
            "accuracy_ci95_high": test + 0.1,
        }
    records = {
        "metrics/predict/sft-plain-zh.json": {"zh": zh},
        "metrics/predict/base-zh.json": {"zh": {**zh, "accuracy": 0.25}},
        "metrics/predict/sft-plain-en.json": {"en": {"skipped": "no English rows"}},
        "metrics/compare/sft-plain-vs-base-zh.json": {
            "n": 60,
            "difference": acc - 0.25,
            "difference_ci95_low": -0.05,
            "difference_ci95_high": 0.2,
            "mcnemar_p": 0.0123,
            "only_a_correct": 3,
            "only_b_correct": 9,
            "test": {
                "difference": 0.1,
                "difference_ci95_low": 0.0,
                "difference_ci95_high": 0.2,
                "mcnemar_p": 0.5,
                "only_a_correct": 4,
                "only_b_correct": 6,
            },
        },  # fmt: skip
    }
    RECORDS[rev] = records
    # what `dvc exp show --json` carries: the DVC metrics, which are the headline only
    metrics = {
        p.replace("/predict/", "/dev/"): {"data": headline(next(iter(d.values())))}
        for p, d in records.items()
        if "/predict/" in p
    }
    params = {
        "params.yaml": {
            "data": {"sft": {"learning_rate": lr, "epochs": 3}, "data": {"source": "data/sample"}}
        }
    }
    return {
        "rev": rev,
        "name": name,
        "data": {"rev": rev, "params": params, "metrics": metrics},
        "error": None,
    }


DOC = [
    {**_state("workspace", None, 1e-3, 0.3), "experiments": None},
    {
        **_state("a" * 40, "main", 1e-3, 0.3),
        "experiments": [
            {
                "revs": [{**_state("b" * 40, "lr-low", 2e-4, 0.45, test=0.42), "experiments": None}],
                "name": "lr-low",
            },
            {"revs": [{**_state("c" * 40, None, 5e-3, 0.2), "experiments": None}], "name": None},
        ],
    },
]


def _exps():
    return attach(read(DOC), RECORDS.__getitem__)


def test_experiments_are_read_in_order_with_flat_params():
    exps = read(DOC)
    assert [e.name for e in exps] == ["workspace", "main", "lr-low", "ccccccc"]
    assert [e.rev for e in exps] == ["workspace", "a" * 40, "b" * 40, "c" * 40]
    assert exps[2].params["sft.learning_rate"] == 2e-4 and exps[2].params["data.source"] == "data/sample"


def test_accuracy_table_is_a_row_per_experiment_model_and_language_in_stage_order():
    table = accuracy_table(_exps())
    lines = table.splitlines()
    assert lines[0].startswith(
        "| experiment | model | lang | dev accuracy [95% CI] | circular | test accuracy"
    )
    rows = [line for line in lines if line.startswith("| lr-low |")]
    assert rows[0].startswith("| lr-low | base | zh | 0.250 [")  # base before sft-plain, zh before en
    assert (
        rows[1]
        == "| lr-low | sft-plain | zh | 0.450 [0.350, 0.550] | 0.100 | 0.420 [0.320, 0.520] | 0.50 | 0.40 (C) |"
    )
    assert rows[2] == "| lr-low | sft-plain | en | skipped |  |  |  |  |"  # visibly, not left out
    assert "dvclive" not in table and max(map(len, lines)) <= 120  # narrow, unlike dvc exp show's 1,491


def test_significance_table_shows_dev_and_labelled_test_comparisons():
    table = significance_table(_exps())
    assert "| lr-low | sft-plain-vs-base-zh | dev | +0.200 [-0.050, +0.200] | 0.0123 | 9 vs 3 |" in table
    assert "| lr-low | sft-plain-vs-base-zh | test | +0.100 [+0.000, +0.200] | 0.5 | 6 vs 4 |" in table


def test_params_table_names_what_each_experiment_changed_against_the_baseline():
    table = params_table(read(DOC))
    assert "| experiment (vs main) | changed params |" in table
    assert "| lr-low | sft.learning_rate=0.0002 |" in table and "| workspace | (as the baseline) |" in table


def test_show_reads_dvc_and_turns_its_failure_into_one_line(tmp_path):
    fake = tmp_path / "dvc"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'doc.json'}\n")
    fake.chmod(0o755)
    (tmp_path / "doc.json").write_text(json.dumps(DOC))
    out = show("accuracy", dvc=str(fake), load=RECORDS.__getitem__)
    assert "| lr-low | sft-plain | zh | 0.450" in out and "| lr-low | sft.learning_rate=0.0002 |" in out
    fake.write_text("#!/bin/sh\necho 'ERROR: you are not inside of a DVC repository' >&2\nexit 1\n")
    with pytest.raises(UserError, match="dvc exp show failed: ERROR: you are not inside of a DVC repository"):
        show("accuracy", dvc=str(fake), load=RECORDS.__getitem__)


def test_headline_is_seven_shared_keys_and_a_skipped_branch_is_n_zero():
    whole = {"n": 60, "accuracy": 0.3, "accuracy_ci95_low": 0.2, "accuracy_ci95_high": 0.43,
             "invalid_extraction_rate": 0.05, "fallbacks": 3, "max_letter_share": 0.4, "max_letter": "C",
             "letter_share": {"A": 0.1}, "circular_accuracy": 0.1, "rotation_accuracy": {"0": 0.3},
             "test": {"n": 83, "accuracy": 0.9}}  # fmt: skip
    assert headline(whole) == {"accuracy": 0.3, "ci95_low": 0.2, "ci95_high": 0.43, "circular": 0.1,
                               "no_answer": 0.05, "top_share": 0.4, "n": 60}  # fmt: skip
    # no circular accuracy (a generate read-out): the key is left out, not null
    assert "circular" not in headline({k: v for k, v in whole.items() if k != "circular_accuracy"})
    assert headline({"skipped": "no English rows"}) == {"n": 0}  # the test split never reaches the headline


def test_an_experiment_without_metrics_gets_no_records():
    """A queued or failed experiment's commit holds the baseline's files: they must not show as its own."""
    exps = read(DOC)
    exps[3].metrics = {}
    attach(exps, RECORDS.__getitem__)
    assert exps[3].records == {} and exps[2].records == RECORDS["b" * 40]
    assert "ccccccc" not in accuracy_table(exps)


def test_git_records_reads_the_commit_and_the_workspace_apart(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "metrics/predict").mkdir(parents=True)
    (tmp_path / "metrics/dev").mkdir()
    (tmp_path / "metrics/predict/sft-plain-zh.json").write_text('{"zh": {"accuracy": 0.3}}')
    (tmp_path / "metrics/dev/sft-plain-zh.json").write_text('{"accuracy": 0.3}')  # not a record
    git("add", ".")
    git("commit", "-qm", "one")
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / "metrics/predict/sft-plain-zh.json").write_text('{"zh": {"accuracy": 0.5}}')
    load = git_records(tmp_path)
    assert load(rev) == {"metrics/predict/sft-plain-zh.json": {"zh": {"accuracy": 0.3}}}
    assert load("workspace") == {"metrics/predict/sft-plain-zh.json": {"zh": {"accuracy": 0.5}}}
    (tmp_path / "metrics/predict/sft-plain-zh.json").write_text("{half")
    with pytest.raises(UserError, match=r"metrics/predict/sft-plain-zh.json \(at workspace\): not JSON"):
        load("workspace")
    with pytest.raises(UserError, match="git ls-tree"):
        load("f" * 40)
