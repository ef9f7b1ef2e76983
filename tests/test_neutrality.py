import pytest

from mcqflow.quality.neutrality import analyse, neutrality_score


@pytest.mark.parametrize(
    "text",
    [
        "這項政策絕對正確，反對者都是叛徒。",  # Traditional
        "这项政策绝对正确，反对者都是叛徒。",  # Simplified
        "This policy is absolutely right and its critics are traitors.",
    ],
)
def test_loaded_text_scores_low(text):
    assert neutrality_score(text) < 0.2


@pytest.mark.parametrize(
    "text",
    [
        "此政策一方面可促進發展，另一方面也引發爭議，應權衡不同立場與證據。",
        "此政策一方面可促进发展，另一方面也引发争议，应权衡不同立场与证据。",
        "On the one hand it may help; on the other hand critics point to evidence of costs.",
    ],
)
def test_balanced_text_scores_one(text):
    assert neutrality_score(text) == 1.0


def test_negation_turns_absolutist_into_hedge():
    a = analyse("這並非絕對正確。")
    assert a.absolutist == () and "絕對" in a.hedging
    assert analyse("It is not always true.").absolutist == ()


def test_normalised_by_length():
    short = "這絕對正確。"
    long = short + "本題涉及公共議題，答案依據概念的通行定義判斷。" * 10
    assert neutrality_score(long) > neutrality_score(short)


def test_longest_term_wins():
    assert analyse("毫無疑問").absolutist == ("毫無疑問",)


def test_neutral_plain_text_is_one():
    assert neutrality_score("工業革命始於十八世紀。") == 1.0
