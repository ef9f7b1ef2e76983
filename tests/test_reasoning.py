import pytest

from mcqflow.core.reasoning import TAGS, ChainError, build_chain, parse_chain


def test_build_then_parse():
    chain = build_chain("問 <b>", "想", ["甲", "乙 & 丙"], "中立", "無", "C")
    p = parse_chain(chain)
    assert p.tags == list(TAGS)
    assert p.texts("question") == ["問 <b>"]  # escaped on the way in, restored on the way out
    assert p.steps() == [1, 2]
    assert p.texts("output") == ["C"]


def test_malformed():
    with pytest.raises(ChainError, match="malformed XML"):
        parse_chain("<question>x</question><think>unclosed")


def test_entity_bomb_is_rejected_not_expanded():
    bomb = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<output>&lol2;</output>"
    )
    with pytest.raises(ChainError):
        parse_chain(bomb)


def test_undeclared_entity_is_an_error_not_a_lookup():
    with pytest.raises(ChainError):
        parse_chain("<output>&xxe;</output>")
