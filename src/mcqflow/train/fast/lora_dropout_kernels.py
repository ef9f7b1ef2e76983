"""The Triton kernels of `lora_dropout` (imported by it on first use; see its docstring)."""

import triton
import triton.language as tl


@triton.jit
def philox(seed, c0, c1):
    """Philox-4x32-10 (Random123) of counters (c0, c1, 0, 0), uint32 blocks, under the 64-bit key `seed`:
    the rounds of Triton's own `tl.randint4x`, written out so that these kernels call no JIT function
    defined when Triton was imported (Triton's interpreter runs only those defined after it was asked to)."""
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    for _ in tl.static_range(10):
        _c0, _c2 = c0, c2
        c0 = tl.math.umulhi(0xCD9E8D57, _c2) ^ c1 ^ k0
        c2 = tl.math.umulhi(0xD2511F53, _c0) ^ c3 ^ k1
        c1 = tl.mul(0xCD9E8D57, _c2, sanitize_overflow=False)
        c3 = tl.mul(0xD2511F53, _c0, sanitize_overflow=False)
        k0 = tl.add(k0, 0x9E3779B9, sanitize_overflow=False)
        k1 = tl.add(k1, 0xBB67AE85, sanitize_overflow=False)
    return c0, c1, c2, c3


@triton.jit
def keep(seed, rows, k0, K: tl.constexpr, thresh, BK: tl.constexpr):
    """[rows, BK] keep mask for columns k0.. (k0 a multiple of 8): element (t, c) is 16-bit lane c % 8 of
    Philox call t * ceil(K / 8) + c // 8, kept where that draw is at least `thresh`."""
    c8 = (k0 // 8 + tl.arange(0, BK // 8)).to(tl.int64)
    off = rows[:, None] * ((K + 7) // 8) + c8[None, :]
    r0, r1, r2, r3 = philox(seed.to(tl.uint64), (off & 0xFFFFFFFF).to(tl.uint32), (off >> 32).to(tl.uint32))
    lo = tl.join(tl.join(r0 & 0xFFFF, r0 >> 16), tl.join(r1 & 0xFFFF, r1 >> 16))
    hi = tl.join(tl.join(r2 & 0xFFFF, r2 >> 16), tl.join(r3 & 0xFFFF, r3 >> 16))
    draws = tl.reshape(tl.join(lo, hi), [off.shape[0], BK])
    return draws >= thresh


@triton.jit
def forward_kernel(x_ptr, a_ptr, u_ptr, seed_ptr, T, K: tl.constexpr, sx, R, thresh, scale,
                   BT: tl.constexpr, BK: tl.constexpr, BR: tl.constexpr):  # fmt: skip
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    r64 = rows.to(tl.int64)
    rr = tl.arange(0, BR)
    seed = tl.load(seed_ptr)
    acc = tl.zeros([BT, BR], dtype=tl.float32)
    for k0 in range(0, K, BK):
        cols = k0 + tl.arange(0, BK)
        inside = (rows[:, None] < T) & (cols[None, :] < K)
        x = tl.load(x_ptr + r64[:, None] * sx + cols[None, :], mask=inside, other=0.0)
        x = tl.where(keep(seed, r64, k0, K, thresh, BK), x, tl.zeros_like(x))
        a_t = tl.load(a_ptr + rr[None, :] * K + cols[:, None], mask=(rr[None, :] < R) & (cols[:, None] < K),
                      other=0.0)  # fmt: skip
        acc += tl.dot(x, a_t)
    out = (acc * scale).to(u_ptr.dtype.element_ty)
    tl.store(u_ptr + r64[:, None] * R + rr[None, :], out, mask=(rows[:, None] < T) & (rr[None, :] < R))


@triton.jit
def backward_kernel(x_ptr, a_ptr, gu_ptr, gx_ptr, part_ptr, seed_ptr, T, K: tl.constexpr, sx, sg, R, thresh,
                    scale,
                    CHUNK: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BR: tl.constexpr,
                    HAS_GX: tl.constexpr):  # fmt: skip
    chunk = tl.program_id(0)
    k0 = tl.program_id(1) * BK
    cols = k0 + tl.arange(0, BK)
    rr = tl.arange(0, BR)
    seed = tl.load(seed_ptr)
    a = tl.load(
        a_ptr + rr[:, None] * K + cols[None, :], mask=(rr[:, None] < R) & (cols[None, :] < K), other=0.0
    )
    part = tl.zeros([BR, BK], dtype=tl.float32)
    for t0 in range(0, CHUNK, BT):
        rows = chunk * CHUNK + t0 + tl.arange(0, BT)
        r64 = rows.to(tl.int64)
        inside = (rows[:, None] < T) & (cols[None, :] < K)
        kept = keep(seed, r64, k0, K, thresh, BK)
        gu = tl.load(gu_ptr + r64[:, None] * R + rr[None, :], mask=(rows[:, None] < T) & (rr[None, :] < R),
                     other=0.0)  # fmt: skip
        x = tl.load(x_ptr + r64[:, None] * sx + cols[None, :], mask=inside, other=0.0)
        x = tl.where(kept, x, tl.zeros_like(x))
        part += tl.dot(tl.trans(gu), x)
        if HAS_GX:
            through = tl.dot(gu, a)
            g = tl.load(gx_ptr + r64[:, None] * sg + cols[None, :], mask=inside, other=0.0).to(tl.float32)
            g += tl.where(kept, through * scale, 0.0)
            tl.store(gx_ptr + r64[:, None] * sg + cols[None, :], g.to(gx_ptr.dtype.element_ty), mask=inside)
    base = part_ptr + chunk.to(tl.int64) * BR * K
    tl.store(base + rr[:, None] * K + cols[None, :], part * scale, mask=cols[None, :] < K)


@triton.jit
def mask_kernel(out_ptr, seed_ptr, T, K: tl.constexpr, thresh, BT: tl.constexpr, BK: tl.constexpr):
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    r64 = rows.to(tl.int64)
    k0 = tl.program_id(1) * BK
    cols = k0 + tl.arange(0, BK)
    kept = keep(tl.load(seed_ptr), r64, k0, K, thresh, BK)
    inside = (rows[:, None] < T) & (cols[None, :] < K)
    tl.store(out_ptr + r64[:, None] * K + cols[None, :], kept.to(tl.int8), mask=inside)
