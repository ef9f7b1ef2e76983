"""One reading of an answer letter and of a refusal, shared by ingest, generate, the chain parser, answer
extraction and the LLM client."""

import pytest

from mcqflow.core.reasoning import parse_chain
from mcqflow.core.text import letter_of, stated_letter
from mcqflow.data.ingest import normalize_answer
from mcqflow.data.llm import interpret
from mcqflow.evaluation.extract.rules import extract_answer


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


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("答案：C", "C"),
        ("(b).", "B"),
        ("最終答案是Ａ。", "A"),
        ("The answer is D", "D"),
        ("<think>想</think><reasoning>step 1: x</reasoning><output>d</output>", "D"),
        ("<think>A?</think>C", "C"),
        ("我認為應該是環境保護", None),  # prose: a model output for extraction, not a training label
        ("答案：A和B", None),
        ("<output>A", None),  # a chain cut off inside its answer
        ("我不知道", None),
    ],
)
def test_a_chat_reply_states_its_letter_or_none(reply, want):
    assert stated_letter(reply) == want
