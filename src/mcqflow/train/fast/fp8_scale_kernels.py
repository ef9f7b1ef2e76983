"""The Triton kernels of `merged.rescale` and `merged.swiglu_rescale` (imported on first use, on a GPU; see
their docstrings)."""

import triton
import triton.language as tl


@triton.jit
def rescale_kernel(raw_ptr, out_ptr, sx_ptr, sw_ptr, b_ptr, N, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr):
    """out[i, j] = raw[i, j] * sx[i] * sw[j] (+ bias[j]), in fp32, stored in out's dtype: a program a row
    and BLOCK columns."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = cols < N
    v = tl.load(raw_ptr + row * N + cols, mask=inside, other=0.0).to(tl.float32)
    v = v * tl.load(sx_ptr + row) * tl.load(sw_ptr + cols, mask=inside, other=0.0)
    if HAS_BIAS:
        v += tl.load(b_ptr + cols, mask=inside, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * N + cols, v.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def swiglu_rescale_kernel(raw_ptr, out_ptr, sx_ptr, sw_ptr, N, BLOCK: tl.constexpr):
    """raw [rows, 2N]: gate's columns then up's, as one product with unit scales. out[i, j] = silu(g) * u
    with g = raw[i, j] * sx[i] * sw[j] and u = raw[i, N + j] * sx[i] * sw[N + j], in fp32, stored in out's
    dtype [rows, N]: a program a row and BLOCK columns."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = cols < N
    s = tl.load(sx_ptr + row)
    g = tl.load(raw_ptr + row * 2 * N + cols, mask=inside, other=0.0).to(tl.float32)
    u = tl.load(raw_ptr + row * 2 * N + N + cols, mask=inside, other=0.0).to(tl.float32)
    g = g * s * tl.load(sw_ptr + cols, mask=inside, other=0.0)
    u = u * s * tl.load(sw_ptr + N + cols, mask=inside, other=0.0)
    h = g * tl.sigmoid(g) * u
    tl.store(out_ptr + row * N + cols, h.to(out_ptr.dtype.element_ty), mask=inside)
