"""What `mcqflow bench` runs: the shapes, the records that fill them, and the FLOP convention of its MFU."""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from mcqflow.core.errors import UserError
from mcqflow.core.schema import LETTERS, Record
from mcqflow.modeling.models import on_gpu

# MFU convention: LoRA SFT costs 4N FLOP a token (forward 2N, gradients of the activations 2N; the frozen
# weights get none), N the weights that take part in matmuls (every weight but the input embedding; the LM
# head counted); attention's own FLOPs left out. Against the dense bf16 peak of the card's datasheet.
PEAK_BF16_FLOPS = {"H100": 989.4e12, "H200": 989.4e12}


@dataclass
class Shapes:
    """What each benchmark runs: the issue's shapes by default, small ones for a CPU smoke run."""

    sft_batch: int = 16
    sft_accum: int = 2  # effective batch 32: vanilla runs 16 x 2; `whole_batch` profiles 32 x 1
    sft_tokens: int = 256
    sft_steps: int = 8
    sft_warmup: int = 3
    predict_batch: int = 64
    predict_tokens: int = 200
    predict_questions: int = 512
    predict_new_tokens: int = 48
    grpo_new_tokens: int = 256
    grpo_num_generations: int = 8
    grpo_vanilla_prompts: int = 2  # TRL's default step: 16 completions
    grpo_prompts: int = 16  # ours: 128 completions a step...
    grpo_micro_batch: int = 8  # ...trained 8 at a time
    grpo_steps: int = 3
    grpo_warmup: int = 1
    # The reasoning-length shapes: example lengths (SFT, prompt + completion) and completion lengths (GRPO,
    # forced through the end token) drawn uniformly, with a fixed seed, from what LLM-written reasoning
    # chains run to (300-900 tokens an example; less a ~160-token prompt for a completion).
    sft_ragged_min: int = 300
    sft_ragged_max: int = 900
    grpo_ragged_min: int = 140
    grpo_ragged_max: int = 740
    # GRPO's ragged micro-batch: 8 fits an 80 GB card with packed micro-batches and Liger in training (73 GiB);
    # without them only 4 does
    grpo_ragged_micro_batch: int = 8
    # Real weights (`--weights`): the policy stops where it chooses; reasoning-mode chains are capped here
    # (the real-weights experiment's grpo.max_completion_length), plain-mode answers at grpo_new_tokens.
    grpo_reasoning_new_tokens: int = 512

    def replace(self, pairs: list[str]) -> Shapes:
        """These shapes with `KEY=INT` pairs (`mcqflow bench --shape sft_batch=4`) put in."""
        known = {f.name for f in dataclasses.fields(self)}
        changes = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key not in known or not value.isdigit():
                raise UserError(
                    f"--shape {pair}: expected KEY=INTEGER with KEY one of {', '.join(sorted(known))}"
                )
            changes[key] = int(value)
        return dataclasses.replace(self, **changes)

    @classmethod
    def smoke(cls) -> Shapes:
        return cls(
            sft_batch=4, sft_accum=2, sft_tokens=160, sft_steps=4, sft_warmup=1,
            predict_batch=8, predict_tokens=140, predict_questions=16, predict_new_tokens=4,
            grpo_new_tokens=8, grpo_num_generations=4, grpo_vanilla_prompts=1, grpo_prompts=2,
            grpo_micro_batch=4, grpo_steps=2, grpo_warmup=1, sft_ragged_min=160, sft_ragged_max=240,
            grpo_ragged_min=2, grpo_ragged_max=8, grpo_ragged_micro_batch=4, grpo_reasoning_new_tokens=8,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------- data


def corpus() -> list[str]:
    from mcqflow.modeling.models import tiny_corpus

    return tiny_corpus(_seed_records())


def _seed_records() -> list[Record]:
    """Question texts to build benchmark records from: the shipped sample when present, else a fixed set."""
    sample = Path(__file__).resolve().parents[3] / "data/sample/train.csv"
    if sample.exists():
        from mcqflow.data.ingest import ingest_split

        return ingest_split(sample, "train", "zh").records
    return [
        Record(
            str(i),
            f"關於公共政策的第{i}個問題：下列哪一項說法最為準確？",
            {k: f"選項{k}{i}" for k in LETTERS},
            "A",
        )
        for i in range(8)
    ]


def make_records(
    tokenizer, n: int, tokens: int | list[int], mode: str = "plain", seed: int = 0
) -> list[Record]:
    """`n` records whose chat-formatted prompt (+ completion, for SFT) is about `tokens` tokens long (or
    `tokens[i]` for the i-th record), with gold letters spread evenly over A-D."""
    import random

    from mcqflow.core.prompts import render_prompt, sft_example

    rng = random.Random(seed)
    seeds = _seed_records()
    filler = "".join(r.question for r in seeds)
    out: list[Record] = []
    for k in range(len(seeds) * (n // len(seeds) + 2)):
        if len(out) == n:
            break
        rec = dataclasses.replace(
            seeds[k % len(seeds)], id=f"bench-{len(out)}", answer=LETTERS[len(out) % 4], reasoning=None
        )
        budget = tokens if isinstance(tokens, int) else tokens[len(out)]
        start = rng.randrange(len(filler))
        text = (filler[start:] + filler) * (4 + 4 * budget // max(len(filler), 1))
        lo, hi = 0, len(text)
        while lo < hi:  # the longest question that keeps the example within `tokens`
            mid = (lo + hi + 1) // 2
            rec.question = text[:mid]
            if _length(tokenizer, rec, mode, render_prompt, sft_example) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if lo >= 8:  # options too long for this budget leave no room: next seed question
            rec.question = text[:lo]
            out.append(rec)
    if len(out) < n:
        raise ValueError(f"benchmark: {tokens} tokens leave no room for a question")
    return out


def ragged_lengths(n: int, lo: int, hi: int, seed: int = 0) -> list[int]:
    """`n` lengths drawn uniformly from [lo, hi] (the reasoning-length shapes)."""
    import random

    rng = random.Random(seed)
    return [rng.randint(lo, hi) for _ in range(n)]


def matmul_weights(model_dir: str) -> int:
    """N of the MFU convention: every weight of the architecture but the input embedding."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    embed = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    tied = model.get_output_embeddings() is not None and model.get_output_embeddings().weight is embed
    return total if tied else total - embed.numel()  # tied: the one matrix is the LM head's too


def mfu(tokens_per_s: float, n_weights: int) -> float | None:
    """Model FLOP utilisation of LoRA SFT under the convention above, or None off a known card."""
    name = device_name()
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    return round(4 * n_weights * tokens_per_s / peak, 3) if peak else None


def sft_length(tokenizer, rec: Record) -> int:
    from mcqflow.core.prompts import render_prompt, sft_example

    return _length(tokenizer, rec, "sft", render_prompt, sft_example)


def _length(tokenizer, rec, mode, render_prompt, sft_example) -> int:
    if mode == "sft":
        ex = sft_example(rec, "plain")
        text = tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False)
    else:
        text = render_prompt(tokenizer, rec, "plain")
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def device_name() -> str:
    return torch.cuda.get_device_name() if on_gpu() else f"CPU ({platform.processor() or platform.machine()})"
