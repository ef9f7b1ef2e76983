"""One reading of an answer letter and of a refusal, shared by ingest, generate, the chain parser, answer
extraction and the LLM client."""

import pytest

from mcqflow.core.reasoning import parse_chain
from mcqflow.core.text import letter_of
from mcqflow.data.ingest import normalize_answer
from mcqflow.data.llm import interpret
from mcqflow.evaluation.extract import extract_answer


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("A", "A"),
        (" b ", "B"),
        ("C.", "C"),
        ("(D)", "D"),
        ("（Ａ）", "A"),
        ("ｂ", "B"),
        ("[C]", "C"),
        ("D、", "D"),
    ],
)
def test_every_reader_takes_a_letter_the_same_way(raw, want):
    assert letter_of(raw) == want
    assert normalize_answer(raw) == want
    assert parse_chain(f"<output>{raw}</output>").output_letter() == want
    assert extract_answer(raw).answer == want


@pytest.mark.parametrize("raw", ["E", "AB", "A or B", "", "答案A", None, 1, ["A"]])
def test_anything_else_is_no_letter(raw):
    assert letter_of(raw) is None


def response(text: str) -> dict:
    return {"response": {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}}


def test_one_refusal_list_for_model_answers_and_teacher_responses():
    opening = "抱歉，我無法回答這個問題。"
    assert extract_answer(opening).method == "refusal"
    assert interpret(response(opening), "k", False).error == "refused"
    # a chain that quotes such words after its opening is an answer, not a refusal
    chain = "<question>…</question><think>" + "史料" * 120 + "無法提供確切數字</think><output>A</output>"
    assert interpret(response(chain), "k", False).error is None
