"""An MLP's gate and up LoRA layers and its SwiGLU as one autograd function (the `fused_swiglu` lever, SFT and
GRPO training, on top of `fused_lora`).

With `fused_lora` alone an MLP computes `down(silu(gate(x)) * up(x))` as three steps: gate's and up's fused
layers each write their base output and add their adapter's product into it (`addmm_`: a read and a write of
the full width), then SwiGLU reads both back and writes h. On the 7B's SFT step those two adds were 17 ms of
GPU time (56 calls, bench run 2141's trace), for nothing the SwiGLU pass could not do as it reads them (on the
H100 SFT 32 x 256 ran +4% with this, runs 0432 and 0434; docs/speed.md, twelfth round). Here:

- forward: G and U, the base's products (one FP8 product of x against gate's and up's rows stacked, where the
  base is FP8), then one pass h = silu(G + ug·Bgᵀ) · (U + uu·Buᵀ), the rank-r products (ug = dropout(x) Agᵀ,
  scales folded into B) taken inside the pass in fp32: G and U are not written again, and each rounding to
  bf16 of the sums is gone;
- backward: one pass computes d/dG and d/dU from dh, with g and v recomputed as forward computed them, written
  over G and U (so a graph's backward runs once, as Liger's SwiGLU's does); then the adapters' gradients from the small products, x's gradient as one product of
  [dG | dU] against [Wg; Wu] (no sum of two input gradients), and the dropout masks' share added as
  `lora_fused` adds it.

Same dropout and masks as `lora_fused` (gate's drawn before up's, the order the MLP calls them in), so on a CPU
the result is PEFT's to float rounding (tests/test_lora_swiglu.py). The passes are Triton kernels on a CUDA
GPU in bf16 or fp16 (`runs_on`); elsewhere torch's operations compute the same formulas. Covered: an MLP with
`gate_proj`, `up_proj`, `down_proj` (Qwen2, Llama), SiLU as its activation, gate and up fused LoRA layers
without bias, the same active adapter; other calls run the MLP's own forward.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from transformers import TrainerCallback

from mcqflow.train.fast import lora_dropout, lora_fused
from mcqflow.train.fast.lora_fused import _Fp8Weight, _mm8, adapter_backward, adapter_input, quantized_input

_TILE = dict(BT=64, BN=64, num_warps=4)


def runs_on(t: torch.Tensor) -> bool:
    """Whether the passes run as the Triton kernels for `t`: bf16 or fp16 on a CUDA GPU, Triton installed."""
    return lora_dropout.runs_on(t)


def swiglu(g_base, u_base, ug, bg, uu, bu) -> torch.Tensor:
    """h = silu(g_base + ug bgᵀ) * (u_base + uu buᵀ), computed in fp32, in g_base's dtype [T, N]. g_base and
    u_base may be column blocks of one [T, 2N] tensor (rows of either strided alike)."""
    if not runs_on(g_base):
        g = g_base.float() + ug.float() @ bg.float().t()
        v = u_base.float() + uu.float() @ bu.float().t()
        return (nn.functional.silu(g) * v).to(g_base.dtype)
    t, n = g_base.shape
    h = torch.empty(t, n, dtype=g_base.dtype, device=g_base.device)
    if t:
        _launch(kernels().swiglu_lora_forward_kernel, t, n, g_base, u_base, ug, bg, uu, bu, out=h)
    return h


def swiglu_backward(dh, g_base, u_base, ug, bg, uu, bu) -> None:
    """d/dG and d/dU of `swiglu`'s h for the gradient dh, written over g_base and u_base."""
    if not runs_on(g_base):
        g = g_base.float() + ug.float() @ bg.float().t()
        v = u_base.float() + uu.float() @ bu.float().t()
        sig = torch.sigmoid(g)
        dh = dh.float()
        g_base.copy_(dh * v * (sig + g * sig * (1 - sig)))
        u_base.copy_(dh * g * sig)
        return
    t, n = g_base.shape
    if t:
        _launch(
            kernels().swiglu_lora_backward_kernel, t, n, g_base, u_base, ug, bg, uu, bu, dh=dh.contiguous()
        )


