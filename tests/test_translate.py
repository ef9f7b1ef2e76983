import json
from dataclasses import replace

import pytest

from conftest import ROOT, fake_translator
from llm_server import FakeLLM
from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import build_chain, parse_chain
from mcqflow.core.schema import Record
from mcqflow.data.llm import LLMParams, ResponseCache
from mcqflow.data.translate import (
    TranslateParams,
    check_complete,
    normalise_script,
    parse_translation,
    translate,
)

PROMPT = ROOT / "prompts/translate.txt"


def rec(i, q="下列哪一項正確？", answer="B", chain=True, split="train"):
    return Record(
        id=f"{split}-{i}",
        question=q,
        options={k: f"選項{k}{i}" for k in "ABCD"},
        answer=answer,
        lang="zh",
        topic="國際關係",
        reasoning=build_chain(q, "想", ["一", "二"], "中立", "無", answer) if chain else None,
    )


@pytest.fixture
def server():
    with FakeLLM(responder=fake_translator, hang_s=2.0) as s:
        yield s


@pytest.fixture
def llm(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return LLMParams(backend="openai", model="m", base_url=server.url, timeout=1.0, max_retries=2)


def test_translates_through_the_cache_keeping_ids_letters_and_chains(server, llm, tmp_path):
    splits = {"train": [rec(1), rec(2, answer="D")], "dev": [rec(3, chain=False, split="dev")], "test": []}
    cache = ResponseCache(tmp_path / "cache")
    t = translate(splits, TranslateParams(), llm, cache, PROMPT)
    en = t.splits["train"] + t.splits["dev"]
    assert [(r.id, r.answer, r.lang) for r in en] == [
        ("train-1", "B", "en"),
        ("train-2", "D", "en"),
        ("dev-3", "B", "en"),
    ]
    assert en[0].question == "EN(下列哪一項正確？)" and en[0].options["C"] == "EN(選項C1)"
    assert parse_chain(en[1].reasoning).output_letter() == "D" and en[2].reasoning is None
    assert t.metrics["requests_sent"] == 3 and t.metrics["outcomes"] == {"ok": 3}
    # a second run (a re-run, an experiment, a fresh clone after dvc pull) replays: nothing is sent
    again = translate(splits, TranslateParams(), replace(llm, backend="replay"), cache, PROMPT)
    assert again.splits == t.splits and again.metrics["cache_hits"] == 3 and server.total == 3


def test_reference_rows_are_used_and_only_the_rest_is_sent(server, llm, tmp_path):
    zh = [rec(1), rec(2), rec(3)]
    human = replace(zh[0], lang="en", question="Which is right?", reasoning=zh[0].reasoning)
    wrong_letter = replace(zh[1], lang="en", answer="C")  # not a translation of this row: not used
    t = translate({"train": zh, "dev": [], "test": []}, TranslateParams(), llm, ResponseCache(tmp_path), PROMPT,
                  reference={"train": [human, wrong_letter]})  # fmt: skip
    assert t.splits["train"][0].question == "Which is right?"
    assert t.metrics["from_reference"] == 1 and t.metrics["requests"] == 2 and server.total == 2
    off = translate({"train": zh, "dev": [], "test": []}, TranslateParams(reference=False), llm,
                    ResponseCache(tmp_path), PROMPT, reference={"train": [human]})  # fmt: skip
    assert off.metrics["from_reference"] == 0 and off.splits["train"][0].question.startswith("EN(")


@pytest.mark.parametrize(
    "marker,reason",
    [("[truncated]", "truncated"), ("[malformed]", "malformed-response"), ("[refuse]", "refused"),
     ("[flip]", "chain-answer-changed"), ("[merge]", "options-merged"), ("[hang]", "timeout")],
)  # fmt: skip
def test_bad_answers_are_rejected_with_the_reason(llm, tmp_path, marker, reason):
    splits = {"train": [rec(1, q=f"問題{marker}"), rec(2)], "dev": [], "test": []}
    t = translate(splits, TranslateParams(), llm, ResponseCache(tmp_path), PROMPT)
    assert [r.id for r in t.splits["train"]] == ["train-2"]
    (rej,) = t.rejected["train"]
    assert (rej.reason, rej.raw["id"], rej.row) == (reason, "train-1", 1)
    assert t.metrics["outcomes"][reason] == 1 and t.metrics["rejected"]["train"] == 1


def test_a_dev_or_test_row_that_fails_stops_the_stage(llm, tmp_path):
    t = translate({"train": [], "dev": [rec(1, q="[truncated]", split="dev")], "test": [rec(2, split="test")]},
                  TranslateParams(), llm, ResponseCache(tmp_path), PROMPT)  # fmt: skip
    with pytest.raises(UserError, match="1 dev rows could not be translated"):
        check_complete(t, "data/rejected/translate")


def test_opencc_normalises_the_source_before_it_is_sent(server, llm, tmp_path):
    trad = rec(1, q="這個國家的經濟發展")
    assert normalise_script(trad, "t2s").question == "这个国家的经济发展"
    assert normalise_script(trad, "keep") is trad
    t = translate({"train": [trad], "dev": [], "test": []}, TranslateParams(opencc="t2s"), llm,
                  ResponseCache(tmp_path), PROMPT)  # fmt: skip
    (sent,) = server.counts
    assert "这个国家的经济发展" in sent and "這個" not in sent
    assert t.metrics["opencc_changed"] == 1
    with pytest.raises(UserError, match="translate.opencc='zh'"):
        TranslateParams.from_params({"opencc": "zh"})


def test_replay_without_the_answers_is_one_line(tmp_path):
    with pytest.raises(UserError, match="1 of 1 prompts are not in the response cache"):
        translate({"train": [rec(1)], "dev": [], "test": []}, TranslateParams(), LLMParams(),
                  ResponseCache(tmp_path), PROMPT)  # fmt: skip


def test_parse_translation_checks_the_shape():
    src = rec(1)
    good = fake_translator(json.dumps({"question": "q", "options": src.options, "reasoning": src.reasoning}))
    en, why = parse_translation(good, src)
    assert why is None and en.source == "translate:train-1" and en.topic == "國際關係"
    assert parse_translation("Sorry, no JSON here", src) == (None, "malformed-json")
    broken = json.dumps({"question": "q", "options": {k: k for k in "ABCD"}, "reasoning": "<think>x"})
    assert parse_translation(broken, src) == (None, "chain-broken")
