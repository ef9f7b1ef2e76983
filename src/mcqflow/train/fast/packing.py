"""Padding-free SFT batches (the `padding_free` lever of the `fast` profile).

A batch of ragged examples (reasoning chains run 300-900 tokens) padded to its longest row spends a large
share of every matmul on padding. Padding-free, the batch's examples are laid end to end in one row (TRL's
collator with `padding_free=True`: position ids restart at each example, and the boundaries come as
`cu_seq_lens_q/k` and `max_length_q/k`), and attention must not cross from one example into the next.
`varlen_attention` does that: on a GPU through PyTorch's variable-length flash attention
(`torch.nn.attention.varlen.varlen_attn`, the same kernel family as flash-attn's varlen path, shipped with
torch, so no extra package); elsewhere one causal SDPA call per example. Same tokens, same labels, same
loss as the padded batch (tests/test_packing.py on the tiny model; bench rows on a GPU).

Registered with transformers' AttentionInterface under `ATTENTION` and set on the model for training only:
the saved model keeps its own attention implementation.
"""

from __future__ import annotations

import inspect
import logging

import torch

log = logging.getLogger(__name__)
ATTENTION = "mcqflow_varlen"


def _flash_varlen():
    """PyTorch's varlen flash attention (torch >= 2.9), or None."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def available(device_type: str) -> bool:
    """Whether padding-free training runs on this device: any CPU; a GPU needs torch's varlen kernel."""
    return device_type != "cuda" or _flash_varlen() is not None


def varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention over a packed row: query/key/value [1, heads, tokens, dim], each example attending
    causally to itself alone, its bounds from `cu_seq_lens_q`. Returns [1, tokens, heads, dim]."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1:
        raise RuntimeError(
            f"{ATTENTION} attention needs a padding-free batch (one packed row and cu_seq_lens_q); "
            "it is set for padding-free training only"
        )
    max_len = int(kwargs.get("max_length_q") or int(cu.diff().max()))
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # [tokens, heads, dim]
    groups = q.shape[1] // k.shape[1]
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    if dropout:
        raise RuntimeError(f"{ATTENTION} attention has no dropout (Qwen2's attention dropout is 0)")
    varlen = _flash_varlen() if q.is_cuda else None
    if varlen is not None:
        params = inspect.signature(varlen).parameters
        extra = {}
        if "enable_gqa" in params:
            extra["enable_gqa"] = True
        elif groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if "is_causal" in params:
            extra["is_causal"] = True
        else:
            extra["window_size"] = (-1, 0)  # causal
        cu = cu.to(device=q.device, dtype=torch.int32)
        out = varlen(q, k, v, cu, cu, max_len, max_len, scale=scale, **extra)
        return out.unsqueeze(0), None
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    bounds = cu.tolist()
    if bounds[-1] < q.shape[0]:  # padding after the last example (pad_to_multiple_of): a segment of its own
        bounds.append(q.shape[0])
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        seg = [t[a:b].transpose(0, 1) for t in (q, k, v)]  # [heads, n, dim]
        outs.append(
            torch.nn.functional.scaled_dot_product_attention(*seg, is_causal=True, scale=scale).transpose(
                0, 1
            )
        )
    return torch.cat(outs, dim=0).unsqueeze(0), None


def register() -> str:
    """Make `ATTENTION` a name transformers accepts (`model.set_attn_implementation(ATTENTION)`)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, varlen_attention)
    return ATTENTION


def collator(tokenizer, multiple: int | None = None):
    """TRL's language-modelling collator in padding-free mode (what SFTConfig(padding_free=True) would use,
    given here so that TRL still truncates examples to sft.max_length). `multiple` is SFTConfig's
    `pad_to_multiple_of` (`sft.trainer`), as TRL's own collator takes it: the packed row is padded to a
    multiple of that many tokens, each pad token a one-token segment of its own, without loss."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(
        pad_token_id=tokenizer.pad_token_id, padding_free=True, pad_to_multiple_of=multiple
    )