def _launch(kernel, t, n, g_base, u_base, ug, bg, uu, bu, out=None, dh=None, tile=None):
    """`kernel` over [t, n] in tiles (`tile`: BT, BN and num_warps, `_TILE` unless given; bench/profile_gpu.py
    part swiglu-pass times others): forward's (writes `out`) or backward's (reads `dh`)."""
    tile = tile or _TILE
    if g_base.stride() != u_base.stride() or g_base.stride(-1) != 1:
        raise ValueError(
            f"gate's and up's outputs are not rows strided alike: {g_base.stride()}, {u_base.stride()}"
        )
    r = ug.shape[1]
    small = [t_.contiguous() for t_ in (ug, uu, bg, bu)]
    grid = (-(-t // tile["BT"]), -(-n // tile["BN"]))
    head, tail = ((), (out,)) if dh is None else ((dh,), ())
    kernel[grid](
        *head,
        g_base,
        u_base,
        *small,
        *tail,
        t,
        n,
        r,
        g_base.stride(0),
        BR=lora_dropout._rank_block(r),
        **tile,
    )


class _LoraSwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, wg, wu, ag, bg, au, bu, scales, rates, dtype, fp8, fused_dropout: bool):  # fmt: skip
        shape = x.shape
        ctx.dtypes = (x.dtype, ag.dtype, bg.dtype, au.dtype, bu.dtype)  # the gradients' (the parameters')
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, shape[-1]).to(dtype)
            ag, au = ag.to(dtype), au.to(dtype)
            bgs, bus = (bg * scales[0]).to(dtype), (bu * scales[1]).to(dtype)
            ug, seed_g, state_g = adapter_input(x2, ag, rates[0], fused_dropout)  # gate's mask first, as PEFT
            uu, seed_u, state_u = adapter_input(x2, au, rates[1], fused_dropout)
            n = wg.shape[0]
            if fp8 is not None:  # one product against gate's and up's rows stacked
                x8, sx = quantized_input(x, x2)
                stacked = torch._scaled_mm(
                    x8, fp8.w8.t(), sx, fp8.sw, out_dtype=dtype, use_fast_accum=x.is_cuda
                )
                g_base, u_base = stacked[:, :n], stacked[:, n:]
            else:
                g_base, u_base = x2 @ wg.to(dtype).t(), x2 @ wu.to(dtype).t()
                stacked = None
            h = swiglu(g_base, u_base, ug, bgs, uu, bus)
        ctx.save_for_backward(x2, wg, wu, ag, bgs, ug, au, bus, uu, g_base, u_base)
        ctx.scales, ctx.rates, ctx.shape, ctx.fp8, ctx.dtype = scales, rates, shape, fp8, dtype
        ctx.draws = (seed_g, state_g, seed_u, state_u)
        # (FP8) G and U as one tensor: [dG | dU] after backward's pass, one product for grad_x
        ctx.stacked = stacked
        return h.reshape(*shape[:-1], n)

    @staticmethod
    def backward(ctx, grad):
        x2, wg, wu, ag, bgs, ug, au, bus, uu, g_base, u_base = ctx.saved_tensors
        seed_g, state_g, seed_u, state_u = ctx.draws
        x_dtype = ctx.dtypes[0]
        dh = grad.reshape(-1, grad.shape[-1]).to(ctx.dtype)
        swiglu_backward(dh, g_base, u_base, ug, bgs, uu, bus)  # g_base, u_base now hold dG, dU
        dg, du = g_base, u_base
        gu_g, gu_u = dg @ bgs, du @ bus  # the rank-r gradients, scales included
        grad_bg = (dg.t() @ ug).mul_(ctx.scales[0])
        grad_bu = (du.t() @ uu).mul_(ctx.scales[1])
        grad_x = None
        if ctx.needs_input_grad[0]:
            if ctx.fp8 is not None:
                grad_x = _mm8(ctx.stacked, ctx.fp8.wt8, ctx.fp8.swt)
            else:
                grad_x = dg @ wg.to(ctx.dtype)
                grad_x.addmm_(du, wu.to(ctx.dtype))
        grad_ag = adapter_backward(x2, ag, gu_g, grad_x, ctx.rates[0], seed_g, state_g)
        grad_au = adapter_backward(x2, au, gu_u, grad_x, ctx.rates[1], seed_u, state_u)
        ctx.stacked = None
        if grad_x is not None:
            grad_x = grad_x.reshape(ctx.shape).to(x_dtype)
        _, ag_dt, bg_dt, au_dt, bu_dt = ctx.dtypes
        return (
            grad_x, None, None, grad_ag.to(ag_dt), grad_bg.to(bg_dt), grad_au.to(au_dt), grad_bu.to(bu_dt),
            None, None, None, None, None,
        )  # fmt: skip


