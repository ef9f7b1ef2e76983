"""bench/embedded_report.py: the real-weights table chooses GRPO variants on dev and shows test only for
the chosen one; its paired differences are mcqflow.evaluation.stats' on the per-question predictions."""

import json
import subprocess
import sys

import yaml

from conftest import ROOT
from mcqflow.evaluation.stats import compare, read_correct

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


def table(tmp_path, runs, plan_text):
    plan = tmp_path / "plan.txt"
    plan.write_text(plan_text)
    out = tmp_path / "README.md"
    subprocess.run([sys.executable, ROOT / "bench/embedded_report.py", "table", runs, "--plan", plan, "--out", out],
                   check=True, capture_output=True)  # fmt: skip
    return out.read_text()


def test_an_experiment_that_changes_more_than_grpo_is_a_family_of_its_own(tmp_path):
    runs = tmp_path / "runs"
    first = write_run(runs, "g1", {"init": "sft-reasoning", "mode": "reasoning"},
                      {m: {"dev": right(n), "test": right(n)}
                       for m, n in (("base", 5), ("sft-plain", 10), ("sft-reasoning", 11), ("grpo", 9))})  # fmt: skip
    # SFT on the other half of train, then plain-mode GRPO: a better dev score than g1's GRPO must not make
    # it g1's chosen variant; its stages are compared with its own start and with g1's same stage
    rest = write_run(runs, "h1", {"init": "sft-plain", "mode": "plain"},
                     {m: {"dev": right(n), "test": right(n)}
                      for m, n in (("base", 5), ("sft-plain", 8), ("sft-reasoning", 9), ("grpo", 16))})  # fmt: skip
    text = table(tmp_path, runs, "g1 -S data.source=data/gaokao -S grpo.mode=reasoning\n"
                 "h1 -S data.source=data/gaokao -S split.sft_sees=rest -S grpo.mode=plain\n")  # fmt: skip
    main, other = text.split("## gaokao: base → sft-plain → sft-reasoning → grpo with split.sft_sees=rest")
    assert (
        "| grpo (reasoning, g1) | generate | 20 | 0.450" in main and "h1" not in main.split("## Commands")[0]
    )
    assert "| grpo (plain, h1) | letter | 20 | 0.800" in other and "g1)" not in other
    # the last column: h1's sft-plain against g1's, question by question (8 vs 10 right)
    c = compare(read_correct(first / "predictions/sft-plain-zh-dev.jsonl"),
                read_correct(rest / "predictions/sft-plain-zh-dev.jsonl"))  # fmt: skip
    row = next(r for r in other.split("### test")[0].splitlines() if r.startswith("| sft-plain |"))
    assert row.endswith(f"| {c['difference']:+.3f} [{c['difference_ci95_low']:+.3f}, "
                        f"{c['difference_ci95_high']:+.3f}], p {c['mcnemar_p']:.3g} (0 vs 2 right only here / "
                        "only there) |")  # fmt: skip
    # its GRPO against its own start: +8 of 20
    grpo = next(r for r in other.split("### test")[0].splitlines() if r.startswith("| grpo (plain, h1) |"))
    assert "| +0.400 [" in grpo and "vs sft-plain | – |" in grpo


def test_scoring_copies_the_scores_of_weights_scored_before(tmp_path):
    """An experiment that only changed predict settings holds the same models (run cache): their
    four-rotation scores are copied, not made again (here the weights are not loadable at all)."""
    from mcqflow.core.schema import Record, write_jsonl

    runs = tmp_path / "runs"
    recs = [Record(f"q{i}", "問題", dict(zip("ABCD", "甲乙丙丁", strict=True)), "A") for i in range(3)]
    for name in ("g1", "g2"):
        for split in ("dev", "test"):
            write_jsonl(runs / name / "data/validated/zh" / f"{split}.jsonl", recs)
        for model in ("sft-plain", "sft-reasoning", "grpo"):
            folder = runs / name / "models" / f"{model}-zh"
            folder.mkdir(parents=True)
            (folder / "adapter_config.json").write_text("{}")
            (folder / "adapter_model.safetensors").write_bytes(f"weights of {model}".encode())
        (runs / name / "done").touch()
    for split in ("dev", "test"):  # made before: g1's scores and the base's
        for where, label in [(runs / "_base/gaokao", "base")] + [(runs / "g1/eval", m) for m in
                                                                  ("sft-plain", "sft-reasoning", "grpo")]:  # fmt: skip
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{label}-{split}.json").write_text(json.dumps({"model": label, "split": split}))
            (where / f"{label}-{split}.jsonl").write_text(f"{label} {split}\n")
    plan = tmp_path / "plan.txt"
    plan.write_text(
        "g1 -S data.source=data/gaokao\ng2 -S data.source=data/gaokao -S predict.repetition_penalty=1.05\n"
    )
    r = subprocess.run([sys.executable, ROOT / "bench/embedded_report.py", "score", runs, "--plan", plan],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for model in ("sft-plain", "sft-reasoning", "grpo"):
        for split in ("dev", "test"):
            got = runs / "g2/eval" / f"{model}-{split}.json"
            assert json.loads(got.read_text()) == {"model": model, "split": split}
            assert got.with_suffix(".jsonl").read_text() == f"{model} {split}\n"
    assert r.stdout.count("scores copied") == 6


def test_pooled_and_two_leases_are_compared_question_by_question(tmp_path):
    chain = {"base": 5, "sft-plain": 10, "sft-reasoning": 11, "grpo": 12}
    a = write_run(tmp_path / "a", "g1", {"init": "sft-reasoning", "mode": "reasoning"},
                  {m: {"dev": right(n), "test": right(n)} for m, n in chain.items()})  # fmt: skip
    # the second lease: the same everywhere but sft-plain, right on 19 of 20 dev questions
    b = write_run(tmp_path / "b", "g1", {"init": "sft-reasoning", "mode": "reasoning"},
                  {m: {"dev": right(19 if m == "sft-plain" else n), "test": right(n)} for m, n in chain.items()})  # fmt: skip
    text = table(tmp_path, tmp_path / "a", "g1 -S data.source=data/gaokao\n")
    pooled = text.split("### dev + test pooled")[1].split("###")[0]
    # dev and test together: 40 questions, +5 of 20 on each split
    assert "| sft-plain | base | 40 | 0.250 → 0.500 | +0.250 [" in pooled and "(10 vs 0 right only" in pooled
    plan = tmp_path / "plan.txt"
    out = tmp_path / "REPRODUCE.md"
    subprocess.run([sys.executable, ROOT / "bench/embedded_report.py", "reproduce", a.parent, b.parent, "--plan", plan,
                    "--out", out], check=True, capture_output=True)  # fmt: skip
    rows = {tuple(r.split(" | ")[1:3]): r for r in out.read_text().splitlines() if r.startswith("| g1 |")}
    assert len(rows) == 8  # four stages × two splits
    assert rows[("sft-plain", "dev")].endswith("| 0.500 | 0.950 | +0.450 [" + rows[("sft-plain", "dev")].split("[")[1]
                                               .split("]")[0] + "], p 0.00391 (9 vs 0 right only here / only there) | 0.55 | **no** |")  # fmt: skip
    assert rows[("grpo", "test")].endswith("| 1.00 | yes |")
