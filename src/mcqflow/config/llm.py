"""params.yaml `llm:`: the teacher LLM that generate_reasoning and translate share."""

from __future__ import annotations

from dataclasses import dataclass

from mcqflow.config.schema import build, choose

BACKENDS = ("openai", "replay", "transformers")


@dataclass
class LLMParams:
    """params.yaml `llm:` (shared by generate_reasoning and translate)."""

    backend: str = "replay"
    model: str = "gpt-4o-mini"  # the API's model name; for `transformers`, a HF id or local directory
    base_url: str | None = None  # e.g. http://localhost:8000/v1 for vLLM; None = OpenAI
    temperature: float = 0.7
    max_tokens: int = 1500
    concurrency: int = 8  # requests in flight; for `transformers`, prompts per generate batch
    timeout: float = 120.0
    max_retries: int = 5
    max_requests: int = 2000  # budget: stop cleanly after this many paid requests in one run
    max_total_tokens: int = 5_000_000  # budget: and after this many tokens
    dtype: str = "auto"  # `transformers` backend: auto (bf16 on a GPU, fp32 on a CPU) | bfloat16 | float32

    @classmethod
    def from_params(cls, d: dict) -> LLMParams:
        p = build(cls, d, "llm")
        choose(p.backend, BACKENDS, "llm.backend")
        return p

    def sampling(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}
