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
gives the same masks either way. The mask is not kept for backward: the generator's state before the draw
is (a seed and an offset on a GPU), and backward draws the same mask again from it, leaving the generator
as it found it. A kept mask is a byte an input element, 40 KB a token a layer on the 7B (six 3,584-wide
inputs and one 18,944-wide), about a sixth of what a training step keeps; drawing it again costs what
reading it back did. Same result up to float rounding: `s·B` is rounded where PEFT rounds
`(u Bᵀ)·s` (a CPU test compares losses and adapter gradients with PEFT's layer).

Fused dropout (`fused_dropout`, `fuse_lora(model, fused_dropout=True)`): on a GPU, in bf16 or fp16, the mask
is not drawn by torch at all but inside the adapter's products (`lora_dropout`: Triton kernels drawing it
from Philox counters, forward and backward alike), so neither a dropped copy of x nor a mask is written and
the adapter's input gradient is added into `g W` in the same pass. Its masks are not PEFT's draws.

Covered: a plain `nn.Linear` base, one active vanilla adapter (no DoRA or other variant), training with
gradients on; everything else (eval, `no_grad` scoring, merged adapters, mixed-batch adapter names) runs
PEFT's own forward.

FP8 base (`fp8_base`, `fuse_lora(model, fp8=True)`): the frozen base's two products, `x Wᵀ` forward and
`g W` backward, run as FP8 matmuls (`torch._scaled_mm`, e4m3 with one scale a row) under bf16 autocast; the
adapters, their gradients and everything outside the seven projections stay bf16. The weights are
quantised once (W by output row for forward, Wᵀ by input row for backward: Hopper's FP8 products take both
operands K-major, so each direction has its copy, 2 bytes a frozen weight beside the bf16 one), activations
and gradients each call. Scales are powers of two, so scaling is exact and the FP8 cast is the only
rounding (e4m3: 3 mantissa bits, relative error ≤ 2⁻⁴ an element). This is a precision choice, as the QLoRA
recipe's 4-bit NF4 base is: results are not equal to the bf16 base's; docs/speed.md gives the measured
difference.
"""

from __future__ import annotations

import functools
import weakref

import torch
from torch import nn

from mcqflow.train.fast import lora_dropout

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max  # 448


def quantize_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(t in e4m3, scales) with `t ≈ t8 * scale` row by row (scale: fp32, shape (rows, 1), the smallest power
    of two with the row's largest magnitude at most 448 after scaling, so nothing saturates)."""
    amax = torch.linalg.vector_norm(t, float("inf"), dim=-1, keepdim=True, dtype=torch.float32)
    mant, exp = torch.frexp(amax.clamp_min(1e-30) / FP8_MAX)  # v = mant * 2^exp, mant in [0.5, 1)
    exp = exp - (mant == 0.5).to(exp.dtype)  # ceil(log2 v), exactly
    return (t * torch.ldexp(torch.ones_like(amax), -exp)).to(FP8), torch.ldexp(torch.ones_like(amax), exp)


@functools.cache
def row_quantizer(device_type: str):
    """`quantize_rows` for tensors on `device_type`: on a GPU one Triton kernel (`_triton_quantizer`, the
    same bits), on a CPU the function itself."""
    if device_type != "cuda":
        return quantize_rows
    try:
        return _triton_quantizer()
    except ImportError:  # (a CUDA build of torch without Triton)
        return quantize_rows