def _forward(mlp, plain, x, *args, **kwargs):
    """The MLP's forward through `_LoraSwiGLU` where it covers the call, else its own (`plain`)."""
    gate, up = mlp.gate_proj, mlp.up_proj
    name = lora_fused.covered(gate)
    if args or kwargs or name is None or lora_fused.covered(up) != name:
        return plain(x, *args, **kwargs)
    dtype = lora_fused.products_dtype(x)
    fp8 = getattr(mlp, "_fp8_gate_up", None) if dtype == torch.bfloat16 else None
    h = _LoraSwiGLU.apply(
        x, gate.get_base_layer().weight, up.get_base_layer().weight,
        gate.lora_A[name].weight, gate.lora_B[name].weight, up.lora_A[name].weight, up.lora_B[name].weight,
        (gate.scaling[name], up.scaling[name]),
        (lora_fused.dropout_rate(gate, name), lora_fused.dropout_rate(up, name)),
        dtype, fp8, getattr(gate, "_fused_dropout", False) and getattr(up, "_fused_dropout", False),
    )  # fmt: skip
    return mlp.down_proj(h)


def _silu_mlp(mlp) -> bool:
    config = getattr(mlp, "config", None)
    return getattr(config, "hidden_act", None) in ("silu", "swish")


def fuse_swiglu(model, fp8: bool = False) -> int:
    """Route every MLP of `model` whose gate and up are fused LoRA layers (`lora_fused.fuse_lora` first) through
    `_LoraSwiGLU`; returns how many. Run it after anything that replaces the MLPs' forward (Liger's SwiGLU,
    which transformers' `Trainer.train` puts on: `FuseSwiGLUCallback` runs it after that): this one wraps
    whatever forward the MLP has, and runs it where it does not cover a call. An MLP whose forward was
    replaced since it was fused is fused again. `fp8`: gate's and up's FP8 copies (made by
    `fuse_lora(fp8=True)`) are replaced by one of both stacked, as the products take them; where the widths do
    not fit FP8 the base stays bf16, as in `fuse_lora`."""
    n = 0
    for mlp in model.modules():
        gate, up, down = (getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj"))
        if not all(getattr(m, "_fused_lora", False) for m in (gate, up)) or down is None:
            continue
        if routed(mlp) or not _silu_mlp(mlp):
            continue
        gb, ub = gate.get_base_layer(), up.get_base_layer()
        if gb.bias is not None or ub.bias is not None or gb.weight.shape != ub.weight.shape:
            continue
        mlp.forward = functools.partial(_forward, mlp, mlp.forward)
        if getattr(mlp, "_fp8_gate_up", None) is None:  # (fused before: its stacked copy is kept)
            fits = fp8 and getattr(gb, "_fp8", None) is not None and getattr(ub, "_fp8", None) is not None
            mlp._fp8_gate_up = _Fp8Weight(torch.cat([gb.weight, ub.weight])) if fits else None
            if fits:  # the stacked copy serves both: one copy of the weights, not two
                gb._fp8 = ub._fp8 = None
        n += 1
    return n


def routed(mlp) -> bool:
    """Whether `mlp`'s forward is the fused one now."""
    return lora_fused.wraps(mlp, _forward)


class FuseSwiGLUCallback(TrainerCallback):
    """`fuse_swiglu` on the model when training begins (SFT and GRPO): transformers' `Trainer.train` puts
    Liger's kernels on the model (`use_liger_kernel`) after the trainer is built, replacing the MLPs' forward,
    and GRPO puts them on itself (`liger_training`) before training."""

    def __init__(self, fp8: bool):
        self.fp8 = fp8

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            fuse_swiglu(model, fp8=self.fp8)


def kernels():
    """The Triton kernels' module (`lora_swiglu_kernels`), imported on first use (as `lora_dropout.kernels`)."""
    from mcqflow.train.fast import lora_swiglu_kernels

    return lora_swiglu_kernels
