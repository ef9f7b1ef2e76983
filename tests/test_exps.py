"""mcqflow.evaluation.exps: `dvc exp show --json` as tables narrow enough to read (make compare / make significance)."""

import json

import pytest

from mcqflow.core.errors import UserError
from mcqflow.evaluation.exps import accuracy_table, params_table, read, show, significance_table


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
    metrics = {
        "metrics/predict/sft-plain-zh.json": {"data": {"zh": zh}},
        "metrics/predict/base-zh.json": {"data": {"zh": {**zh, "accuracy": 0.25}}},
        "metrics/predict/sft-plain-en.json": {"data": {"en": {"skipped": "no English rows"}}},
        "metrics/compare/sft-plain-vs-base-zh.json": {
            "data": {
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
            }  # fmt: skip
        },
        "dvclive/sft-plain-zh/metrics.json": {"data": {"loss": 1.0}},
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


def test_experiments_are_read_in_order_with_flat_params():
    exps = read(DOC)
    assert [e.name for e in exps] == ["workspace", "main", "lr-low", "ccccccc"]
    assert exps[2].params["sft.learning_rate"] == 2e-4 and exps[2].params["data.source"] == "data/sample"


def test_accuracy_table_is_a_row_per_experiment_model_and_language_in_stage_order():
    table = accuracy_table(read(DOC))
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
    table = significance_table(read(DOC))
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
    out = show("accuracy", dvc=str(fake))
    assert "| lr-low | sft-plain | zh | 0.450" in out and "| lr-low | sft.learning_rate=0.0002 |" in out
    fake.write_text("#!/bin/sh\necho 'ERROR: you are not inside of a DVC repository' >&2\nexit 1\n")
    with pytest.raises(UserError, match="dvc exp show failed: ERROR: you are not inside of a DVC repository"):
        show("accuracy", dvc=str(fake))