def _triton_quantizer():
    """`quantize_rows` as one Triton kernel, a program a row: the row's largest magnitude, then the row
    scaled and cast. A training step of the 7B quantises 305 times, and the CPU time a call decides small
    micro-batches: 24 µs here against 153 µs for the function under `torch.compile` and 165 µs eager (H200,
    bench/profile_gpu.py fp8), and less GPU time than either (189 µs against 288 and 962 on 8192 x 18944)."""
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(x_ptr, q_ptr, s_ptr, n_cols, stride, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        x_row, q_row = x_ptr + row * stride, q_ptr + row * n_cols
        top = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            v = tl.load(x_row + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
            top = tl.maximum(top, tl.abs(v))
        ratio = tl.maximum(tl.max(top, axis=0), 1e-30) / 448.0
        # a normal float: its exponent field and mantissa give ceil(log2 ratio)
        bits = ratio.to(tl.int32, bitcast=True)
        e = ((bits >> 23) & 0xFF) - 127 + ((bits & 0x7FFFFF) != 0).to(tl.int32)
        inv = ((127 - e) << 23).to(tl.float32, bitcast=True)
        tl.store(s_ptr + row, ((127 + e) << 23).to(tl.float32, bitcast=True))
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            y = tl.load(x_row + cols, mask=cols < n_cols, other=0.0).to(tl.float32) * inv
            tl.store(q_row + cols, y.to(q_ptr.dtype.element_ty), mask=cols < n_cols)

    def quantize(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = t if t.stride(-1) == 1 else t.contiguous()
        rows, cols = t.shape
        q = torch.empty((rows, cols), dtype=FP8, device=t.device)
        scale = torch.empty((rows, 1), dtype=torch.float32, device=t.device)
        if rows:
            kernel[(rows,)](t, q, scale, cols, t.stride(0), BLOCK=1024, num_warps=4)
        return q, scale

    return quantize


class _Fp8Weight:
    """A frozen weight's FP8 copies: W by output row (forward) and Wᵀ by input row (backward); with `bias`,
    the frozen bias in bf16 (the FP8 product's output dtype), cast once here, not on every call."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        with torch.no_grad():
            self.bias = None if bias is None else bias.detach().to(torch.bfloat16)
            self.w8, sw = quantize_rows(weight)
            self.sw = sw.reshape(1, -1)
            self.wt8, swt = quantize_rows(weight.t().contiguous())
            self.swt = swt.reshape(1, -1)


def _mm8(a: torch.Tensor, b8: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """`a @ b8ᵀ` (times b's row scales) in FP8, `a` quantised by row here, full-precision accumulation (as
    torchao's row-wise recipe does for gradients); bf16 out."""
    a8, sa = row_quantizer(a.device.type)(a)
    return torch._scaled_mm(a8, b8.t(), sa, sb, out_dtype=torch.bfloat16)


# (a weak reference to the input, its version, its FP8 copy) of the last call: q/k/v and gate/up share it.
# Weak: a strong one would keep the input's autograd graph, and with it a forward's activations, alive
# after a step that ran out of memory.
_shared_input: list = [None]


def quantized_input(x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`x2` (x as rows) quantised by row, once for the projections that read the same `x` one after another
    (q/k/v, gate/up): the last call's result is kept while `x` is the same tensor at the same version."""
    if x.is_inference():  # (no version counter)
        return row_quantizer(x2.device.type)(x2)
    last = _shared_input[0]
    if last is not None and last[0]() is x and last[1] == x._version:
        return last[2]
    q = row_quantizer(x2.device.type)(x2)
    _shared_input[0] = (weakref.ref(x), x._version, q)
    return q


def _dropout(x: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(dropped-out x, mask) drawn as `F.dropout(x, p, training=True)` draws them."""
    if x.is_cuda:
        return torch.ops.aten.native_dropout(x, p, True)
    noise = torch.empty_like(x).bernoulli_(1 - p)  # F.dropout's CPU path, draw for draw
    noise.div_(1 - p)
    return x * noise, noise


def _generator(device: torch.device) -> torch.Generator:
    """The default generator the dropout of a tensor on `device` draws from."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator


def _redraw(x: torch.Tensor, p: float, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`_dropout(x, p)` drawn again from the generator's `state` before the first draw: the same mask (the
    same kernel on the same shape from the same seed and offset), the generator left as it was."""
    gen = _generator(x.device)
    now = gen.get_state()
    gen.set_state(state)
    try:
        return _dropout(x, p)
    finally:
        gen.set_state(now)


def _undrop(t: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """`t` through the dropout `_dropout` drew: t ⊙ mask / (1 - p)."""
    if mask.dtype == torch.bool:
        return torch.ops.aten.native_dropout_backward(t, mask, 1.0 / (1 - p))
    return t * mask  # the CPU mask is already scaled


def adapter_input(x2: torch.Tensor, a: torch.Tensor, p: float, fused_dropout: bool):
    """(u, seed, state): the adapter's rank-r input u = dropout(x2) Aᵀ, and what backward needs to draw the
    same mask again: the kernels' seed where the mask is drawn inside them (`fused_dropout` where they run),
    else the generator's state before torch's draw (None for both without dropout)."""
    if p > 0 and fused_dropout and lora_dropout.runs_on(x2):
        seed = lora_dropout.new_seed(x2.device)
        return lora_dropout.forward(x2, a, p, seed), seed, None
    state = _generator(x2.device).get_state() if p > 0 else None
    xd = _dropout(x2, p)[0] if p > 0 else x2
    return xd @ a.t(), None, state


def adapter_backward(x2, a, gu, grad_x, p: float, seed, state) -> torch.Tensor:
    """grad_A = guᵀ dropout(x2) with the mask `adapter_input` drew, and, where `grad_x` is given,
    grad_x += (gu A) ⊙ mask / (1 - p) in place (fused dropout: both in one pass over x2)."""
    if seed is not None:
        return lora_dropout.backward(x2, a, gu, grad_x, p, seed)
    xd, mask = (x2, None) if state is None else _redraw(x2, p, state)
    grad_a = gu.t() @ xd
    if grad_x is not None:
        if mask is None:
            grad_x.addmm_(gu, a)
        else:
            grad_x.add_(_undrop(gu @ a, mask, p))
    return grad_a


class _LoraLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float, p: float, dtype: torch.dtype, fp8,
                fused_dropout: bool = False):  # fmt: skip
        shape = x.shape
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, shape[-1]).to(dtype)
            a = lora_a.to(dtype)
            bs = (lora_b * scaling).to(dtype)
            u, seed, state = adapter_input(x2, a, p, fused_dropout)
            b = None if bias is None else bias.to(dtype)
            if fp8 is not None:
                x8, sx = quantized_input(x, x2)
                out = torch._scaled_mm(
                    x8, fp8.w8.t(), sx, fp8.sw, bias=b, out_dtype=dtype, use_fast_accum=x.is_cuda
                )
            else:
                out = nn.functional.linear(x2, weight.to(dtype), b)
            out.addmm_(u, bs.t())
        # the parameter itself is saved, not a cast copy (backward casts again where the dtypes differ)
        ctx.save_for_backward(x2, weight, a, bs, u)
        ctx.scaling, ctx.p, ctx.shape, ctx.fp8, ctx.dtype = scaling, p, shape, fp8, dtype
        ctx.rng = state  # the mask is drawn again in backward, not kept
        ctx.seed = seed  # (fused dropout) the kernels' seed: backward draws the same masks from it
        ctx.dtypes = (x.dtype, lora_a.dtype, lora_b.dtype)
        return out.reshape(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        x2, weight, a, bs, u = ctx.saved_tensors
        x_dtype, a_dtype, b_dtype = ctx.dtypes
        g = grad.reshape(-1, grad.shape[-1]).to(ctx.dtype)
        gu = g @ bs  # the rank-r gradient, scale included
        grad_b = (g.t() @ u).mul_(ctx.scaling)
        grad_x = None
        if ctx.needs_input_grad[0]:  # (the first layer's input, from frozen embeddings, needs none)
            fp8 = ctx.fp8
            grad_x = g @ weight.to(ctx.dtype) if fp8 is None else _mm8(g, fp8.wt8, fp8.swt)
        grad_a = adapter_backward(x2, a, gu, grad_x, ctx.p, ctx.seed, ctx.rng)
        if grad_x is not None:
            grad_x = grad_x.reshape(ctx.shape).to(x_dtype)
        return grad_x, None, None, grad_a.to(a_dtype), grad_b.to(b_dtype), None, None, None, None, None


def _forward(layer, plain, x, *args, **kwargs):
    """A LoRA layer's forward through `_LoraLinear` where it covers the call, else PEFT's own (`plain`)."""
    name = covered(layer)
    if args or kwargs or name is None:
        return plain(x, *args, **kwargs)
    base = layer.get_base_layer()
    dtype = products_dtype(x)
    fp8 = getattr(base, "_fp8", None) if dtype == torch.bfloat16 else None
    return _LoraLinear.apply(
        x, base.weight, base.bias, layer.lora_A[name].weight, layer.lora_B[name].weight, layer.scaling[name],
        dropout_rate(layer, name), dtype, fp8, getattr(layer, "_fused_dropout", False),
    )  # fmt: skip


def wraps(module, forward) -> bool:
    """Whether `module`'s forward is now `forward` wrapped over its own (`functools.partial(forward, module,
    own)`, as `fuse_swiglu` and `fuse_qkv` route MLPs and attentions)."""
    now = module.__dict__.get("forward")
    return isinstance(now, functools.partial) and now.func is forward


def covered(layer) -> str | None:
    """The one active adapter's name where a fused function covers `layer`'s call now (training with
    gradients on, one active vanilla adapter, not merged, the base weight whole), else None (PEFT's own
    forward runs)."""
    names = layer.active_adapters
    if (
        not (layer.training and torch.is_grad_enabled())
        or layer.disable_adapters
        or layer.merged
        or len(names) != 1
        or names[0] not in layer.lora_A
        or names[0] in getattr(layer, "lora_variant", {})
        or _sharded(layer.get_base_layer().weight)  # FSDP2 / ZeRO-3 gather it in the base layer's forward
    ):
        return None
    return names[0]


def dropout_rate(layer, name: str) -> float:
    drop = layer.lora_dropout[name]
    return drop.p if isinstance(drop, nn.Dropout) else 0.0


def products_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the products run in: autocast's where it is on, else x's."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def _sharded(weight) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(weight, DTensor) or hasattr(weight, "ds_id")


def fuse_lora(model, fp8: bool = False, fused_dropout: bool = False) -> int:
    """Route every LoRA layer of `model` on a frozen plain Linear through `_LoraLinear`; returns how many.
    (A layer whose base weights train, or a 4-bit base, keeps PEFT's forward.) `fp8`: the base products in
    FP8 under bf16 autocast, for layers whose widths are multiples of 16 (what `_scaled_mm` takes); the
    caller decides whether the device has FP8 (`models.fp8_supported`). `fused_dropout`: LoRA's dropout
    drawn inside the adapter's products (`lora_dropout`), where its kernels run (`lora_dropout.runs_on`)."""
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
        m._fused_dropout = fused_dropout
        fits = base.in_features % 16 == 0 and base.out_features % 16 == 0 and not _sharded(base.weight)
        # None as well as the copies: a base fused before with FP8 must not keep its old ones
        base._fp8 = _Fp8Weight(base.weight) if fp8 and fits else None
        n += 1
    return n
