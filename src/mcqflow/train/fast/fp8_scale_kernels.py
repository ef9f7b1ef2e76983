"""The Triton kernel of `merged.rescale` (imported by it on first use, on a GPU; see its docstring)."""

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
