import json

from mcqflow.bench import Shapes, check_targets, make_records, run, sft_length
from mcqflow.models import load_tokenizer


def test_smoke_run_measures_every_path_against_vanilla_and_writes_results(tmp_path):
    res = run("tiny", tmp_path / "results", tmp_path / "work", shapes=Shapes.smoke(), log=lambda _: None)
    rows = {(r["bench"], r["variant"]): r for r in res.rows}
    assert rows[("sft", "vanilla-qlora")]["skipped"] == "NF4 needs a CUDA GPU"  # said, not silently left out
    for key, unit in [
        (("sft", "vanilla-bf16"), "tokens_per_s"),
        (("sft", "fast-bf16"), "tokens_per_s"),
        (("predict", "vanilla-generate"), "questions_per_s"),
        (("predict", "vanilla-forward"), "questions_per_s"),
        (("predict", "fast-letter"), "questions_per_s"),
        (("grpo", "vanilla"), "completions_per_s"),
        (("grpo", "fast"), "completions_per_s"),
    ]:
        assert rows[key][unit] > 0, key
    assert (
        rows[("grpo", "fast")]["completions_per_step"]
        == 2 * rows[("grpo", "vanilla")]["completions_per_step"]
    )
    saved = list((tmp_path / "results").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["device"] == res.device
    table = saved[0].with_suffix(".md").read_text()
    assert "| grpo | fast |" in table and "x |" in table


def test_benchmark_records_fill_the_token_budget(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    recs = make_records(tok, 12, 200, "sft")
    lengths = [sft_length(tok, r) for r in recs]
    assert all(180 <= n <= 200 for n in lengths), lengths
    assert sorted({r.answer for r in recs}) == ["A", "B", "C", "D"]


def test_targets_are_checked_against_the_issue_goals():
    rows = [
        {"bench": "sft", "variant": "vanilla-qlora", "profile": "vanilla", "tokens_per_s": 5000},
        {"bench": "sft", "variant": "fast-bf16", "profile": "fast", "tokens_per_s": 12500},
        {"bench": "predict", "variant": "fast-letter", "questions_per_s": 250},
        {"bench": "grpo", "variant": "vanilla", "profile": "vanilla", "completions_per_s": 0.5},
        {"bench": "grpo", "variant": "fast", "profile": "fast", "completions_per_s": 6.0},
    ]
    met = {c["target"]: c["met"] for c in check_targets(rows)}
    assert met == {
        "sft tokens/s": False,
        "sft ratio to vanilla QLoRA": True,
        "predict letter questions/s": True,
        "grpo completions/s": True,
        "grpo ratio to vanilla TRL": True,
    }
