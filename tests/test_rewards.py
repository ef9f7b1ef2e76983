import random

import pytest

from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import build_chain
from mcqflow.train.rewards import (
    build_rewards,
    correctness,
    format_reward,
    letter_format,
    neutrality,
    soft_overlong,
)

CHAIN_B = build_chain("問", "想", ["甲", "乙"], "中立", "無", "B")


def msg(text):
    return [{"role": "assistant", "content": text}]


def test_correctness_right_wrong_invalid():
    completions = ["<output>B</output>", "<output>C</output>", "我不知道", "答案：b"]
    assert correctness(completions, answer=["B", "B", "B", "B"]) == [1.0, 0.0, 0.0, 1.0]


def test_correctness_reads_conversational_completions():
    assert correctness([msg(CHAIN_B), msg("A")], answer=["B", "A"]) == [1.0, 1.0]


def test_correctness_follows_the_batch_own_gold_letters():
    """A shuffled batch: each completion is judged against its own row, never a global answer list."""
    rows = [
        ("A", "<output>A</output>"),
        ("B", "<output>B</output>"),
        ("C", "<output>C</output>"),
        ("D", "<output>D</output>"),
    ] * 3
    random.Random(0).shuffle(rows)
    gold, completions = [g for g, _ in rows], [c for _, c in rows]
    assert correctness(completions, answer=gold) == [1.0] * len(rows)
    assert correctness(completions, answer=gold[1:] + gold[:1]) != [1.0] * len(rows)


def test_correctness_uses_options_when_given():
    opts = {"A": "經濟發展", "B": "環境保護", "C": "人權", "D": "法治"}
    assert correctness(["應該是環境保護"], answer=["B"], options=[opts]) == [1.0]


def test_correctness_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        correctness(["A", "B"], answer=["A"])


def test_format_reward():
    good = CHAIN_B
    misordered = good.replace("<think>想</think>\n", "") + "\n<think>想</think>"
    two_outputs = good + "\n<output>C</output>"
    missing = good.replace("<reflection>中立</reflection>\n", "")
    malformed = good.replace("</reasoning>", "")
    assert format_reward([good, misordered, two_outputs, missing, malformed, "B"]) == [1.0, 0, 0, 0, 0, 0]


def test_letter_format():
    assert letter_format(["B", " c ", "B. 因為", "答案：B"]) == [1.0, 1.0, 0.0, 0.0]


def test_neutrality_reward_prefers_balanced_chains():
    balanced, loaded = neutrality(
        ["一方面可促進發展，另一方面也有爭議，需權衡證據。", "這絕對正確，反對者都是叛徒。"]
    )
    assert balanced == 1.0 and loaded < 0.2


def test_soft_overlong():
    f = soft_overlong(max_length=100, cache=20)
    assert f(None, completion_ids=[[0] * 50, [0] * 80, [0] * 90, [0] * 100, [0] * 130]) == [
        0.0,
        0.0,
        -0.5,
        -1.0,
        -1.0,
    ]


def test_build_rewards_from_params():
    funcs, weights = build_rewards(
        {"correctness": 1.0, "format": 0.2, "neutrality": 0, "overlong": 0.5}, 256, 64
    )
    assert [f.__name__ for f in funcs] == ["correctness", "format_reward", "overlong"]
    assert weights == [1.0, 0.2, 0.5]
    with pytest.raises(UserError, match="unknown reward"):
        build_rewards({"politeness": 1.0}, 256, 64)
