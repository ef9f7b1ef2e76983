"""bench/embedded_report.py: the real-weights table chooses GRPO variants on dev and shows test only for
the chosen one; its paired differences are mcqflow.stats' on the per-question predictions."""

import json
import subprocess
import sys

import yaml

from conftest import ROOT
from mcqflow.stats import compare, read_correct

GOLD = "ABCD" * 5  # 20 questions per split


def write_run(runs, name, grpo, answers):
    """One experiment folder as exp_run_embedded.sh leaves it; answers: model -> split -> letters."""
    run = runs / name
    (run / "predictions").mkdir(parents=True)
    (run / "metrics/predict").mkdir(parents=True)
    params = {"data": {"years": {"dev": [2019, 2020], "test": [2021, 2022]}}}
    params["grpo"] = {
        "max_steps": 8,
        "prompts_per_step": 2,
        "num_generations": 8,
        "learning_rate": 1e-5,
        **grpo,
    }
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    for model, splits in answers.items():
        metrics = {}
        for split, letters in splits.items():
            rows = [{"id": f"{split}-{i}", "answer": a, "method": "letter", "gold": g}
                    for i, (a, g) in enumerate(zip(letters, GOLD, strict=True))]  # fmt: skip
            path = run / "predictions" / f"{model}-zh-{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            k = sum(a == g for a, g in zip(letters, GOLD, strict=True))
            m = {"n": 20, "accuracy": k / 20, "accuracy_ci95_low": 0.0, "accuracy_ci95_high": 1.0,
                 "invalid_extraction_rate": 0.0, "fallbacks": 0, "letter_share": dict.fromkeys("ABCD", 0.25)}  # fmt: skip
            metrics.update(m) if split == "dev" else metrics.update(test=m)
        (run / "metrics/predict" / f"{model}-zh.json").write_text(json.dumps({"zh": metrics}))
    (run / "done").touch()
    return run


def right(n):
    """Letters with the first n of 20 right."""
    return "".join(g if i < n else ("B" if g == "A" else "A") for i, g in enumerate(GOLD))


def test_grpo_variants_are_chosen_on_dev_and_only_the_chosen_one_shows_test(tmp_path):
    runs = tmp_path / "runs"
    chain = {
        m: {"dev": right(n), "test": right(n)}
        for m, n in (("base", 5), ("sft-plain", 10), ("sft-reasoning", 11))
    }
    first = write_run(runs, "g1", {"init": "sft-reasoning", "mode": "reasoning"},
                      {**chain, "grpo": {"dev": right(12), "test": right(3)}})  # fmt: skip
    write_run(runs, "g2", {"init": "sft-reasoning", "mode": "reasoning", "learning_rate": 3e-5},
              {**chain, "grpo": {"dev": right(14), "test": right(19)}})  # fmt: skip
    plan = tmp_path / "plan.txt"
    plan.write_text("g1 -S data.source=data/gaokao\ng2 -S data.source=data/gaokao\n")
    out = tmp_path / "README.md"
    subprocess.run([sys.executable, ROOT / "bench/embedded_report.py", "table", runs, "--plan", plan, "--out", out],
                   check=True, capture_output=True)  # fmt: skip
    text = out.read_text()
    dev, test = text.split("### test")[0], text.split("### test")[1].split("### GRPO sweep")[0]
    assert "| grpo (reasoning, g2) | generate | 20 | 0.700" in dev  # 14/20 beat 12/20 on dev
    assert "| grpo (reasoning, g2) | generate | 20 | 0.950" in test and "g1" not in test
    assert "| g2 (chosen) |" in text and "| g1 |" in text
    c = compare(read_correct(first / "predictions/sft-plain-zh-dev.jsonl"),
                read_correct(first / "predictions/sft-reasoning-zh-dev.jsonl"))  # fmt: skip
    assert (
        f"{c['difference']:+.3f} [{c['difference_ci95_low']:+.3f}, {c['difference_ci95_high']:+.3f}]" in dev
    )
    assert "| base | letter | 20 | 0.250" in dev and "exam years 2021–2022" in text
    # results/ keeps the shared SFT stages' predictions once, in the first run: a later run's GRPO is still
    # compared with its start
    g2 = runs / "g2/predictions"
    vs_start = text.split("| g2 (chosen) |")[1].split("\n")[0].split(" | ")[4]
    for model in ("base", "sft-plain", "sft-reasoning"):
        for split in ("dev", "test"):
            (g2 / f"{model}-zh-{split}.jsonl").unlink()
    subprocess.run([sys.executable, ROOT / "bench/embedded_report.py", "table", runs, "--plan", plan, "--out", out],
                   check=True, capture_output=True)  # fmt: skip
    assert vs_start.startswith("+0.150, p") and f"| {vs_start} |" in out.read_text()
