import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from llm_server import FakeLLM
from mcqflow.core.errors import UserError
from mcqflow.data.llm import LLMParams, ResponseCache, cache_key, complete_all

KEY = "sk-test-" + secrets.token_hex(20)  # made at run time: any copy found on disk was written by the run


@pytest.fixture
def server():
    with FakeLLM(hang_s=2.0) as s:
        yield s


@pytest.fixture
def params(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return LLMParams(
        backend="openai", model="test-model", base_url=server.url, timeout=1.0, max_retries=2, concurrency=4
    )


def ask(*texts):
    return [[{"role": "user", "content": t}] for t in texts]


def test_answers_are_cached_and_replayed(server, params, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    first = complete_all(ask("甲", "乙"), params, cache)
    assert [r.text for r in first] == ["echo: 甲", "echo: 乙"] and not any(r.cached for r in first)
    again = complete_all(ask("甲", "乙"), params, cache)
    assert [r.text for r in again] == ["echo: 甲", "echo: 乙"] and all(r.cached for r in again)
    assert server.total == 2  # the second run paid for nothing
    replay = complete_all(ask("甲"), LLMParams(backend="replay", model="test-model"), cache)
    assert replay[0].text == "echo: 甲"
    entry = cache.get(cache_key("test-model", ask("甲")[0], params.sampling()))
    assert entry["model"] == "test-model" and entry["usage"]["total_tokens"] == 30 and entry["created"] > 0
    assert entry["response"]["choices"][0]["message"]["content"] == "echo: 甲"


def test_cache_key_covers_model_messages_and_sampling():
    msgs = ask("x")[0]
    k = cache_key("m", msgs, {"temperature": 0.7, "max_tokens": 10})
    assert k != cache_key("m2", msgs, {"temperature": 0.7, "max_tokens": 10})
    assert k != cache_key("m", ask("y")[0], {"temperature": 0.7, "max_tokens": 10})
    assert k != cache_key("m", msgs, {"temperature": 0.2, "max_tokens": 10})


def test_429_is_retried_after_retry_after(server, params, tmp_path):
    start = time.monotonic()
    (r,) = complete_all(ask("[429] hi"), params, ResponseCache(tmp_path))
    assert r.error is None and r.text == "echo: [429] hi"
    assert server.counts["[429] hi"] == 2
    assert time.monotonic() - start >= 0.9  # waited as told


def test_500_is_retried(server, params, tmp_path):
    (r,) = complete_all(ask("[500] hi"), params, ResponseCache(tmp_path))
    assert r.error is None and server.counts["[500] hi"] == 2


def test_a_hang_past_the_timeout_is_recorded_not_fatal(server, params, tmp_path):
    params.max_retries = 1
    results = complete_all(ask("[hang] a", "fine"), params, ResponseCache(tmp_path))
    assert [r.error for r in results] == ["timeout", None]
    assert server.counts["[hang] a"] == 2  # tried, retried, gave up
    assert not (
        tmp_path / results[0].key[:2] / f"{results[0].key}.json"
    ).exists()  # not cached: retried next run


@pytest.mark.parametrize(
    ("marker", "error", "cached_on_disk"),
    [
        ("[malformed]", "malformed-response", False),
        ("[error-body]", "malformed-response", False),  # a 200 carrying an error: asked again next run
        ("[empty]", "empty", False),
        ("[truncated]", "truncated", True),  # paid for: kept, and reported
        ("[refuse]", "refused", True),
    ],
)
def test_bad_responses_are_recorded_with_a_reason(server, params, tmp_path, marker, error, cached_on_disk):
    cache = ResponseCache(tmp_path)
    (r,) = complete_all(ask(f"{marker} q"), params, cache)
    assert r.error == error
    assert (cache.get(r.key) is not None) == cached_on_disk


def test_a_response_without_usage_is_charged_an_estimate(server, params, tmp_path):
    """No usage must not switch the token cap off: each such answer counts what it could have cost (the
    prompt's bytes, 8 a message, max_tokens: 1,021 here), and none is sent that could pass the cap."""
    params.max_total_tokens, params.max_tokens, params.concurrency = 3000, 1000, 1
    results = complete_all(ask(*[f"[no-usage] q{i}" for i in range(6)]), params, ResponseCache(tmp_path))
    assert server.total == 2 and [r.error for r in results].count("budget") == 4
    assert all(r.text for r in results[:2]) and sum(r.tokens for r in results) == 2 * 1021


@pytest.mark.parametrize(
    ("marker", "note"),
    [
        ("[negative-usage]", "usage-unreadable"),
        ("[usage-int]", "usage-not-an-object"),
        ("[usage-null-total]", "usage-unreadable"),
        ("[usage-huge]", "usage-above-bound (the server claimed 1000000)"),
        ("[no-usage]", None),
        ("", None),
    ],
)
def test_usage_of_any_shape_is_charged_and_the_paid_answer_kept(server, params, tmp_path, marker, note):
    """A usage that is not an object, null, negative or past what the request could cost never crashes the run
    nor loses the answer: it is cached and charged the request's bound, with the reason kept beside it."""
    from mcqflow.data.llm import estimate_tokens

    params.max_tokens = 1000
    cache = ResponseCache(tmp_path)
    (r,) = complete_all(ask(f"{marker} q0"), params, cache)
    bound = estimate_tokens(ask(f"{marker} q0")[0], 1000)
    charged = 30 if marker == "" else bound  # the fake server's honest usage is 30
    assert r.error is None and r.text == f"echo: {marker} q0" and (r.attempts, r.tokens) == (1, charged)
    entry = cache.get(r.key)
    assert entry is not None and isinstance(entry["usage"], dict)
    assert entry.get("usage_note") == (f"{note}: charged the estimate, {bound}" if note else None)


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("marker", ["", "[usage-huge] "])
def test_the_token_cap_holds_at_any_concurrency(server, params, tmp_path, concurrency, marker):
    """Every request reserves its bound before it is sent, so the tokens charged never pass the cap, even with
    eight in flight or a server claiming a million tokens an answer."""
    params.max_tokens, params.max_total_tokens, params.concurrency = 100, 500, concurrency
    prompts = [f"{marker}q{i:02d}" for i in range(40)]
    results = complete_all(ask(*prompts), params, ResponseCache(tmp_path))
    spent = sum(r.tokens for r in results)
    assert spent <= 500 and server.total == sum(r.attempts for r in results) > 0
    assert [r.error for r in results].count("budget") == 40 - server.total


def test_the_request_cap_and_the_metrics_count_every_attempt(server, params, tmp_path):
    """Retries are HTTP calls: the metrics count them, and llm.max_requests caps them, at concurrency 8."""
    from mcqflow.data.llm import request_counts

    params.max_requests, params.concurrency = 5, 8
    results = complete_all(ask(*[f"[500] q{i}" for i in range(6)]), params, ResponseCache(tmp_path))
    assert server.total == 5 == request_counts(results)["requests_sent"]


def test_budget_stops_cleanly(server, params, tmp_path):
    params.max_requests, params.concurrency = 3, 1
    results = complete_all(ask(*[f"q{i}" for i in range(10)]), params, ResponseCache(tmp_path))
    assert server.total == 3
    assert [r.error for r in results].count("budget") == 7


def test_replay_miss_says_how_many_and_how_to_fill(tmp_path):
    with pytest.raises(UserError, match=r"2 of 2 prompts are not in the response cache .*llm.backend=openai"):
        complete_all(ask("a", "b"), LLMParams(backend="replay"), ResponseCache(tmp_path))


def test_no_key_and_no_local_server_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UserError, match="needs OPENAI_API_KEY"):
        complete_all(ask("a"), LLMParams(backend="openai"), ResponseCache(tmp_path))


def test_the_key_is_sent_but_never_written(server, params, tmp_path):
    complete_all(ask("a", "[truncated] b", "[refuse] c"), params, ResponseCache(tmp_path / "cache"))
    assert server.auth_headers[0] == f"Bearer {KEY}"
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p


KILL_SCRIPT = """
import json, sys
from mcqflow.data.llm import LLMParams, ResponseCache, complete_all
p = LLMParams(backend="openai", model="m", base_url=sys.argv[1], concurrency=2, timeout=10)
complete_all([[{"role": "user", "content": f"[slow] q{i}"}] for i in range(30)], p, ResponseCache(sys.argv[2]))
"""


def test_killed_run_resumes_paying_only_for_what_is_missing(tmp_path):
    """Kill a run mid-way; the next run sends exactly the prompts whose answers were not saved."""
    with FakeLLM(slow_s=0.15) as server:
        cache_dir = tmp_path / "cache"
        env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, server.url, str(cache_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while len(list(cache_dir.rglob("*.json"))) < 6 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        saved = len(list(cache_dir.rglob("*.json")))
        assert 6 <= saved < 30
        before = server.total
        params = LLMParams(backend="openai", model="m", base_url=server.url, concurrency=4, timeout=10)
        os.environ["OPENAI_API_KEY"] = KEY
        try:
            results = complete_all(
                ask(*[f"[slow] q{i}" for i in range(30)]), params, ResponseCache(cache_dir)
            )
        finally:
            del os.environ["OPENAI_API_KEY"]
        assert all(r.error is None for r in results)
        assert server.total - before == 30 - saved  # paid only for what was missing
        assert sum(r.cached for r in results) == saved
        assert not list(cache_dir.rglob("*.tmp"))
        assert all(json.loads(p.read_text())["key"] == p.stem for p in cache_dir.rglob("*.json"))


def local(tiny_dir, **kw):
    return LLMParams(backend="transformers", model=tiny_dir, temperature=0.0, max_tokens=6, **kw)


def test_transformers_backend_answers_in_batches_like_one_by_one(tiny_dir, tmp_path):
    """Greedy answers from the local model are the same whether a prompt shares its left-padded batch with
    longer ones or is generated alone, and every answer is cached as a chat.completions response."""
    prompts = ask("人權議題", "法律制度與言論自由的關係是什麼", "經濟")
    batched = complete_all(prompts, local(tiny_dir, concurrency=3), ResponseCache(tmp_path / "a"))
    alone = complete_all(prompts, local(tiny_dir, concurrency=1), ResponseCache(tmp_path / "b"))
    assert [r.text for r in batched] == [r.text for r in alone]
    for r, msgs in zip(batched, prompts, strict=True):
        entry = ResponseCache(tmp_path / "a").get(cache_key(tiny_dir, msgs, local(tiny_dir).sampling()))
        choice = entry["response"]["choices"][0]
        assert entry["response"]["backend"] == "transformers" and not r.cached
        assert 0 < entry["usage"]["completion_tokens"] <= 6 < entry["usage"]["total_tokens"]
        # a completion that used all 6 tokens without ending is truncated; one that ended is not
        assert (choice["finish_reason"] == "length") == (r.error == "truncated")


def test_transformers_backend_keeps_the_budget_and_resumes_from_the_cache(tiny_dir, tmp_path, monkeypatch):
    import mcqflow.modeling.models

    cache = ResponseCache(tmp_path)
    prompts = ask("甲", "乙乙", "丙丙丙")
    first = complete_all(prompts, local(tiny_dir, concurrency=2, max_requests=2), cache)
    assert [r.error == "budget" for r in first].count(True) == 1
    second = complete_all(prompts, local(tiny_dir, concurrency=2), cache)
    assert sum(r.cached for r in second) == 2 and [r.text for r in second if r.cached] == [
        r.text for r in first if r.error != "budget"
    ]

    def no_model(*a, **k):
        raise AssertionError("a full cache loads no model")

    monkeypatch.setattr(mcqflow.modeling.models, "load_base_model", no_model)
    third = complete_all(prompts, local(tiny_dir), cache)
    assert all(r.cached for r in third) and [r.text for r in third] == [r.text for r in second]
    replay = complete_all(
        prompts, LLMParams(backend="replay", model=tiny_dir, temperature=0.0, max_tokens=6), cache
    )
    assert [r.text for r in replay] == [r.text for r in second]


def test_transformers_backend_without_the_model_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        UserError, match=r"llm.model 'no-such/model': not available.*set llm.model to that directory"
    ):
        complete_all(
            ask("a"), LLMParams(backend="transformers", model="no-such/model"), ResponseCache(tmp_path)
        )


def test_retries_count_against_the_request_budget(server, params, tmp_path):
    """The budget is a ceiling on HTTP calls: a 429 and its retry are two of them."""
    params.max_requests, params.concurrency = 3, 1
    results = complete_all(ask("[429] a", "[429] b", "c"), params, ResponseCache(tmp_path))
    assert server.total == 3  # a: 429 + answer; b: 429, then the budget is spent
    assert [r.error for r in results] == [None, "budget", "budget"]


def test_a_timed_out_call_is_charged_what_it_could_have_cost(server, params, tmp_path):
    """Charged its bound (8 + 8 + 950 = 966 tokens): the next request's 962 would pass the cap of 1,000."""
    params.max_retries, params.concurrency, params.max_tokens, params.max_total_tokens = 0, 1, 950, 1000
    results = complete_all(ask("[hang] a", "fine"), params, ResponseCache(tmp_path))
    assert [r.error for r in results] == ["timeout", "budget"] and server.counts["fine"] == 0
    assert [(r.attempts, r.tokens) for r in results] == [(1, 966), (0, 0)]


def test_a_dead_server_fails_fast_with_one_line(params, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    params.base_url, params.max_retries = f"http://127.0.0.1:{port}/v1", 5
    start = time.monotonic()
    with pytest.raises(UserError, match="no answer from http://127.0.0.1.*connection failed 2 times"):
        complete_all(ask(*[f"q{i}" for i in range(20)]), params, ResponseCache(tmp_path))
    assert time.monotonic() - start < 5


def test_a_damaged_entry_is_asked_again_or_named(server, params, tmp_path):
    cache = ResponseCache(tmp_path / "cache", journal=None)
    (first,) = complete_all(ask("甲"), params, cache)
    path = cache.path(first.key)
    entry = json.loads(path.read_text(encoding="utf-8"))
    assert entry["checksum"]
    path.write_text(path.read_text(encoding="utf-8").replace("echo: 甲", "echo: 乙"), encoding="utf-8")
    replay = LLMParams(backend="replay", model="test-model")
    with pytest.raises(UserError, match=f"{path}: damaged response cache entry"):
        complete_all(ask("甲"), replay, cache)
    (again,) = complete_all(ask("甲"), params, cache)  # openai: the damaged entry is paid for again
    assert again.text == "echo: 甲" and not again.cached and server.counts["甲"] == 2
    assert complete_all(ask("甲"), replay, cache)[0].text == "echo: 甲"


def test_a_cache_write_that_fails_stops_the_run_and_keeps_the_journal(server, params, tmp_path):
    journal = tmp_path / "journal"
    cache = ResponseCache(tmp_path / "cache", journal=journal)
    key = cache_key(params.model, ask("甲")[0], params.sampling())
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / key[:2]).write_text("not a folder")  # the entry's folder cannot be made
    with pytest.raises(UserError, match="cannot write the response cache"):
        complete_all(ask("甲"), params, cache)
    assert (journal / key[:2] / f"{key}.json").exists()  # paid for and kept
    (tmp_path / "cache" / key[:2]).unlink()
    (r,) = complete_all(ask("甲"), params, cache)
    assert r.cached and server.counts["甲"] == 1  # restored from the journal, not paid again


class StuckServer:
    """A loopback server that accepts and then never finishes an answer: `silent` sends nothing, `trickle`
    sends a byte a second (each byte restarts an idle timeout). Bounded: daemon threads, closed on exit."""

    def __init__(self, mode: str):
        import socket
        import threading

        self.mode, self.accepted, self.closing = mode, 0, threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading

        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        with conn:
            conn.recv(65536)
            for i in range(60):
                if self.closing.wait(1.0):
                    return
                if self.mode == "trickle":
                    try:
                        conn.sendall(head[i : i + 1] if i < len(head) else b" ")
                    except OSError:
                        return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.sock.close()


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_a_server_that_never_finishes_stops_the_run_within_about_twice_the_timeout(params, tmp_path, mode):
    """llm.timeout is a deadline from send to last byte, and requests timing out in a row (more than one
    wave in flight) stop the run with one line; before, every row was rejected as "timeout" with rc 0,
    and a byte a second held each request for 40 s at timeout=2."""
    with StuckServer(mode) as stuck:
        params.base_url, params.timeout, params.max_retries, params.concurrency = stuck.url, 1.0, 5, 4
        start = time.monotonic()
        with pytest.raises(UserError, match=r"no answer from .*6 requests in a row ran past llm.timeout=1 s"):
            complete_all(ask(*[f"q{i}" for i in range(40)]), params, ResponseCache(tmp_path))
        took = time.monotonic() - start
    assert took < 2 * params.timeout + 2, took  # two waves and a backoff
    assert stuck.accepted <= 2 * params.concurrency


def test_a_closed_port_at_no_retries_is_one_line_not_rc_0(params, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params.base_url, params.max_retries, params.concurrency = f"http://127.0.0.1:{port}/v1", 0, 1
    with pytest.raises(UserError, match="connection failed 1 time, and nothing answered this run"):
        complete_all(ask("q"), params, ResponseCache(tmp_path))


def test_two_runs_at_once_pay_for_each_prompt_once(tmp_path, monkeypatch):
    """Two runs over the same prompts at the same time (two `dvc queue` workers: their own tracked caches, one
    journal) look each answer up right before asking, under a claim, so the server sees each prompt once."""
    import threading

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeLLM(slow_s=0.2) as server:
        params = LLMParams(backend="openai", model="m", base_url=server.url, concurrency=4, timeout=5.0)
        prompts = ask(*[f"[slow] p{i}" for i in range(10)])
        out: dict[str, list] = {}

        def run(name):
            out[name] = complete_all(prompts, params, ResponseCache(tmp_path / name, journal=tmp_path / "j"))

        threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert server.total == 10 and all(server.counts[p[0]["content"]] == 1 for p in prompts)
        assert sum(r.attempts for rs in out.values() for r in rs) == 10
        assert (
            [r.text for r in out["a"]]
            == [r.text for r in out["b"]]
            == [f"echo: {p[0]['content']}" for p in prompts]
        )


def test_a_prompt_repeated_in_one_run_is_asked_once(server, params, tmp_path):
    results = complete_all(ask("same", "other", "same"), params, ResponseCache(tmp_path))
    assert server.total == 2 and [r.text for r in results] == ["echo: same", "echo: other", "echo: same"]
    assert [r.attempts for r in results] == [1, 1, 0]


def test_a_journal_that_cannot_be_written_keeps_the_tracked_copy_and_stops(server, params, tmp_path):
    """The journal fails first (a file where its folder should be): the paid answer still reaches the tracked
    cache, nothing new is asked, and the run stops with one line naming both places."""
    (tmp_path / "journal").write_text("not a folder")
    cache = ResponseCache(tmp_path / "cache", journal=tmp_path / "journal")
    params.concurrency = 1
    with pytest.raises(UserError, match=r"journal.*cannot write.*are in .*cache") as e:
        complete_all(ask("a", "b", "c"), params, cache)
    assert "\n" not in str(e.value)
    kept = list((tmp_path / "cache").rglob("*.json"))
    assert server.total == len(kept) == 1
    assert (
        ResponseCache._read(kept[0], kept[0].stem)["response"]["choices"][0]["message"]["content"]
        == "echo: a"
    )


def test_the_cache_folder_says_what_it_is(tmp_path):
    """A README beside the entries (DVC never finds the output empty); written once, replaced only if changed."""
    cache = ResponseCache(tmp_path / "c")
    cache.describe()
    readme = tmp_path / "c" / "README.txt"
    first = readme.stat().st_mtime_ns
    cache.describe()
    assert readme.stat().st_mtime_ns == first and "<key[:2]>/<key>.json" in readme.read_text(encoding="utf-8")
    readme.write_text("edited", encoding="utf-8")
    cache.describe()
    assert readme.read_text(encoding="utf-8") == ResponseCache.README
