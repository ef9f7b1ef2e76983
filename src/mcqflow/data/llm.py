"""LLM calls that are reproducible, resumable and never paid for twice.

Every request goes through a content-addressed response cache: the key is a hash of (model, messages,
sampling params); each entry keeps the model name, time, token usage and the raw response, and is written
atomically the moment its response arrives, so killing a run loses no completed response and the next run
pays only for what is missing.

Backends:
- `openai`: the official `openai` client (AsyncOpenAI) against OpenAI or any OpenAI-compatible server
  (vLLM, SGLang, Ollama) through `base_url`. Concurrency is bounded; 408/409/429 (honouring Retry-After),
  5xx, timeouts and connection failures are retried with backoff by this module, not by the client, so
  every HTTP call counts against the budget, and a timed-out call is charged what it could have cost. A
  server that never answers stops the run with one line after two tries. The key comes only from
  OPENAI_API_KEY and is never written anywhere. Entries carry a SHA-256 of their content: a damaged one is
  asked again (openai) or named (replay).
- `replay`: answers from the cache only; a miss is an error that says how many prompts are missing and how
  to fill them.
- `transformers`: no server; `llm.model` (a Hugging Face id or local directory, e.g. the base model the
  pipeline trains) is loaded here and answers with `generate`, `llm.concurrency` prompts a batch. Its
  responses are cached in the same chat.completions shape, so replay and the stages cannot tell them apart.

A response that is malformed, truncated or refused does not stop a run: it is returned with its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mcqflow.config.llm import BACKENDS, LLMParams  # noqa: F401  (importable from here too)
from mcqflow.core.errors import UserError
from mcqflow.core.text import REFUSAL

# A teacher response that opens by declining (mcqflow.core.text.REFUSAL) is refused: kept and counted, never data.
# Only its opening is read: a chain may quote such words later ("…無法提供確切數字…") and still be an answer.
_REFUSAL = re.compile(REFUSAL)
_REFUSAL_SPAN = 200


@dataclass
class Result:
    key: str
    text: str | None
    error: str | None = None  # None, or why there is no usable text: truncated, refused, http-500, timeout...
    cached: bool = False
    usage: dict = field(default_factory=dict)
    attempts: int = 0  # HTTP calls (or local generations) made for it this run, retries included
    tokens: int = 0  # what those calls were charged against llm.max_total_tokens


def cache_key(model: str, messages: list[dict], sampling: dict) -> str:
    blob = json.dumps(
        {"model": model, "messages": messages, "sampling": sampling}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def default_journal() -> Path:
    """`$MCQFLOW_LLM_JOURNAL`, else `llm-responses/` in the user's cache (shared by every run on the machine:
    the keys are content addresses, so a response is never paid for twice here)."""
    from mcqflow.core.io import user_cache_dir

    env = os.environ.get("MCQFLOW_LLM_JOURNAL")
    return Path(env) if env else user_cache_dir() / "llm-responses"


class ResponseCache:
    """One JSON file per response, under <dir>/<key[:2]>/<key>.json, written atomically.

    Every response is also written to a journal outside the repository (`default_journal()`, in the
    user's cache) before the DVC-tracked copy: `dvc exp run` checks out the committed cache/ before it
    runs, which deletes what a killed experiment had received; the journal keeps it, and `get` brings it
    back into the tracked folder instead of paying again. `journal=None` turns it off."""

    def __init__(self, directory: str | Path, journal: str | Path | None = "default"):
        self.dir = Path(directory)
        self.journal = default_journal() if journal == "default" else (Path(journal) if journal else None)

    README = (
        "LLM responses, one file per request: <key[:2]>/<key>.json, the key a SHA-256 of (model, messages,\n"
        "sampling). Each holds the model, time, token usage and the raw response, with a checksum. Written by\n"
        "mcqflow.data.llm as answers arrive; tracked by DVC (dvc push / pull share it), so nothing is paid for twice.\n"
    )

    def describe(self) -> None:
        """A README in the folder, so a reader knows what it is and DVC never finds the output empty."""
        from mcqflow.core.io import write_text_atomic

        readme = self.dir / "README.txt"
        if not readme.exists() or readme.read_text(encoding="utf-8") != self.README:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(readme, self.README)

    def path(self, key: str, root: Path | None = None) -> Path:
        return (root or self.dir) / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        entry = self._read(self.path(key), key)
        if entry is None and self.journal is not None:
            entry = self._read(self.path(key, self.journal), key)
            if entry is not None:
                self._write(self.path(key), entry)  # restored: the tracked cache is complete again
        return entry

    def put(self, key: str, entry: dict) -> None:
        """Journal, then the tracked copy. The tracked copy is written even when the journal cannot be (so a
        paid answer is never on disk nowhere); the journal's failure is then raised, after it."""
        entry = {**entry, "checksum": checksum(entry)}
        failed = None
        if self.journal is not None:
            try:
                self._write(self.path(key, self.journal), entry)
            except UserError as e:
                failed = e
        self._write(self.path(key), entry)
        if failed is not None:
            raise UserError(
                f"{failed} (this answer and every one before it are in {self.dir}; MCQFLOW_LLM_JOURNAL "
                f"names another journal folder)"
            )

    @asynccontextmanager
    async def claim(self, key: str):
        """Hold `key` against other processes using the same journal (or this cache, without one) while it is
        asked: a second run or a parallel `dvc queue` worker waiting on it then finds the answer in the cache
        instead of paying for it again. Locks are striped over 4,096 files (key[:3]) and held with flock, so a
        killed run leaves no stale claim. Without a writable folder there is no claim."""
        import fcntl

        root = self.journal if self.journal is not None else self.dir
        try:
            (root / ".claims").mkdir(parents=True, exist_ok=True)
            fd = os.open(root / ".claims" / key[:3], os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def damaged(self, key: str) -> Path | None:
        """The tracked file of `key` when it exists but is no good (bad JSON, checksum, or key)."""
        p = self.path(key)
        return p if p.exists() and self._read(p, key) is None else None

    @staticmethod
    def _read(p: Path, key: str) -> dict | None:
        """The entry, or None when it is missing or damaged: not JSON, a checksum that does not match its
        content (edited or bit-rotted), or stored under another key. Entries written before checksums
        existed carry none and are taken on their key alone."""
        if not p.exists():
            return None
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return None
        if not isinstance(entry, dict) or entry.get("key", key) != key:
            return None
        if "checksum" in entry and entry["checksum"] != checksum(entry):
            return None
        return entry

    @staticmethod
    def _write(p: Path, entry: dict) -> None:
        from mcqflow.core.io import atomic_open

        try:
            with atomic_open(p) as f:
                json.dump(entry, f, ensure_ascii=False, indent=1, sort_keys=True)
        except OSError as e:
            raise UserError(
                f"{p}: cannot write the response cache ({e.strerror or e}); every response received before "
                f"this one is on disk, so fix the folder (space, permissions) and run again to go on"
            ) from None


def checksum(entry: dict) -> str:
    """SHA-256 of an entry's content (all of it but the checksum), canonical JSON."""
    body = {k: v for k, v in entry.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def interpret(entry: dict, key: str, cached: bool) -> Result:
    """Text and failure reason from a cached or fresh raw chat.completions response."""
    usage = entry.get("usage") or {}
    try:
        choice = entry["response"]["choices"][0]
        message = choice["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError):
        return Result(key, None, "malformed-response", cached, usage)
    if message.get("refusal") or (text and _REFUSAL.search(text[:_REFUSAL_SPAN])):
        return Result(key, text, "refused", cached, usage)
    if choice.get("finish_reason") == "length":
        return Result(key, text, "truncated", cached, usage)
    if not text:
        return Result(key, None, "empty", cached, usage)
    return Result(key, text, None, cached, usage)


# Outcomes that are no answer at all: not cached (truncated and refused answers are paid for and kept).
NOT_ANSWERS = ("malformed-response", "empty")


def estimate_tokens(messages: list[dict], max_tokens: int) -> int:
    """The most a request can cost: its messages' UTF-8 bytes (a byte-level BPE token is at least one byte),
    8 tokens a message for the chat template, and max_tokens. Reserved before a request is sent."""
    prompt = sum(len(str(m.get("content", "")).encode()) + 8 for m in messages)
    return prompt + max_tokens


def charged_tokens(usage, messages: list[dict], max_tokens: int) -> tuple[int, str | None]:
    """Tokens a response counts against llm.max_total_tokens, and why the server's usage was not used as sent.

    The server's `total_tokens` when it is a whole number from 0 to the request's estimate (what it was
    reserved); a claim above that is charged the estimate, noted, since no request can cost more than its
    prompt's bytes and max_tokens (so the cap, checked against reservations, holds at any concurrency). No
    usage at all (some local servers) is charged the estimate; so is usage of any other shape (not an object,
    null, negative, not a number), with its reason."""
    estimate = estimate_tokens(messages, max_tokens)
    if usage is None or usage == {}:
        return estimate, None
    if not isinstance(usage, dict):
        return estimate, "usage-not-an-object"
    total = usage.get("total_tokens")
    if isinstance(total, float) and total.is_integer():
        total = int(total)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return estimate, "usage-unreadable"
    if total > estimate:
        return estimate, f"usage-above-bound (the server claimed {total})"
    return total, None


RETRY_STATUS = (408, 409, 429)  # and every 5xx
DEAD_AFTER = 2  # connection failures in a row after which a server that never answered counts as down


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt + 1`: 0.5, 1, 2, 4… capped at 16."""
    return min(0.5 * 2**attempt, 16.0)


def retry_after(headers) -> float | None:
    """The server's Retry-After (seconds form), capped at 60 s; None when absent or unreadable."""
    try:
        value = float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
    return min(max(value, 0.0), 60.0)


def request_counts(results: list[Result]) -> dict:
    """What a run cost: answers replayed from the cache, HTTP calls made (every attempt), tokens charged."""
    return {
        "cache_hits": sum(r.cached for r in results),
        "requests_sent": sum(r.attempts for r in results),
        "tokens": sum(r.tokens for r in results),
    }


# Outcomes that are not an answer and not a kept rejection: the prompt was not asked (budget) or failed in a
# way that asking again can cure. A stage with any of them writes its outputs and then fails, so that DVC
# does not record it as done and the next run asks these again (the answered ones come from the cache).
UNANSWERED = (
    "budget",
    "timeout",
    "connection",
    "malformed-response",
    "empty",
    "http-408",
    "http-409",
    "http-429",
)


def unanswered(results: list[Result]) -> dict[str, int]:
    """{reason: count} of the results that still need asking (UNANSWERED and every 5xx)."""
    out: dict[str, int] = {}
    for r in results:
        if r.error in UNANSWERED or (r.error or "").startswith("http-5"):
            out[r.error] = out.get(r.error, 0) + 1
    return dict(sorted(out.items()))


def check_answered(left: dict[str, int], stage: str, metrics_path: str) -> None:
    """One line and rc 2 when some prompts still need asking (`left`: `unanswered(...)`), to be called after the
    stage has written what it has."""
    if not left:
        return
    n = sum(left.values())
    why = ", ".join(f"{k} {v}" for k, v in left.items())
    hint = (
        "raise llm.max_requests or llm.max_total_tokens"
        if "budget" in left
        else "check the server (llm.base_url) and llm.timeout"
    )
    raise UserError(
        f"{stage}: {n} prompts have no answer yet ({why}); the outputs and {metrics_path} are written, but the "
        f"stage is not recorded as done: {hint} and run again (answers received are cached, not paid again)"
    )


class Budget:
    """llm.max_requests and llm.max_total_tokens. A request reserves what it can cost before it is sent and
    settles what it was charged after, so neither cap is passed at any concurrency."""

    def __init__(self, max_requests: int, max_total_tokens: int):
        self.max_requests, self.max_total_tokens = max_requests, max_total_tokens
        self.requests = self.tokens = self.reserved = 0

    def allows(self) -> bool:
        return self.requests < self.max_requests and self.tokens < self.max_total_tokens

    def reserve(self, tokens: int) -> bool:
        if self.requests >= self.max_requests or self.tokens + self.reserved + tokens > self.max_total_tokens:
            return False
        self.requests += 1
        self.reserved += tokens
        return True

    def settle(self, reserved: int, charged: int) -> None:
        self.reserved -= reserved
        self.tokens += charged


def complete_all(
    requests: list[list[dict]], params: LLMParams, cache: ResponseCache, desc: str = "llm"
) -> list[Result]:
    """One Result per list of messages, in order. Cached answers first; the rest from the backend."""
    keys = [cache_key(params.model, msgs, params.sampling()) for msgs in requests]
    results: list[Result | None] = [None] * len(requests)
    missing = []
    for i, key in enumerate(keys):
        entry = cache.get(key)
        if entry is not None:
            results[i] = interpret(entry, key, cached=True)
        else:
            missing.append(i)
    if missing and params.backend == "replay":
        bad = [d for d in (cache.damaged(keys[i]) for i in missing) if d is not None]
        if bad:
            raise UserError(
                f"{bad[0]}: damaged response cache entry (not JSON, or its checksum or key does not match its "
                f"content){f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; `dvc checkout cache/llm` "
                f"restores the committed copy, or llm.backend=openai asks again"
            )
        raise UserError(
            f"{len(missing)} of {len(requests)} prompts are not in the response cache ({cache.dir}); fill them "
            f"with llm.backend=openai (OPENAI_API_KEY in the environment, llm.base_url for a local server), "
            f"e.g. `dvc exp run -S llm.backend=openai`, with llm.backend=transformers (llm.model a local "
            f"model), or `dvc pull` a cache that has them"
        )
    if missing:
        first: dict[str, int] = {}  # one request per distinct prompt: a repeat gets the same answer
        for i in missing:
            first.setdefault(keys[i], i)
        todo = [(key, requests[i]) for key, i in first.items()]
        if params.backend == "transformers":
            fetched = _generate_locally(todo, params, cache, desc)
        else:
            fetched = asyncio.run(_fetch(todo, params, cache, desc))
        by_key = dict(zip(first, fetched, strict=True))
        for i in missing:
            r = by_key[keys[i]]
            # a repeat cost nothing: it is the first one's answer, as if cached
            results[i] = r if first[keys[i]] == i else dataclasses.replace(r, attempts=0, tokens=0)
    return results  # type: ignore[return-value]


def _cache_entry(key: str, messages: list[dict], params: LLMParams, raw: dict) -> dict:
    usage = raw.get("usage")
    return {
        "key": key,
        "model": raw.get("model", params.model),
        "created": time.time(),
        "usage": usage if isinstance(usage, dict) else {},  # any other shape stays in `response`, as sent
        "request": {"messages": messages, "sampling": params.sampling()},
        "response": raw,
    }


def _generate_locally(
    todo: list[tuple[str, list[dict]]], params: LLMParams, cache: ResponseCache, desc: str
) -> list[Result]:
    """The `transformers` backend: batched `generate` with llm.model, in batches of llm.concurrency
    prompts of similar length; each answer is cached the moment its batch ends. Sampling is seeded from
    the batch's first key, so the same missing prompts give the same answers again."""
    import torch
    from tqdm import tqdm

    from mcqflow.modeling.models import load_base_model, load_tokenizer

    tok = load_tokenizer(params.model, padding_side="left", param="llm.model")
    model = load_base_model(params.model, param="llm.model", dtype=params.dtype).eval()
    budget = Budget(params.max_requests, params.max_total_tokens)
    texts = {
        key: tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for key, messages in todo
    }
    order = sorted(range(len(todo)), key=lambda i: len(texts[todo[i][0]]))
    by_key: dict[str, Result] = {}
    bar = tqdm(total=len(todo), desc=desc, unit="req", dynamic_ncols=True)
    try:
        for start in range(0, len(order), max(params.concurrency, 1)):
            batch = [todo[i] for i in order[start : start + max(params.concurrency, 1)]]
            room = budget.max_requests - budget.requests if budget.allows() else 0
            for key, _ in batch[room:]:  # past the budget: left for the next run
                by_key[key] = Result(key, None, "budget")
            bar.update(len(batch[room:]))
            batch = batch[:room]
            if not batch:
                continue
            budget.requests += len(batch)
            enc = tok(
                [texts[k] for k, _ in batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            enc = enc.to(model.device)
            torch.manual_seed(int(batch[0][0][:15], 16))
            sample = params.temperature > 0
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=params.max_tokens,
                    do_sample=sample,
                    **({"temperature": params.temperature} if sample else {}),
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            prompt_len = enc["input_ids"].shape[1]
            for row, (key, messages) in enumerate(batch):
                ids = out[row, prompt_len:].tolist()
                ended = tok.eos_token_id in ids
                ids = (
                    ids[: ids.index(tok.eos_token_id)] if ended else [t for t in ids if t != tok.pad_token_id]
                )
                used = int(enc["attention_mask"][row].sum())
                usage = {
                    "prompt_tokens": used,
                    "completion_tokens": len(ids),
                    "total_tokens": used + len(ids),
                }
                budget.tokens += usage["total_tokens"]
                raw = {
                    "id": f"local-{key[:16]}",
                    "object": "chat.completion",
                    "model": params.model,
                    "backend": "transformers",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": tok.decode(ids, skip_special_tokens=True),
                            },
                            "finish_reason": "stop" if ended else "length",
                        }
                    ],
                    "usage": usage,
                }
                entry = _cache_entry(key, messages, params, raw)
                cache.put(key, entry)
                res = interpret(entry, key, cached=False)
                by_key[key] = dataclasses.replace(res, attempts=1, tokens=usage["total_tokens"])
            bar.update(len(batch))
            bar.set_postfix(tokens=budget.tokens, refresh=False)
    finally:
        bar.close()
    return [by_key[key] for key, _ in todo]


async def _fetch(
    todo: list[tuple[str, list[dict]]], params: LLMParams, cache: ResponseCache, desc: str
) -> list[Result]:
    import openai
    from tqdm import tqdm

    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if params.base_url is None:
            raise UserError(
                "llm.backend=openai needs OPENAI_API_KEY in the environment (or llm.base_url for a "
                "local server that needs no key)"
            )
        api_key = "unused"  # local OpenAI-compatible servers accept any key
    # max_retries=0: every HTTP call, retries included, goes through the loop below and counts against the
    # budget (the client's own retries are invisible to it: 3 requests once became 18 calls on 429s).
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=params.base_url, timeout=params.timeout, max_retries=0
    )
    budget = Budget(params.max_requests, params.max_total_tokens)
    gate = asyncio.Semaphore(params.concurrency)
    bar = tqdm(total=len(todo), desc=desc, unit="req", dynamic_ncols=True)
    state = {"answered": 0, "dead": False, "timeouts_in_row": 0, "failures_in_row": 0, "fatal": None}
    # Timeouts in a row (none answered between) after which the server counts as not answering: more than
    # one wave of requests in flight, so one slow burst does not stop a run
    stop_after = params.concurrency + 2

    def stop(why: str) -> UserError:
        state["dead"] = True
        return UserError(
            f"llm: no answer from {params.base_url or 'the OpenAI API'} ({why}"
            f"{'' if state['answered'] else ', and nothing answered this run'}); {state['answered']} responses "
            f"received this run are cached: start the server or fix llm.base_url, then run again"
        )

    async def call(key: str, messages: list[dict], spent: dict):
        """The response, or a Result saying why there is none, after up to 1 + llm.max_retries calls. Each call
        reserves what it can cost first (none is sent that could pass a cap) and is counted in `spent`."""
        cost = estimate_tokens(messages, params.max_tokens)
        for attempt in range(params.max_retries + 1):
            if state["dead"]:
                return Result(key, None, "connection")
            if not budget.reserve(cost):
                return Result(key, None, "budget")
            spent["attempts"] += 1
            try:
                # llm.timeout is a deadline from send to last byte: the client's own timeout restarts on every
                # byte, so a server trickling one a second held a request for minutes
                resp = await asyncio.wait_for(
                    client.chat.completions.create(
                        model=params.model, messages=messages, **params.sampling()
                    ),
                    timeout=params.timeout,
                )
                state["answered"] += 1
                state["timeouts_in_row"] = state["failures_in_row"] = 0
                return resp, cost
            except (openai.APITimeoutError, TimeoutError):
                # The server may finish (and bill) it anyway: it is charged what it could have cost.
                budget.settle(cost, cost)
                spent["tokens"] += cost
                error, wait = "timeout", backoff(attempt)
                state["timeouts_in_row"] += 1
                if state["timeouts_in_row"] >= stop_after:
                    raise stop(
                        f"{state['timeouts_in_row']} requests in a row ran past llm.timeout={params.timeout:g} s"
                    ) from None
            except openai.APIStatusError as e:
                budget.settle(cost, 0)  # refused before any work: nothing billed
                error = f"http-{e.status_code}"
                if e.status_code not in RETRY_STATUS and e.status_code < 500:
                    return Result(key, None, error)  # 400, 401, 404...: asking again changes nothing
                wait = retry_after(e.response.headers) or backoff(attempt)
            except openai.APIConnectionError:
                budget.settle(cost, 0)
                error, wait = "connection", backoff(attempt)
                state["failures_in_row"] += 1
                # down: failures in a row across requests (two when nothing answered yet, a wave and more once
                # the server has answered: a restart is ridden out), or this request's last try with nothing
                # answered this run (at llm.max_retries=0 a closed port once gave rc 0, every row rejected)
                limit = stop_after if state["answered"] else DEAD_AFTER
                if state["failures_in_row"] >= limit or (
                    attempt == params.max_retries and not state["answered"]
                ):
                    n = state["failures_in_row"]
                    raise stop(f"connection failed {n} time{'s' if n > 1 else ''}") from None
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError):
                budget.settle(cost, cost)  # it answered, so it may have billed
                spent["tokens"] += cost
                return Result(key, None, "malformed-response")
            if attempt < params.max_retries:
                await asyncio.sleep(wait)
        return Result(key, None, error)

    async def one(key: str, messages: list[dict]) -> Result:
        spent = {"attempts": 0, "tokens": 0}
        async with gate:
            try:
                if state["fatal"] is not None:  # the journal failed: nothing new is asked (the run stops)
                    return Result(key, None, "stopped")
                # Looked up again here, not only at the start: another run (a parallel queue worker) may have
                # paid for it meanwhile. The claim makes that run wait for this one, or this one for it.
                async with cache.claim(key):
                    entry = cache.get(key)
                    if entry is not None:
                        return interpret(entry, key, cached=True)
                    out = await call(key, messages, spent)
                    if isinstance(out, Result):
                        return dataclasses.replace(out, attempts=spent["attempts"], tokens=spent["tokens"])
                    resp, cost = out
                    raw = resp.model_dump(mode="json", warnings=False)
                    entry = _cache_entry(key, messages, params, raw)
                    tokens, usage_note = charged_tokens(raw.get("usage"), messages, params.max_tokens)
                    budget.settle(cost, tokens)
                    spent["tokens"] += tokens
                    bar.set_postfix(tokens=budget.tokens, refresh=False)
                    if usage_note:
                        entry["usage_note"] = f"{usage_note}: charged the estimate, {tokens}"
                    result = dataclasses.replace(
                        interpret(entry, key, cached=False),
                        attempts=spent["attempts"],
                        tokens=spent["tokens"],
                    )
                    if result.error in NOT_ANSWERS:
                        # an error body in a 200, or no text: a failure, never cached, so the next run asks
                        # again instead of replaying it forever
                        return result
                    try:
                        cache.put(key, entry)  # at once: a kill after this line loses nothing
                    except UserError as e:
                        if state["fatal"] is None:
                            state["fatal"] = e
                    return result
            finally:
                bar.update(1)

    try:
        results = list(await asyncio.gather(*(one(k, m) for k, m in todo)))
    finally:
        bar.close()
        await client.close()
    if state["fatal"] is not None:
        raise state["fatal"]
    return results


# ------------------------------------------------------------------------------- teacher prompts and replies


def load_prompt(path: str | Path) -> tuple[str, str]:
    """A prompt file: `### system` and `### user` sections, `{placeholders}` in str.format syntax."""
    text = Path(path).read_text(encoding="utf-8")
    parts = re.split(r"^### (system|user)\s*$", text, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=True))
    if set(sections) != {"system", "user"}:
        raise UserError(f"{path}: a prompt file needs a '### system' and a '### user' section")
    return sections["system"], sections["user"]


def messages(prompt: tuple[str, str], **fields) -> list[dict]:
    system, user = prompt
    return [{"role": "system", "content": system}, {"role": "user", "content": user.format(**fields)}]


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def json_reply(text: str) -> dict:
    """The JSON object a teacher was asked for, from its reply: code fences and any words around the
    outermost braces are dropped. Raises ValueError (json.JSONDecodeError) when there is none."""
    body = _FENCE.sub("", text.strip())
    obj = json.loads(body[body.find("{") : body.rfind("}") + 1])
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj
