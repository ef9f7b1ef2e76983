"""Padding-free batches: SFT's (the `padding_free` lever of the `fast` profile) and GRPO's (`packed_grpo`).

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

GRPO's micro-batches come from TRL already padded (prompts on the left, completions on the right, to the
step's longest): `pack_rows` lays each row's real tokens end to end and `unpack_rows` puts the per-token
values the model returns back in TRL's padded layout, so TRL's loss runs unchanged. `pack_groups` packs a
micro-batch whose rows share prompts (a GRPO group's completions) with each prompt once (`shared_prompts`).
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager

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


_expansion: list[tuple[torch.Tensor, torch.Tensor] | None] = [None]  # see `expanded`


@contextmanager
def expanded(expand: torch.Tensor, back: torch.Tensor):
    """Attention inside this block runs on a packed row whose prompts are shared (`pack_groups`): queries,
    keys and values are laid out again as one segment a completion (its group's shared tokens, then its own:
    `expand`, indices into the packed row), attention runs over those segments, and each packed token takes
    its output from its place in them (`back`; a shared token from its first copy)."""
    _expansion[0] = (expand, back)
    try:
        yield
    finally:
        _expansion[0] = None


def varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention over a packed row: query/key/value [1, heads, tokens, dim], each example attending
    causally to itself alone, its bounds from `cu_seq_lens_q`. Returns [1, tokens, heads, dim]. Inside
    `expanded`, the bounds are those of the expanded segments."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1:
        raise RuntimeError(
            f"{ATTENTION} attention needs a padding-free batch (one packed row and cu_seq_lens_q); "
            "it is set for padding-free training only"
        )
    max_len = int(kwargs.get("max_length_q") or int(cu.diff().max()))
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # [tokens, heads, dim]
    if _expansion[0] is not None:
        expand, back = _expansion[0]
        out = _segments(*(t.index_select(0, expand) for t in (q, k, v)), cu, max_len, scaling, dropout)
        return out.index_select(0, back).unsqueeze(0), None
    return _segments(q, k, v, cu, max_len, scaling, dropout).unsqueeze(0), None


def _segments(q, k, v, cu, max_len: int, scaling, dropout):
    """Causal attention within each segment of q/k/v [tokens, heads, dim] bounded by `cu`: [tokens, heads,
    dim]."""
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
        return varlen(q, k, v, cu, cu, max_len, max_len, scale=scale, **extra)
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
    return torch.cat(outs, dim=0)


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


def pack_rows(input_ids, attention_mask, logits_to_keep: int, lengths: torch.Tensor | None = None) -> dict:
    """A padded GRPO micro-batch (input_ids/attention_mask [rows, width], the last `logits_to_keep` columns
    the completions) as one packed row: `input_ids`, `labels` (the completion tokens; -100 elsewhere, so a
    row's first token is never scored from the row before it), `position_ids` restarting at 0 in each row,
    and the bounds varlen attention reads (`cu_seq_lens_q/k`, `max_length_q/k`). Each row's real tokens must
    be contiguous, as TRL's are (prompt padded on the left, completion on the right). `index` says where
    each packed token sits in the flattened micro-batch, `first` which packed tokens begin a row: what
    `unpack_rows` needs.

    `lengths` ([rows, 2] on the host): each row's real prompt and completion tokens, as the masks say. With
    them the packing is worked out on the host and copied over, so the host never waits for the GPU (which
    would let the GPU run dry while the host then queues the forward); without them they are read from
    `attention_mask`, one wait."""
    rows, width = input_ids.shape
    device = input_ids.device
    prompt_width = width - logits_to_keep
    if lengths is None:
        mask = attention_mask.long()
        lengths = torch.stack([mask[:, :prompt_width].sum(1), mask[:, prompt_width:].sum(1)], 1)
    lengths = lengths.to("cpu", torch.long)
    sizes = lengths.sum(1)
    starts = torch.cumsum(sizes, 0) - sizes
    row = torch.repeat_interleave(torch.arange(rows), sizes)
    offset = torch.arange(int(sizes.sum())) - starts[row]  # each token's place in its row
    col = (prompt_width - lengths[:, 0])[row] + offset
    first = torch.zeros(len(row), dtype=torch.bool)
    first[starts[sizes > 0]] = True
    host = {"index": row * width + col, "scored": col >= prompt_width, "position": offset, "first": first}
    host["cu"] = torch.nn.functional.pad(torch.cumsum(sizes, 0), (1, 0)).to(torch.int32)
    dev = _to_device(host, device)
    index, scored, positions, first, cu = (dev[k] for k in ("index", "scored", "position", "first", "cu"))
    longest = int(sizes.max()) if rows else 0
    ids = input_ids.reshape(-1).index_select(0, index).unsqueeze(0)
    return {
        "input_ids": ids,
        "labels": ids.masked_fill(~scored.unsqueeze(0), -100),
        "position_ids": positions.unsqueeze(0),
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": longest,
        "max_length_k": longest,
        "index": index,
        "first": first,
    }


def pack_groups(
    input_ids, attention_mask, logits_to_keep: int, lengths: torch.Tensor, groups: torch.Tensor
) -> dict:
    """`pack_rows` for a micro-batch whose rows share prompts (GRPO's group of completions of one prompt:
    `groups` [rows] on the host, equal where the rows' prompts are equal): each group's prompt but its last
    token runs once, then each member's segment, that last prompt token again and the member's completion
    (so that the token before each completion predicts its first token, as in its own row). Positions run on
    from the shared tokens into every segment, so each completion sees its prompt where it would in its
    own row. Attention must run inside `expanded(expand, back)`: `expand` lays the row out again as one
    segment a member (the shared tokens, then the member's own), which `cu_seq_lens_q/k` bound. The prompt's
    forward (projections, MLP, norms) runs once a group instead of once a row; per-token values come back in
    the padded layout by `unpack_rows` as from `pack_rows` (a shared token's goes to the group's first row).

    Differs from one row each only in float rounding and in LoRA's dropout, which draws one mask for a
    shared prompt token where each row would draw its own."""
    rows, width = input_ids.shape
    device = input_ids.device
    prompt_width = width - logits_to_keep
    lengths, groups = lengths.to("cpu", torch.long), groups.to("cpu")
    if rows == 0 or bool((lengths[:, 0] < 1).any()):
        raise ValueError("pack_groups: every row needs a prompt token")
    members: dict[int, list[int]] = {}
    for r, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(r)
    src, position, scored, first, expand, back, sizes = [], [], [], [], [], [], []
    packed = copies = 0  # tokens laid out so far, in the packed row and in the expanded one
    for rows_of in members.values():
        p = int(lengths[rows_of[0], 0])
        shared = torch.arange(packed, packed + p - 1)
        src.append(rows_of[0] * width + torch.arange(prompt_width - p, prompt_width - 1))
        position.append(torch.arange(p - 1))
        scored.append(torch.zeros(p - 1, dtype=torch.bool))
        first.append(torch.arange(p - 1) == 0)
        back.append(torch.arange(copies, copies + p - 1))  # a shared token's output: its first copy's
        packed += p - 1
        for r in rows_of:
            c = int(lengths[r, 1])
            own = torch.arange(packed, packed + 1 + c)
            src.append(r * width + torch.arange(prompt_width - 1, prompt_width + c))
            position.append(torch.arange(p - 1, p + c))
            scored.append(torch.arange(1 + c) > 0)
            first.append(torch.arange(1 + c) == 0)
            expand += [shared, own]
            back.append(torch.arange(copies + p - 1, copies + p + c))
            sizes.append(p + c)
            packed += 1 + c
            copies += p + c
    host = {
        "index": torch.cat(src), "scored": torch.cat(scored), "position": torch.cat(position),
        "first": torch.cat(first), "expand": torch.cat(expand), "back": torch.cat(back),
        "cu": torch.nn.functional.pad(torch.cumsum(torch.tensor(sizes), 0), (1, 0)).to(torch.int32),
    }  # fmt: skip
    dev = _to_device(host, device)
    longest = max(sizes)
    ids = input_ids.reshape(-1).index_select(0, dev["index"]).unsqueeze(0)
    return {
        "input_ids": ids,
        "labels": ids.masked_fill(~dev["scored"].unsqueeze(0), -100),
        "position_ids": dev["position"].unsqueeze(0),
        "cu_seq_lens_q": dev["cu"],
        "cu_seq_lens_k": dev["cu"],
        "max_length_q": longest,
        "max_length_k": longest,
        "index": dev["index"],
        "first": dev["first"],
        "expand": dev["expand"],
        "back": dev["back"],
    }


def distinct_prompts(input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct rows of a left-padded prompt batch (ids and mask alike: GRPO's group of completions holds
    its prompt once a row), as (ids, mask, index): row i of the batch is distinct row index[i]."""
    width = input_ids.shape[1]
    key = torch.cat([input_ids, attention_mask.to(input_ids.dtype)], 1)
    distinct, index = torch.unique(key, dim=0, return_inverse=True)
    return distinct[:, :width], distinct[:, width:].to(attention_mask.dtype), index


def _to_device(host: dict, device) -> dict:
    """The packing's host tensors on `device`, copied from pinned memory without waiting (GPU)."""
    if device.type == "cuda":
        host = {k: v.pin_memory() for k, v in host.items()}
    return {k: v.to(device, non_blocking=True) for k, v in host.items()}


def unpack_rows(per_token, index, first, shape):
    """Per-token values of a packed row ([1, tokens - 1], the value at i belonging to token i + 1, as a
    causal LM's shifted output is) back in the padded layout of a micro-batch of `shape` ([rows, width]):
    [rows, width - 1], zero at padding and at each row's first token (predicted from the row before it), as
    the padded forward returns them. `index` and `first` as `pack_rows` gives them. Differentiable."""
    whole = torch.cat([per_token.new_zeros(1), per_token[0]]).masked_fill(first, 0)  # token t's value at t
    rows, width = shape
    return per_token.new_zeros(rows * width).index_copy(0, index, whole).view(rows, width)[:, 1:]


@contextmanager
def attention(model, name: str):
    """`model` with the attention registered as `name` for the calls inside, its own after (the model itself,
    not a DDP wrapper: `accelerator.unwrap_model`)."""
    own = model.config._attn_implementation
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(own)
