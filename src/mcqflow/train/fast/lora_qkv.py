"""An attention's q, k and v LoRA layers as one autograd function (the `fused_qkv` lever, SFT and GRPO training,
on top of `fused_lora`).

With `fused_lora` alone an attention runs three fused layers on the same input, one after another: three
autograd functions forward and three backward, three base products (k's and v's narrow: 512 output rows each
on the 7B, against q's 3,584), and in backward three input gradients that autograd adds into one (two
full-width passes). Where the training forward waits on the host (GRPO's micro-batches of 8 on
an H100, docs/speed.md, thirteenth round), each function's Python is time the GPU sits idle. Here:

- forward: one product of x against q's, k's and v's rows stacked (FP8: one `_scaled_mm` with the three
  biases stacked; one FP8 copy of the three weights instead of three), each adapter's rank-r product added
  into its block of the output; q and k come back as column blocks of that one tensor (views, no copy), v as
  a copy of its block (attention keeps v until backward; a view would keep all three alive);
- backward: the three gradients as one [dq | dk | dv] (one copy), x's gradient one product of it against
  [Wq; Wk; Wv] (no sum of three input gradients), each adapter's gradients from the small products, and the
  dropout masks' share added as `lora_fused` adds it.

The attention's forward is wrapped: it computes the three outputs through `_LoraQKV` before the attention's
own forward runs, and q's, k's and v's layers hand them back when they are called on that same input (an
identity check: any other call, or any call the function does not cover, runs the layer's own forward). So
the attention's own code (rotary embeddings, caches, the attention kernel) is untouched.

Same dropout masks as the three fused layers (q's drawn first, then k's, then v's: the order the attention
calls them in), so on a CPU the result is PEFT's to float rounding (tests/test_lora_qkv.py). Covered: an
attention with `q_proj`, `k_proj`, `v_proj` fused LoRA layers on the same active adapter, training with
gradients on; other calls run the attention's own forward.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from mcqflow.train.fast import lora_fused
from mcqflow.train.fast.lora_fused import _Fp8Weight, _mm8, adapter_backward, adapter_input, quantized_input

NAMES = ("q_proj", "k_proj", "v_proj")


class _LoraQKV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, wq, wk, wv, biq, bik, biv, aq, bq, ak, bk, av, bv, scales, rates, dtype, fp8,
                fused_dropout: bool):  # fmt: skip
        shape = x.shape
        weights, biases = (wq, wk, wv), (biq, bik, biv)
        # the gradients' dtypes (the parameters')
        ctx.dtypes = (x.dtype, *(t.dtype for t in (aq, bq, ak, bk, av, bv)))
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, shape[-1]).to(dtype)
            a = [t.to(dtype) for t in (aq, ak, av)]
            bs = [(b * s).to(dtype) for b, s in zip((bq, bk, bv), scales, strict=True)]
            drawn = [
                adapter_input(x2, ai, p, fused_dropout) for ai, p in zip(a, rates, strict=True)
            ]  # q's mask first
            widths = [w.shape[0] for w in weights]
            if fp8 is not None:  # one product against q's, k's and v's rows stacked
                x8, sx = quantized_input(x, x2)
                out = torch._scaled_mm(
                    x8, fp8.w8.t(), sx, fp8.sw, bias=fp8.bias, out_dtype=dtype, use_fast_accum=x.is_cuda
                )
                parts = out.split(widths, dim=1)
            else:
                parts = [
                    nn.functional.linear(x2, w.to(dtype), None if b is None else b.to(dtype))
                    for w, b in zip(weights, biases, strict=True)
                ]
            for part, (u, _, _), b in zip(parts, drawn, bs, strict=True):
                part.addmm_(u, b.t())
        us = [u for u, _, _ in drawn]
        ctx.save_for_backward(x2, wq, wk, wv, *a, *bs, *us)
        ctx.scales, ctx.rates, ctx.shape, ctx.fp8, ctx.dtype = scales, rates, shape, fp8, dtype
        ctx.draws = [(seed, state) for _, seed, state in drawn]
        q, k, v = (part.reshape(*shape[:-1], part.shape[-1]) for part in parts)
        # v's block copied out (a ninth of the output on the 7B): attention keeps v until backward, and a view
        # would keep the whole [q | k | v] alive with it, where q and k are read once by the rotary embeddings
        return q, k, v.contiguous()

    @staticmethod
    def backward(ctx, gq, gk, gv):
        x2, wq, wk, wv, *rest = ctx.saved_tensors
        a, bs, us = rest[0:3], rest[3:6], rest[6:9]
        grads = [g.reshape(-1, g.shape[-1]).to(ctx.dtype) for g in (gq, gk, gv)]
        gus = [g @ b for g, b in zip(grads, bs, strict=True)]  # the rank-r gradients, scales included
        grad_bs = [(g.t() @ u).mul_(s) for g, u, s in zip(grads, us, ctx.scales, strict=True)]
        grad_x = None
        if ctx.needs_input_grad[0]:
            if ctx.fp8 is not None:  # [dq | dk | dv] against [Wq; Wk; Wv]: one product
                grad_x = _mm8(torch.cat(grads, dim=1), ctx.fp8.wt8, ctx.fp8.swt)
            else:
                grad_x = grads[0] @ wq.to(ctx.dtype)
                grad_x.addmm_(grads[1], wk.to(ctx.dtype))
                grad_x.addmm_(grads[2], wv.to(ctx.dtype))
        grad_as = [
            adapter_backward(x2, ai, gu, grad_x, p, seed, state)
            for ai, gu, p, (seed, state) in zip(a, gus, ctx.rates, ctx.draws, strict=True)
        ]
        if grad_x is not None:
            grad_x = grad_x.reshape(ctx.shape).to(ctx.dtypes[0])
        adapters = []
        for i in range(3):
            adapters += [grad_as[i].to(ctx.dtypes[1 + 2 * i]), grad_bs[i].to(ctx.dtypes[2 + 2 * i])]
        return (grad_x, None, None, None, None, None, None, *adapters, None, None, None, None, None)


def _attention_forward(attn, plain, *args, **kwargs):
    """The attention's forward with q, k and v computed first through `_LoraQKV` where it covers the call,
    handed to the three layers' calls on the same input (`_projection_forward`); else its own (`plain`)."""
    x = kwargs["hidden_states"] if "hidden_states" in kwargs else (args[0] if args else None)
    layers = [getattr(attn, n) for n in NAMES]
    name = lora_fused.covered(layers[0])
    if (
        not isinstance(x, torch.Tensor)
        or name is None
        or any(lora_fused.covered(m) != name for m in layers[1:])
    ):
        return plain(*args, **kwargs)
    dtype = lora_fused.products_dtype(x)
    fp8 = getattr(attn, "_fp8_qkv", None) if dtype == torch.bfloat16 else None
    bases = [m.get_base_layer() for m in layers]
    adapters = [t for m in layers for t in (m.lora_A[name].weight, m.lora_B[name].weight)]
    outs = _LoraQKV.apply(
        x, *(b.weight for b in bases), *(b.bias for b in bases), *adapters,
        tuple(m.scaling[name] for m in layers), tuple(lora_fused.dropout_rate(m, name) for m in layers),
        dtype, fp8, all(getattr(m, "_fused_dropout", False) for m in layers),
    )  # fmt: skip
    slot = attn._qkv_slot
    slot.update({n: (x, out) for n, out in zip(NAMES, outs, strict=True)})
    try:
        return plain(*args, **kwargs)
    finally:
        slot.clear()  # (a layer not called, or an error: nothing is kept past the forward)


