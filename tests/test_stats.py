import json
import random

import pytest

from mcqflow.core.errors import UserError
from mcqflow.evaluation.stats import compare, mcnemar_exact, paired_bootstrap, read_correct


def test_mcnemar_exact_on_known_tables():
    # 10 discordant pairs split 1 : 9 -> two-sided binomial tail 2 * (1 + 10) / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_paired_bootstrap_interval_contains_the_true_difference():
    """Two runs drawn with a known gap: B is right on 65% of questions, A on 50%, correlated through
    a shared difficulty. The interval must cover the true 0.15 in nearly every replicate."""
    covered = 0
    for rep in range(40):
        rng = random.Random(rep)
        a, b = [], []
        for _ in range(400):
            u = rng.random()
            a.append(u < 0.50)
            b.append(u < 0.65)
        lo, hi = paired_bootstrap(a, b, n_boot=2000, seed=rep)
        covered += lo <= 0.15 <= hi
        assert hi - lo < 0.12  # pairing makes it much narrower than two independent intervals
    assert covered >= 35


def test_identical_runs_have_a_zero_interval_and_p_one():
    a = {f"q{i}": i % 3 == 0 for i in range(30)}
    r = compare(a, dict(a), n_boot=500)
    assert r["difference"] == 0 and r["difference_ci95_low"] == 0 == r["difference_ci95_high"]
    assert r["mcnemar_p"] == 1.0


def test_different_questions_are_refused():
    with pytest.raises(UserError, match=r"different questions \(1 only in A, e.g. a; 1 only in B, e.g. b\)"):
        compare({"a": True}, {"b": True})
    with pytest.raises(UserError, match=r"different questions \(1 only in A, e.g. b\)"):
        compare({"a": True, "b": False}, {"a": True})
    # an unlabelled side (a test split) is named as such, not "0 only in B, e.g. []"
    with pytest.raises(UserError, match="run B has no labelled questions"):
        compare({"a": True}, {})


def test_compare_cli_reads_predict_details(tmp_path):
    import subprocess
    import sys

    def details(name, answers):
        p = tmp_path / name
        p.write_text(
            "".join(
                json.dumps({"id": f"q{i}", "answer": x, "gold": "A", "method": "letter-logits"}) + "\n"
                for i, x in enumerate(answers)
            )
        )
        return p

    a = details("a.jsonl", "B" * 20)
    b = details("b.jsonl", "A" * 12 + "B" * 8)
    assert read_correct(b) == {f"q{i}": i < 12 for i in range(20)}
    r = subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", "compare", str(a), str(b), "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "c.json").read_text())
    assert out["difference"] == 0.6 and out["only_b_correct"] == 12 and out["only_a_correct"] == 0
    assert out["mcnemar_p"] == pytest.approx(2 / 4096, rel=1e-5)
    assert "McNemar exact p" in r.stdout and "significant at 5%" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", "compare", str(a), str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no such predictions file" in bad.stderr and "Traceback" not in bad.stderr
    # the JSON output never overwrites an input; no resamples is one line, not a traceback
    for args, says in (
        (["--json", str(a)], "A and --json are the same file"),
        (["--json", str(b)], "B and --json are the same file"),
        (["--n-boot", "0"], "--n-boot 0: expected 1 or more resamples"),
    ):
        before = a.read_bytes(), b.read_bytes()
        r = subprocess.run([sys.executable, "-m", "mcqflow.cli", "compare", str(a), str(b), *args],
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert (a.read_bytes(), b.read_bytes()) == before
