"""LoRA's dropout inside the adapter's products (the `fused_dropout` lever of the `fast` profile).

A LoRA layer computes B·A·dropout(x). Done as PEFT does it (and `lora_fused` before this lever), dropout
writes a dropped copy of x and a mask for every adapted projection (q, k and v each their own, over the same
x); `lora_fused` draws it again in backward rather than keep it, and adds the adapter's input gradient
(gu·A)⊙mask to the base's in three more passes. At the 7B's SFT shape that is ~27 bytes of memory traffic an
input element a projection, against the 8 the adapter's products need. Here the mask never exists in memory:
each kernel draws it from Philox counters (a seed a call, the element's index) as it reads x, and forward and
backward draw the same numbers:

- forward: u = (x ⊙ keep) Aᵀ / (1 - p): one read of x;
- backward: grad_x += (gu A) ⊙ keep / (1 - p) in place, and grad_A = guᵀ (x ⊙ keep) / (1 - p): one read of
  x, one read and one write of grad_x, fp32 accumulation and one rounding.

Draws are 16 bits (eight from each Philox call), so the rate is p rounded to a multiple of 2⁻¹⁶ (0.05 →
0.0500031), and the kept values are scaled by 1 / (1 - that rate), which keeps the layer's expectation. The
masks are as random as torch's, but they are not torch's draws: a run's masks differ from PEFT's, which the
CPU path keeps (tests/test_lora_fused.py). The seed comes from torch's generator on x's device, so
`torch.manual_seed` repeats a run. Triton kernels: the layers take them on a CUDA GPU (`runs_on`); the CPU
tests run them in Triton's interpreter (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import functools
import importlib.util

import torch

DRAW_BITS = 16
_FORWARD = dict(BT=32, BK=128, num_warps=4, num_stages=3)  # a program per 32 rows, K in steps of 128
_BACKWARD = dict(CHUNK=256, BT=64, BK=64, num_warps=4, num_stages=2)  # a program per 256 rows x 64 columns


def runs_on(t: torch.Tensor) -> bool:
    """Whether the layers take the kernels for `t`: bf16 or fp16 on a CUDA GPU (fp32 would go through
    `tl.dot` as tf32), Triton installed. (Asked at every adapted projection's forward.)"""
    return t.is_cuda and t.dtype in (torch.bfloat16, torch.float16) and _triton_installed()


@functools.cache
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def threshold(p: float) -> tuple[int, float]:
    """(t, scale): an element is kept where its 16-bit draw is ≥ t, so it is dropped with probability
    t / 2¹⁶ (p rounded), and kept values are scaled by 1 / (1 - t / 2¹⁶)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout rate {p} is not in [0, 1)")
    t = round(p * 2**DRAW_BITS)
    return t, 1.0 / (1.0 - t / 2**DRAW_BITS)


def new_seed(device: torch.device) -> torch.Tensor:
    """A seed for one call's masks, drawn from torch's generator on `device` (no host sync on a GPU)."""
    return torch.randint(0, 2**31 - 1, (1,), device=device, dtype=torch.int64)


def forward(x2: torch.Tensor, a: torch.Tensor, p: float, seed: torch.Tensor) -> torch.Tensor:
    """u = dropout(x2) Aᵀ for x2 [T, K], A [r, K], with the masks of `seed`; out in x2's dtype."""
    k = kernels()
    x2, a = _rows(x2), a.contiguous()
    (t, k_in), r = x2.shape, a.shape[0]
    u = torch.empty(t, r, dtype=x2.dtype, device=x2.device)
    if t:
        thresh, scale = threshold(p)
        cfg = _FORWARD
        grid = (-(-t // cfg["BT"]),)
        k.forward_kernel[grid](
            x2, a, u, seed, t, k_in, x2.stride(0), r, thresh, scale, BR=_rank_block(r), **cfg
        )
    return u


def backward(
    x2: torch.Tensor,
    a: torch.Tensor,
    gu: torch.Tensor,
    grad_x: torch.Tensor | None,
    p: float,
    seed: torch.Tensor,
) -> torch.Tensor:
    """grad_A (fp32, [r, K]) = guᵀ dropout(x2), and, where `grad_x` is given, grad_x += (gu A) ⊙ keep / (1 - p)
    in place; the masks are those `forward` drew with `seed`."""
    k = kernels()
    x2, a, gu = _rows(x2), a.contiguous(), gu.contiguous()
    (t, k_in), r = x2.shape, a.shape[0]
    if t == 0:
        return torch.zeros(r, k_in, dtype=torch.float32, device=x2.device)
    cfg = _BACKWARD
    chunks, br = -(-t // cfg["CHUNK"]), _rank_block(r)
    part = torch.empty(chunks, br, k_in, dtype=torch.float32, device=x2.device)
    if grad_x is not None and (grad_x.shape != x2.shape or grad_x.stride(-1) != 1):
        raise ValueError(f"grad_x {tuple(grad_x.shape)} is not rows of x {tuple(x2.shape)}")
    thresh, scale = threshold(p)
    gx = x2 if grad_x is None else grad_x  # (not written when HAS_GX is off)
    grid = (chunks, -(-k_in // cfg["BK"]))
    k.backward_kernel[grid](
        x2, a, gu, gx, part, seed, t, k_in, x2.stride(0), gx.stride(0), r, thresh, scale,
        BR=br, HAS_GX=grad_x is not None, **cfg,
    )  # fmt: skip
    return part.sum(0)[:r]


def keep_mask(rows: int, cols: int, p: float, seed: torch.Tensor) -> torch.Tensor:
    """The [rows, cols] keep mask `forward` and `backward` draw with `seed` (for tests and checks)."""
    out = torch.empty(rows, cols, dtype=torch.int8, device=seed.device)
    if rows and cols:
        thresh, _ = threshold(p)
        grid = (-(-rows // 32), -(-cols // 64))
        kernels().mask_kernel[grid](out, seed, rows, cols, thresh, BT=32, BK=64)
    return out.bool()


def _rows(x2: torch.Tensor) -> torch.Tensor:
    return x2 if x2.stride(-1) == 1 else x2.contiguous()


def _rank_block(r: int) -> int:
    """The rank padded for `tl.dot` (at least 16, a power of two)."""
    return max(16, 1 << (r - 1).bit_length())


def kernels():
    """The Triton kernels' module (`lora_dropout_kernels`), imported on first use: Triton is a GPU dependency,
    and TRITON_INTERPRET, read when they are defined, can be set by then."""
    from mcqflow.train.fast import lora_dropout_kernels

    return lora_dropout_kernels
