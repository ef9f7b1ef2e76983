import json
import re
import secrets
from collections import Counter

import pytest

from conftest import ROOT, dvc_in, make_clone, sample_records
from llm_server import FakeLLM
from mcqflow.core.errors import UserError
from mcqflow.core.reasoning import build_chain
from mcqflow.data.generate import (
    Cell,
    GenerateParams,
    check_chain,
    generate,
    grid,
    load_prompt,
    parse_new_question,
)
from mcqflow.data.llm import LLMParams, ResponseCache

KEY = "sk-test-" + secrets.token_hex(20)  # made at run time: any copy found on disk was written by the run


def responder(text: str) -> str:
    """What a good LLM would answer to our three prompts (the gold letter is in the prompt)."""
    if text.startswith("Translate the values"):
        from conftest import fake_translator

        return fake_translator(text)
    if m := re.search(r"正確答案必須是選項([A-D])", text):
        gold = m.group(1)
        cell = "-".join(re.search(rf"{k}：(\S+)", text).group(1) for k in ("主題", "難度", "題型"))
        opts = {k: f"{cell} 的選項{k}內容" for k in "ABCD"}
        chain = build_chain(f"關於{cell}的問題", "考察概念", ["讀題", "比較選項"], "兼顧不同立場", "無", gold)
        return (
            "```json\n"
            + json.dumps(
                {"question": f"關於{cell}的問題？", "options": opts, "answer": gold, "reasoning": chain},
                ensure_ascii=False,
            )
            + "\n```"
        )
    gold = re.search(r"正確答案是選項([A-D])", text).group(1)
    return "好的：\n" + build_chain("題目", "想", ["一", "二"], "中立", "無", gold)


def test_grid_is_675_for_3_per_cell_and_balanced():
    cells = grid(GenerateParams(per_cell=3))
    assert len(cells) == 15 * 3 * 5 * 3 == 675
    assert len({c.id for c in cells}) == 675
    counts = Counter(c.gold for c in cells)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_prompt_files_load_and_fill():
    for name in ("reasoning_chain.txt", "new_question.txt"):
        system, user = load_prompt(ROOT / "prompts" / name)
        assert system and "{" in user
    _, user = load_prompt(ROOT / "prompts/new_question.txt")
    filled = user.format(topic="人權議題", difficulty="基礎", qtype="事實性", gold="C")
    assert "正確答案必須是選項C" in filled and '"answer": "C"' in filled


def test_prompt_file_without_sections(tmp_path):
    (tmp_path / "p.txt").write_text("just text")
    with pytest.raises(UserError, match="needs a '### system' and a '### user' section"):
        load_prompt(tmp_path / "p.txt")


CELL = Cell("人權議題", "基礎", "事實性", 0, "B")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (responder("正確答案必須是選項B 主題：人權議題 難度：基礎 題型：事實性"), None),
        (
            '{"question": "q", "options": {"A": 1, "B": 2, "C": 3, "D": 4}, "answer": "A", "reasoning": "x"}',
            "answer-not-as-asked",
        ),
        ("not json at all", "malformed-json"),
        ('{"question": "q", "options": {"A": "1"}, "answer": "B", "reasoning": "x"}', "malformed-json"),
        (
            '{"question": "q", "options": {"A": "1", "B": "2", "C": "3", "D": "4"}, "answer": "B", "reasoning": "<output>B"}',
            "malformed-xml",
        ),
    ],
)
def test_parse_new_question(text, reason):
    rec, why = parse_new_question(text, CELL)
    assert why == reason
    if reason is None:
        assert rec.answer == "B" and rec.topic == "人權議題" and rec.id == CELL.id


def test_check_chain():
    assert check_chain(build_chain("q", "t", ["a"], "r", "a", "C"), "C") is None
    assert check_chain(build_chain("q", "t", ["a"], "r", "a", "C"), "D") == "output-mismatch"
    assert check_chain(None, "A") == "no-chain"