def _projection_forward(slot, key, plain, x, *args, **kwargs):
    """q's, k's or v's layer: the output the attention computed for this input, once, else its own forward."""
    ready = slot.get(key)
    if ready is not None and ready[0] is x and not args and not kwargs:
        del slot[key]
        return ready[1]
    return plain(x, *args, **kwargs)


def fuse_qkv(model, fp8: bool = False) -> int:
    """Route every attention of `model` whose q, k and v are fused LoRA layers (`lora_fused.fuse_lora` first)
    through `_LoraQKV`; returns how many (once: an attention already routed is left). `fp8`: the three FP8
    copies (made by `fuse_lora(fp8=True)`) are replaced by one of the three stacked, as the product takes
    them; where any of them has none the base stays bf16, as in `fuse_lora`."""
    n = 0
    for attn in model.modules():
        layers = [getattr(attn, name, None) for name in NAMES]
        if not all(getattr(m, "_fused_lora", False) for m in layers) or routed(attn):
            continue
        bases = [m.get_base_layer() for m in layers]
        if len({b.in_features for b in bases}) != 1 or len({b.bias is None for b in bases}) != 1:
            continue
        slot: dict = {}
        attn._qkv_slot = slot
        attn.forward = functools.partial(_attention_forward, attn, attn.forward)
        for name, m in zip(NAMES, layers, strict=True):
            m.forward = functools.partial(_projection_forward, slot, name, m.forward)
        attn._fp8_qkv = None
        if fp8 and all(getattr(b, "_fp8", None) is not None for b in bases):
            # one FP8 copy of the three stacked (and their biases) serves all three, not three copies
            stacked = None if bases[0].bias is None else torch.cat([b.bias for b in bases])
            attn._fp8_qkv = _Fp8Weight(torch.cat([b.weight for b in bases]), stacked)
            for b in bases:
                b._fp8 = None
        n += 1
    return n


def routed(attn) -> bool:
    """Whether `attn`'s forward is the fused one now."""
    return lora_fused.wraps(attn, _attention_forward)
