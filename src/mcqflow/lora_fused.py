"""LoRA on a frozen Linear as one autograd function (the `fused_lora` speed lever, SFT and GRPO training).

PEFT's LoRA layer computes `base(x) + lora_B(lora_A(dropout(x))) * scaling` module by module: the rank-r
product comes back at full output width, a second full-width pass scales it and a third adds it to the base
output; backward scales the full-width gradient again, and autograd adds the adapter's input gradient to the
base one in another full-width pass. On the 7B architecture the seven adapters a layer cost 39% of an SFT
step over the frozen model's own forward and backward (bench/profile_gpu.py, bench/NOTES.md).

Here one function does the layer: `out = x Wᵀ + u (s·B)ᵀ` with `u = dropout(x) Aᵀ`, the scale folded into B
(rank × out, tiny) and the add done by the matmul into the base output (`addmm_`); backward computes
`g W + ((g (s·B)) A) ⊙ mask / (1 - p)` into one tensor, and the adapters' gradients from the small products.
The input is saved once for all the adapters that read it (q/k/v, gate/up), not one dropped-out copy each.

Same dropout: the mask comes from the same random draws as PEFT's `nn.Dropout` (on a GPU `native_dropout`,
the kernel `F.dropout` calls; on a CPU `bernoulli_` on an empty tensor, as `F.dropout` does), so a seed
gives the same masks either way. Same result up to float rounding: `s·B` is rounded where PEFT rounds
`(u Bᵀ)·s` (a CPU test compares losses and adapter gradients with PEFT's layer).

Covered: a plain `nn.Linear` base, one active vanilla adapter (no DoRA or other variant), training with
gradients on; everything else (eval, `no_grad` scoring, merged adapters, mixed-batch adapter names) runs
PEFT's own forward.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def _dropout(x: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(dropped-out x, mask) drawn as `F.dropout(x, p, training=True)` draws them."""
    if x.is_cuda:
        return torch.ops.aten.native_dropout(x, p, True)
    noise = torch.empty_like(x).bernoulli_(1 - p)  # F.dropout's CPU path, draw for draw
    noise.div_(1 - p)
    return x * noise, noise


def _undrop(t: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """`t` through the dropout `_dropout` drew: t ⊙ mask / (1 - p)."""
    if mask.dtype == torch.bool:
        return torch.ops.aten.native_dropout_backward(t, mask, 1.0 / (1 - p))
    return t * mask  # the CPU mask is already scaled


class _LoraLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float, p: float, dtype: torch.dtype):
        shape = x.shape
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, shape[-1]).to(dtype)
            w, a = weight.to(dtype), lora_a.to(dtype)
            bs = (lora_b * scaling).to(dtype)
            xd, mask = _dropout(x2, p) if p > 0 else (x2, None)
            u = xd @ a.t()
            out = nn.functional.linear(x2, w, None if bias is None else bias.to(dtype))
            out.addmm_(u, bs.t())
        ctx.save_for_backward(x2, w, a, bs, u, mask)
        ctx.scaling, ctx.p, ctx.shape = scaling, p, shape
        ctx.dtypes = (x.dtype, lora_a.dtype, lora_b.dtype)
        return out.reshape(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        x2, w, a, bs, u, mask = ctx.saved_tensors
        x_dtype, a_dtype, b_dtype = ctx.dtypes
        g = grad.reshape(-1, grad.shape[-1]).to(w.dtype)
        gu = g @ bs  # the rank-r gradient, scale included
        grad_b = (g.t() @ u).mul_(ctx.scaling)
        xd = x2 if mask is None else _undrop(x2, mask, ctx.p)
        grad_a = gu.t() @ xd
        grad_x = None
        if ctx.needs_input_grad[0]:  # (the first layer's input, from frozen embeddings, needs none)
            grad_x = g @ w
            through = gu @ a
            grad_x.add_(through if mask is None else _undrop(through, mask, ctx.p))
            grad_x = grad_x.reshape(ctx.shape).to(x_dtype)
        return grad_x, None, None, grad_a.to(a_dtype), grad_b.to(b_dtype), None, None, None


def _forward(layer, plain, x, *args, **kwargs):
    """A LoRA layer's forward through `_LoraLinear` where it covers the call, else PEFT's own (`plain`)."""
    names = layer.active_adapters
    if (
        args
        or kwargs
        or not (layer.training and torch.is_grad_enabled())
        or layer.disable_adapters
        or layer.merged
        or len(names) != 1
        or names[0] not in layer.lora_A
        or names[0] in getattr(layer, "lora_variant", {})
    ):
        return plain(x, *args, **kwargs)
    name = names[0]
    base = layer.get_base_layer()
    if _sharded(base.weight):  # FSDP2 / ZeRO-3 gather the weight in the base layer's own forward
        return plain(x, *args, **kwargs)
    drop = layer.lora_dropout[name]
    p = drop.p if isinstance(drop, nn.Dropout) else 0.0
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    return _LoraLinear.apply(
        x, base.weight, base.bias, layer.lora_A[name].weight, layer.lora_B[name].weight, layer.scaling[name], p,
        dtype,
    )  # fmt: skip


def _sharded(weight) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(weight, DTensor) or hasattr(weight, "ds_id")


def fuse_lora(model) -> int:
    """Route every LoRA layer of `model` on a frozen plain Linear through `_LoraLinear`; returns how many.
    (A layer whose base weights train, or a 4-bit base, keeps PEFT's forward.)"""
    from peft.tuners.lora import Linear as LoraLinear

    n = 0
    for m in model.modules():
        if not isinstance(m, LoraLinear):
            continue
        base = m.get_base_layer()
        if type(base) is not nn.Linear or base.weight.requires_grad:
            continue
        if (base.bias is not None and base.bias.requires_grad) or getattr(m, "_fused_lora", False):
            continue
        m.forward = functools.partial(_forward, m, m.forward)
        m._fused_lora = True
        n += 1
    return n