def test_generate_against_a_server_then_replay(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    records = sample_records("train")[:10]
    for r in records[:4]:
        r.reasoning = None  # four questions without a chain
    with FakeLLM(responder=responder) as server:
        llm = LLMParams(backend="openai", model="m", base_url=server.url, concurrency=8)
        p = GenerateParams(per_cell=1, topics=["人權議題", "法律制度"])
        first = generate(records, p, llm, ResponseCache(tmp_path), ROOT / "prompts")
        assert server.total == 4 + 2 * 3 * 5
        assert len(first.records) == 10 + 30 and not first.rejected
        assert all(r.reasoning for r in first.records)
        assert first.metrics["outcomes"] == {"ok": 34} and first.metrics["requests_sent"] == 34
        replay = generate(
            records, p, LLMParams(backend="replay", model="m"), ResponseCache(tmp_path), ROOT / "prompts"
        )
        assert server.total == 34 and replay.metrics["cache_hits"] == 34
        assert [r.to_json() for r in replay.records] == [r.to_json() for r in first.records]


@pytest.mark.slow
def test_exp_run_generates_675_questions_resumably_and_keeps_the_key_out(tmp_path):
    root, env = make_clone(tmp_path / "clone")
    with FakeLLM(responder=responder) as server:
        exp = [
            "exp",
            "run",
            "-S",
            "generate.per_cell=3",
            "-S",
            "llm.backend=openai",
            "-S",
            f"llm.base_url={server.url}",
            "-S",
            "llm.max_requests=400",
            "generate_reasoning",
        ]
        env = {**env, "OPENAI_API_KEY": KEY}
        import subprocess
        import sys

        # the budget stops this run at 400 requests: the stage writes what it has, then fails with one line,
        # so DVC does not record it as done and the next run asks the 275 left
        r = subprocess.run(
            [sys.executable, "-m", "dvc", *exp], cwd=root, env=env, capture_output=True, text=True
        )
        assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr
        assert "generate: 275 prompts have no answer yet (budget 275)" in r.stdout + r.stderr
        m = json.loads((root / "metrics/generate.json").read_text())
        assert (
            m["requests_sent"] == 400
            and m["outcomes"]["budget"] == 275
            and m["unanswered"] == {"budget": 275}
        )
        dvc_in(root, env, *exp)  # the same command again: the stage was not recorded as done, so it runs
        m = json.loads((root / "metrics/generate.json").read_text())
        assert server.total == 675  # the second run paid only for the 275 missing
        assert m["questions_generated"] == 675 and m["cache_hits"] == 400
        train = [json.loads(x) for x in (root / "data/generated/zh/train.jsonl").read_text().splitlines()]
        assert len(train) == 180 + 675
        assert Counter(r["answer"] for r in train[180:]) == {"A": 169, "B": 169, "C": 169, "D": 168}
        # translate: the sample's rows come from the English reference, the 675 new ones from the server
        dvc_in(root, env, *exp[:-2], "llm.max_requests=2000", "translate")
        t = json.loads((root / "metrics/translate.json").read_text())
        assert (t["from_reference"], t["requests_sent"], t["outcomes"]) == (302, 675, {"ok": 675})
        en = [json.loads(x) for x in (root / "data/translated/en/train.jsonl").read_text().splitlines()]
        assert [r["id"] for r in en] == [r["id"] for r in train] and server.total == 2 * 675
        assert [r["answer"] for r in en] == [r["answer"] for r in train]
        # the data stages' records travel with each experiment: plain outputs committed at its commit
        from mcqflow.evaluation.exps import read

        def at(rev, path):
            shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
            return json.loads(shown.stdout or "{}")

        runs = read(json.loads(dvc_in(root, env, "exp", "show", "--json")))[2:]  # after workspace, baseline
        kept = [(at(e.rev, "metrics/generate.json"), at(e.rev, "metrics/translate.json")) for e in runs]
        assert any(g.get("questions_generated") == 675 and t.get("from_reference") == 302 for g, t in kept)
    leaked = [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []


def test_generate_with_a_local_model_records_what_it_cannot_use(tiny_dir, tmp_path):
    """The transformers backend feeds the same stage logic: an untrained model's answers are not chains, so
    each question stays without one, its failed chain is recorded with the reason, and the next run replays
    them."""
    records = sample_records("train")[:3]
    for r in records:
        r.reasoning = None
    llm = LLMParams(backend="transformers", model=tiny_dir, temperature=0.0, max_tokens=8, concurrency=3)
    p = GenerateParams(per_cell=0)
    first = generate(records, p, llm, ResponseCache(tmp_path), ROOT / "prompts")
    assert [r.id for r in first.records] == [r.id for r in records] and not any(
        r.reasoning for r in first.records
    )
    assert [(x.source, x.raw["id"]) for x in first.rejected] == [("generate:chain", r.id) for r in records]
    assert sum(first.metrics["outcomes"].values()) == 3
    assert first.metrics["requests_sent"] == 3 and first.metrics["cache_hits"] == 0
    assert "ok" not in first.metrics["outcomes"]
    again = generate(records, p, llm, ResponseCache(tmp_path), ROOT / "prompts")
    assert again.metrics["cache_hits"] == 3 and again.metrics["requests_sent"] == 0


@pytest.mark.slow
def test_a_killed_exp_run_loses_no_paid_response(tmp_path):
    """`dvc exp run` checks out the committed cache/llm before it runs, which used to delete what a
    SIGKILLed experiment had received (paid again on the re-run); the journal outside the repository keeps
    it. Only requests in flight at the kill (at most llm.concurrency) may be paid twice."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, env = make_clone(tmp_path / "clone")
    env = {**env, "OPENAI_API_KEY": KEY}
    with FakeLLM(responder=responder) as server:
        exp = ["exp", "run", "-S", "generate.per_cell=3", "-S", "llm.backend=openai"]
        exp += ["-S", f"llm.base_url={server.url}", "-S", "llm.concurrency=8", "generate_reasoning"]
        p = subprocess.Popen(
            [sys.executable, "-m", "dvc", *exp],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 600
        while server.total < 100 and p.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        paid = server.total
        assert 100 <= paid < 675, "the kill must land mid-run"
        dvc_in(root, env, *exp)
        m = json.loads((root / "metrics/generate.json").read_text())
        assert m["questions_generated"] == 675
        assert server.total - 675 <= 8, f"{server.total - 675} responses paid twice"
        assert m["cache_hits"] >= paid - 8


@pytest.mark.slow
def test_two_queued_experiments_pay_for_each_prompt_once(tmp_path):
    """`dvc queue start -j 2` runs two experiments over the same prompts at once, each in its own workspace
    (its own tracked cache) but with one journal in the user cache: each answer is looked up right before it
    is asked, so the server sees every prompt once (the fault run saw 10 prompts asked 20 times)."""
    import subprocess
    import sys
    import time

    root, env = make_clone(tmp_path / "clone")
    env = {**env, "OPENAI_API_KEY": KEY, "MCQFLOW_CACHE": str(tmp_path / "user-cache")}
    with FakeLLM(responder=responder, slow_s=0.05) as server:
        sets = ["-S", "generate.per_cell=1", "-S", "llm.backend=openai", "-S", f"llm.base_url={server.url}"]
        sets += ["-S", "llm.concurrency=2"]
        for name, lr in (("q1", "0.001"), ("q2", "0.002")):  # the SFT change leaves generate's prompts alike
            dvc_in(root, env, "exp", "run", "--queue", "-n", name, *sets, "-S", f"sft.learning_rate={lr}",
                   "generate_reasoning")  # fmt: skip
        dvc_in(root, env, "queue", "start", "-j", "2")
        deadline = time.time() + 600
        while time.time() < deadline:
            status = subprocess.run(
                [sys.executable, "-m", "dvc", "queue", "status"],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            if status.count("Success") + status.count("Failed") == 2:
                break
            time.sleep(2)
        dvc_in(root, env, "queue", "stop", "--kill")
        assert status.count("Success") == 2, status
        assert sum(server.counts.values()) == len(server.counts) == 225, server.counts.most_common(3)
        # both ran the stage (neither was restored from DVC's run cache): between them they sent 225 requests
        # and took the rest from each other's answers in the journal
        from mcqflow.evaluation.exps import read

        shown = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "show", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        shown = read(json.loads(shown.stdout))
        # metrics/generate.json is a plain output in git (not a DVC metric): read at each experiment's commit
        gen = {
            e.name: json.loads(
                subprocess.run(["git", "show", f"{e.rev}:metrics/generate.json"], cwd=root, env=env,
                               capture_output=True, text=True, check=True).stdout
            )
            for e in shown
            if e.name in ("q1", "q2")
        }  # fmt: skip
        assert set(gen) == {"q1", "q2"} and all(g["questions_generated"] == 225 for g in gen.values())
        assert sum(g["requests_sent"] for g in gen.values()) == 225, gen
    leaked = [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []
