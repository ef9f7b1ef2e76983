"""The Triton kernels of `lora_swiglu` (imported by it on first use; see its docstring)."""

import triton
import triton.language as tl


@triton.jit
def _gate_and_up(g_ptr, u_ptr, ug_ptr, uu_ptr, bg_ptr, bu_ptr, rows, cols, T, N, R, stride,
                 BR: tl.constexpr):  # fmt: skip
    """(g, v) for the tile: the base's outputs plus the adapters' rank-R products, in fp32."""
    inside = (rows[:, None] < T) & (cols[None, :] < N)
    ranks = tl.arange(0, BR)
    row_rank = (rows[:, None] < T) & (ranks[None, :] < R)  # a [BT, BR] tile of ug, uu
    rank_col = (ranks[:, None] < R) & (cols[None, :] < N)  # a [BR, BN] tile of B (N x R) read transposed
    ug = tl.load(ug_ptr + rows[:, None] * R + ranks[None, :], mask=row_rank, other=0.0)
    uu = tl.load(uu_ptr + rows[:, None] * R + ranks[None, :], mask=row_rank, other=0.0)
    bg = tl.load(bg_ptr + cols[None, :] * R + ranks[:, None], mask=rank_col, other=0.0)
    bu = tl.load(bu_ptr + cols[None, :] * R + ranks[:, None], mask=rank_col, other=0.0)
    offs = rows[:, None].to(tl.int64) * stride + cols[None, :]
    g = tl.load(g_ptr + offs, mask=inside, other=0.0).to(tl.float32) + tl.dot(ug, bg)
    v = tl.load(u_ptr + offs, mask=inside, other=0.0).to(tl.float32) + tl.dot(uu, bu)
    return g, v, offs, inside


@triton.jit
def swiglu_lora_forward_kernel(g_ptr, u_ptr, ug_ptr, uu_ptr, bg_ptr, bu_ptr, h_ptr, T, N, R, stride,
                   BT: tl.constexpr, BN: tl.constexpr, BR: tl.constexpr):  # fmt: skip
    """h = silu(G + ug Bgᵀ) * (U + uu Buᵀ): a program a BT x BN tile; G and U rows `stride` apart, h's N."""
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    cols = tl.program_id(1) * BN + tl.arange(0, BN)
    g, v, _, inside = _gate_and_up(
        g_ptr, u_ptr, ug_ptr, uu_ptr, bg_ptr, bu_ptr, rows, cols, T, N, R, stride, BR
    )
    h = g * tl.sigmoid(g) * v
    tl.store(
        h_ptr + rows[:, None].to(tl.int64) * N + cols[None, :], h.to(h_ptr.dtype.element_ty), mask=inside
    )


@triton.jit
def swiglu_lora_backward_kernel(dh_ptr, g_ptr, u_ptr, ug_ptr, uu_ptr, bg_ptr, bu_ptr, T, N, R, stride,
                    BT: tl.constexpr, BN: tl.constexpr, BR: tl.constexpr):  # fmt: skip
    """From dh (rows N apart): d/dg and d/dv of h = silu(g) * v, written over G and U in place (g and v
    recomputed from them and the adapters' products as forward computed them)."""
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    cols = tl.program_id(1) * BN + tl.arange(0, BN)
    g, v, offs, inside = _gate_and_up(
        g_ptr, u_ptr, ug_ptr, uu_ptr, bg_ptr, bu_ptr, rows, cols, T, N, R, stride, BR
    )
    dh = tl.load(dh_ptr + rows[:, None].to(tl.int64) * N + cols[None, :], mask=inside, other=0.0).to(
        tl.float32
    )
    sig = tl.sigmoid(g)
    silu = g * sig
    dg = dh * v * (sig + silu * (1.0 - sig))
    dv = dh * silu
    tl.store(g_ptr + offs, dg.to(g_ptr.dtype.element_ty), mask=inside)
    tl.store(u_ptr + offs, dv.to(u_ptr.dtype.element_ty), mask=inside)
