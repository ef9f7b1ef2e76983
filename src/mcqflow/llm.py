"""LLM calls that are reproducible, resumable and never paid for twice.

Every request goes through a content-addressed response cache: the key is a hash of (model, messages,
sampling params); each entry keeps the model name, time, token usage and the raw response, and is written
atomically the moment its response arrives, so killing a run loses no completed response and the next run
pays only for what is missing.

Backends:
- `openai`: the official `openai` client (AsyncOpenAI) against OpenAI or any OpenAI-compatible server
  (vLLM, SGLang, Ollama) through `base_url`. Concurrency is bounded; the client's own retries handle 429
  (honouring Retry-After), 5xx and timeouts with backoff. The key comes only from OPENAI_API_KEY and is
  never written anywhere.
- `replay`: answers from the cache only; a miss is an error that says how many prompts are missing and how
  to fill them.

A response that is malformed, truncated or refused does not stop a run: it is returned with its reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mcqflow.errors import UserError

BACKENDS = ("openai", "replay")
_REFUSAL_MARKERS = (
    "I can't help",
    "I cannot help",
    "I can't assist",
    "I cannot assist",
    "無法協助",
    "无法协助",
    "無法提供",
    "无法提供",
    "抱歉，我無法",
    "抱歉，我无法",
)


@dataclass
class LLMParams:
    """params.yaml `llm:` (shared by generate_reasoning and translate)."""

    backend: str = "replay"
    model: str = "gpt-4o-mini"
    base_url: str | None = None  # e.g. http://localhost:8000/v1 for vLLM; None = OpenAI
    temperature: float = 0.7
    max_tokens: int = 1500
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 5
    max_requests: int = 2000  # budget: stop cleanly after this many paid requests in one run
    max_total_tokens: int = 5_000_000  # budget: and after this many tokens

    @classmethod
    def from_params(cls, d: dict) -> LLMParams:
        from mcqflow.config import build, choose

        p = build(cls, d, "llm")
        choose(p.backend, BACKENDS, "llm.backend")
        return p

    def sampling(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


@dataclass
class Result:
    key: str
    text: str | None
    error: str | None = None  # None, or why there is no usable text: truncated, refused, http-500, timeout...
    cached: bool = False
    usage: dict = field(default_factory=dict)


def cache_key(model: str, messages: list[dict], sampling: dict) -> str:
    blob = json.dumps(
        {"model": model, "messages": messages, "sampling": sampling}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """One JSON file per response, under <dir>/<key[:2]>/<key>.json, written atomically."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # a torn file cannot happen with atomic writes, but never trust it

    def put(self, key: str, entry: dict) -> None:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f, ensure_ascii=False, indent=1, sort_keys=True)
        os.replace(tmp, p)


def interpret(entry: dict, key: str, cached: bool) -> Result:
    """Text and failure reason from a cached or fresh raw chat.completions response."""
    usage = entry.get("usage") or {}
    try:
        choice = entry["response"]["choices"][0]
        message = choice["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError):
        return Result(key, None, "malformed-response", cached, usage)
    if message.get("refusal") or (text and any(m in text for m in _REFUSAL_MARKERS)):
        return Result(key, text, "refused", cached, usage)
    if choice.get("finish_reason") == "length":
        return Result(key, text, "truncated", cached, usage)
    if not text:
        return Result(key, None, "empty", cached, usage)
    return Result(key, text, None, cached, usage)


def request_counts(results: list[Result]) -> dict:
    """What a run cost: answers replayed from the cache, requests sent, tokens paid for."""
    return {
        "cache_hits": sum(r.cached for r in results),
        "requests_sent": sum(not r.cached and r.error != "budget" for r in results),
        "tokens": sum((r.usage or {}).get("total_tokens", 0) for r in results if not r.cached),
    }


class Budget:
    def __init__(self, max_requests: int, max_total_tokens: int):
        self.max_requests, self.max_total_tokens = max_requests, max_total_tokens
        self.requests = self.tokens = 0

    def allows(self) -> bool:
        return self.requests < self.max_requests and self.tokens < self.max_total_tokens


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
        raise UserError(
            f"{len(missing)} of {len(requests)} prompts are not in the response cache ({cache.dir}); fill them "
            f"with llm.backend=openai (OPENAI_API_KEY in the environment, llm.base_url for a local server), "
            f"e.g. `dvc exp run -S llm.backend=openai`, or `dvc pull` a cache that has them"
        )
    if missing:
        for i, r in zip(
            missing,
            asyncio.run(_fetch([(keys[i], requests[i]) for i in missing], params, cache, desc)),
            strict=True,
        ):
            results[i] = r
    return results  # type: ignore[return-value]


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
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=params.base_url, timeout=params.timeout, max_retries=params.max_retries
    )
    budget = Budget(params.max_requests, params.max_total_tokens)
    gate = asyncio.Semaphore(params.concurrency)
    bar = tqdm(total=len(todo), desc=desc, unit="req", dynamic_ncols=True)

    async def one(key: str, messages: list[dict]) -> Result:
        async with gate:
            if not budget.allows():
                return Result(key, None, "budget")
            budget.requests += 1
            try:
                resp = await client.chat.completions.create(
                    model=params.model, messages=messages, **params.sampling()
                )
            except openai.APITimeoutError:
                return Result(key, None, "timeout")
            except openai.APIStatusError as e:
                return Result(key, None, f"http-{e.status_code}")
            except openai.APIConnectionError:
                return Result(key, None, "connection")
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError):
                return Result(key, None, "malformed-response")
            finally:
                bar.update(1)
            raw = resp.model_dump(mode="json")
            usage = raw.get("usage") or {}
            budget.tokens += usage.get("total_tokens") or 0
            bar.set_postfix(tokens=budget.tokens, refresh=False)
            entry = {
                "key": key,
                "model": raw.get("model", params.model),
                "created": time.time(),
                "usage": usage,
                "request": {"messages": messages, "sampling": params.sampling()},
                "response": raw,
            }
            cache.put(key, entry)  # at once: a kill after this line loses nothing
            return interpret(entry, key, cached=False)

    try:
        return list(await asyncio.gather(*(one(k, m) for k, m in todo)))
    finally:
        bar.close()
        await client.close()
