"""Generation through a merged copy of a LoRA policy (the GRPO `fast` profile).

Sampling through a PEFT model runs, for each of the 7 projections in every layer, the frozen matmul
plus dropout, A, B, scaling and an add: at decode time, where each token is a handful of tiny matmuls,
those extra launches cost more than the base model. A copy of the model whose projection weights are
W + scale·B·A runs plain matmuls instead. Only the adapted projections get their own memory (the
embeddings, norms and head are shared with the policy), and `sync()` rewrites them from the current
adapter before each generation, so the samples come from the policy being trained.

Merging in place (PEFT's merge_adapter / unmerge_adapter) would be cheaper, but unmerging in bf16
does not give back the frozen weights bit for bit, and the error would build up over thousands of steps.

With `liger=True` (a Qwen2 copy on a GPU, liger-kernel installed) the copy's own norm and MLP modules run
Liger's Triton RMSNorm and SwiGLU, and its RoPE runs while it samples (`sampling()`): a batch-128 decode step
of the 7B is ~11 ms, ~3 ms of it small elementwise, norm and copy kernels that these fuse (measured 11.55 →
9.33 ms a step, bench/NOTES.md). Only the copy changes: the policy being trained keeps its own modules, and
transformers' module-wide classes and functions are put back.

With `fp8=True` (bf16 weights; the caller decides that the card has FP8 matmuls) each adapted projection of
the copy holds W + scale·B·A in FP8 (`Fp8Linear`: e4m3, a power-of-two scale an output row, as the
`fp8_base` training layers quantise W), and runs one `torch._scaled_mm` with its input quantised by row. A
decode step of the 7B at batch 128 is mostly weight reads (~6 of its ~9 ms are the projections' matmuls):
FP8 halves the bytes read, and the copy takes half the memory. This is the precision choice `fp8_base`
already makes for the policy being trained (whose base products are FP8): the sampler rounds where that
policy rounds, up to the adapter's term, which it rounds with W here and keeps in bf16 there. TRL trains on
the policy's own log-probabilities of these samples, as it does with any sampler that rounds otherwise (the
bf16 copy's Liger kernels round elsewhere than HF's modules too); it does not reweight for the difference.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from torch import nn

from mcqflow.train.fast.lora_fused import FP8, quantized_input, row_quantizer

log = logging.getLogger(__name__)
_QWEN2_GLOBALS = ("Qwen2RMSNorm", "Qwen2MLP", "apply_rotary_pos_emb")


def liger_kernels(model, what: str = "sampling") -> bool:
    """Liger's RMSNorm and SwiGLU on `model`'s own modules; False (nothing changed) where they cannot run.
    `what` names the use in the log line."""
    if model.device.type != "cuda" or model.config.model_type != "qwen2":
        log.info("liger %s: a Qwen2 model on a GPU only; running the plain modules", what)
        return False
    try:
        from liger_kernel.transformers import apply_liger_kernel_to_qwen2
    except ImportError:
        log.warning("liger %s wants liger-kernel: pip install liger-kernel (running without)", what)
        return False
    from transformers.models.qwen2 import modeling_qwen2

    saved = {name: getattr(modeling_qwen2, name) for name in _QWEN2_GLOBALS}
    try:
        apply_liger_kernel_to_qwen2(
            rope=False, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False,
            model=model,
        )  # fmt: skip
    finally:  # it also swaps the module-wide classes, for models built later: those stay as they were
        for name, value in saved.items():
            setattr(modeling_qwen2, name, value)
    return True


@contextmanager
def liger_rope(on: bool = True):
    """Liger's RoPE in place of transformers' Qwen2 one for the calls inside (a module-wide function, so
    only for the duration; a CUDA graph captured inside keeps the kernels it captured)."""
    if not on:
        yield
        return
    from liger_kernel.transformers.rope import liger_rotary_pos_emb
    from transformers.models.qwen2 import modeling_qwen2

    own = modeling_qwen2.apply_rotary_pos_emb
    modeling_qwen2.apply_rotary_pos_emb = liger_rotary_pos_emb
    try:
        yield
    finally:
        modeling_qwen2.apply_rotary_pos_emb = own


def rescale(
    raw: torch.Tensor, sx: torch.Tensor, sw: torch.Tensor, bias: torch.Tensor | None, dtype
) -> torch.Tensor:
    """raw [rows, n] (a product of row-quantised operands, taken with unit scales) times the input's row
    scales sx [rows, 1] and the weight's sw [1, n], plus bias, computed in fp32, out in `dtype`: on a GPU one
    Triton kernel (`fp8_scale_kernels`), one pass; elsewhere torch's operations."""
    if not raw.is_cuda:
        out = raw.float() * sx * sw
        return (out if bias is None else out + bias.float()).to(dtype)
    from mcqflow.train.fast.fp8_scale_kernels import rescale_kernel

    return _rescale_triton(rescale_kernel, raw, sx, sw, bias, dtype)


def _rescale_triton(kernel, raw, sx, sw, bias, dtype):
    rows, n = raw.shape
    out = raw if raw.dtype == dtype else torch.empty(rows, n, dtype=dtype, device=raw.device)
    if rows:
        block = 1024
        grid = (rows, -(-n // block))
        kernel[grid](
            raw, out, sx, sw, raw if bias is None else bias, n, HAS_BIAS=bias is not None, BLOCK=block
        )
    return out


def swiglu_rescale(raw: torch.Tensor, sx: torch.Tensor, sw: torch.Tensor, dtype) -> torch.Tensor:
    """raw [rows, 2n] (gate's columns, then up's: one product of row-quantised operands with unit scales)
    rescaled by sx [rows, 1] and sw [1, 2n], then silu(gate) * up, in fp32, out [rows, n] in `dtype`: on a GPU
    one Triton kernel (`fp8_scale_kernels`), one pass; elsewhere torch's operations."""
    if not raw.is_cuda:
        g, u = (raw.float() * sx * sw).chunk(2, dim=-1)
        return (torch.nn.functional.silu(g) * u).to(dtype)
    from mcqflow.train.fast.fp8_scale_kernels import swiglu_rescale_kernel

    return _swiglu_rescale_triton(swiglu_rescale_kernel, raw, sx, sw, dtype)


def _swiglu_rescale_triton(kernel, raw, sx, sw, dtype):
    rows, n = raw.shape[0], raw.shape[1] // 2
    out = torch.empty(rows, n, dtype=dtype, device=raw.device)
    if rows:
        block = 1024
        kernel[(rows, -(-n // block))](raw, out, sx, sw, n, BLOCK=block)
    return out


class Fp8Linear(nn.Module):
    """A sampling copy's projection held in FP8: its weight quantised by output row (`load`), its input by
    row (once for the projections sharing it), one `_scaled_mm` with full-precision accumulation, out in the
    input's dtype.

    `tensor_scaled`: the product taken with unit scales, and the row scales (and bias) applied after in one
    pass (`rescale`). cuBLAS's row-scaled FP8 kernels are 10-112% slower than its tensor-scaled ones at
    decode's 16-128 rows (docs/speed.md, tenth round). The scales are powers of two, so without a bias the
    result is the row-scaled one's up to summation order; with a bias the product comes out in fp32 and is
    rounded once, as there. A tensor-scaled copy runs q/k/v as one product (`Fp8Group`) and its MLP as
    `Fp8SwiGLU` (`MergedCopy`): those `Fp8Linear`s are then gone from it."""

    def __init__(
        self,
        out_features: int,
        in_features: int,
        bias: torch.Tensor | None,
        device,
        tensor_scaled: bool = False,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.register_buffer("w8", torch.zeros(shape, dtype=FP8, device=device), persistent=False)
        self.register_buffer("sw", torch.ones(1, out_features, device=device), persistent=False)
        self.register_buffer("one", torch.ones((), device=device), persistent=False)
        self.bias = bias  # the policy's own (shared), or None
        self.tensor_scaled = tensor_scaled

    @staticmethod
    def fits(weight: torch.Tensor) -> bool:
        """bf16 (what `_scaled_mm` gives out with row scales) and both widths multiples of 16."""
        return weight.dtype == torch.bfloat16 and weight.shape[0] % 16 == 0 and weight.shape[1] % 16 == 0

    @torch.no_grad()
    def load(self, weight: torch.Tensor) -> None:
        """Quantise `weight` into this layer's buffers, in place (a captured decode graph reads them there)."""
        w8, sw = row_quantizer(weight.device.type)(weight)
        self.w8.copy_(w8)
        self.sw.copy_(sw.reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tensor_scaled:
            raw, sx = unit_scaled_product(x, self.w8, self.one, self.bias is not None)
            out = rescale(raw, sx, self.sw, self.bias, x.dtype)
        else:
            x8, sx = quantized_input(x, x.reshape(-1, x.shape[-1]))  # once for q/k/v and once for gate/up
            b = None if self.bias is None else self.bias.to(x.dtype)
            out = torch._scaled_mm(x8, self.w8.t(), sx, self.sw, bias=b, out_dtype=x.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)


def unit_scaled_product(x: torch.Tensor, w8: torch.Tensor, one: torch.Tensor, biased: bool):
    """(raw, sx): x's rows quantised (once for the projections reading the same x) times the FP8 weight w8,
    taken with unit scales, in fp32 where a bias is to be added after (rounded once, with it) and in x's dtype
    otherwise; sx the input's row scales, for `rescale` or `swiglu_rescale` to apply."""
    x8, sx = quantized_input(x, x.reshape(-1, x.shape[-1]))
    raw = torch._scaled_mm(x8, w8.t(), one, one, out_dtype=torch.float32 if biased else x.dtype)
    return raw, sx


class Fp8Group(nn.Module):
    """Projections that read one input (q/k/v), held as one FP8 weight (their rows stacked) and taken as one
    tensor-scaled product, the row scales and biases applied after in one pass (`rescale`). Each member
    (`Fp8Slice`, in the projection's place) returns its columns of that product: the first to be called
    with an input computes it, and it is kept until every member has taken its share. A layer's q/k/v
    as one product: 9.8 µs against 20 µs for the three (128 rows, tensor-scaled; tenth round)."""

    def __init__(self, sizes: list[int], in_features: int, biases: list[torch.Tensor] | None, device):
        super().__init__()
        self.in_features, self.sizes = in_features, sizes
        self.register_buffer(
            "w8", torch.zeros(sum(sizes), in_features, dtype=FP8, device=device), persistent=False
        )
        self.register_buffer("sw", torch.ones(1, sum(sizes), device=device), persistent=False)
        self.register_buffer("one", torch.ones((), device=device), persistent=False)
        self.biases = biases  # the policy's own (shared), copied into `bias` at each load
        bias = None if biases is None else torch.cat([b.detach() for b in biases])
        self.register_buffer("bias", bias, persistent=False)
        self.starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self._held: tuple[torch.Tensor, list[torch.Tensor], set[int]] | None = None

    @torch.no_grad()
    def load(self, index: int, weight: torch.Tensor) -> None:
        """Quantise member `index`'s merged weight into its rows of the group's buffers, in place."""
        a, b = self.starts[index], self.starts[index] + self.sizes[index]
        w8, sw = row_quantizer(weight.device.type)(weight)
        self.w8[a:b].copy_(w8)
        self.sw[:, a:b].copy_(sw.reshape(1, -1))
        if self.biases is not None:
            self.bias[a:b].copy_(self.biases[index])

    def take(self, index: int, x: torch.Tensor) -> torch.Tensor:
        held = self._held
        if held is None or held[0] is not x or index in held[2]:
            raw, sx = unit_scaled_product(x, self.w8, self.one, self.bias is not None)
            out = rescale(raw, sx, self.sw, self.bias, x.dtype).reshape(*x.shape[:-1], -1)
            parts = [out[..., a : a + n] for a, n in zip(self.starts, self.sizes, strict=True)]
            held = self._held = (x, parts, set())
        held[2].add(index)
        if len(held[2]) == len(self.sizes):
            self._held = None  # every member has its share: let go of the input and the product
        return held[1][index]


class Fp8Slice(nn.Module):
    """A member of an `Fp8Group` in a projection's place: its columns of the group's product."""

    def __init__(self, group: Fp8Group, index: int):
        super().__init__()
        self.group, self.index = group, index  # (a submodule of each member: named_modules lists it once)
        self.in_features, self.out_features = group.in_features, group.sizes[index]

    def load(self, weight: torch.Tensor) -> None:
        self.group.load(self.index, weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.group.take(self.index, x)


class Fp8SwiGLU(nn.Module):
    """A SwiGLU MLP (down(silu(gate(x)) * up(x))) of FP8 projections: gate and up as one weight (their rows
    stacked, `gate`/`up` load into them) and one tensor-scaled product, silu(gate) * up computed in the pass
    that applies the row scales (`swiglu_rescale`), so neither gate's nor up's output is written; down an
    `Fp8Linear`. A layer's gate/up as one product: 56.5 µs against 61.4 µs (128 rows, tenth round), and one
    pass over the product instead of two rescales and a SwiGLU."""

    def __init__(self, gate: Fp8Linear, up: Fp8Linear, down: Fp8Linear):
        super().__init__()
        assert gate.bias is None and up.bias is None and gate.out_features == up.out_features
        self.width = gate.out_features
        self.pair = Fp8Group([gate.out_features, up.out_features], gate.in_features, None, gate.w8.device)
        self.gate, self.up = Fp8Slice(self.pair, 0), Fp8Slice(self.pair, 1)
        self.down_proj = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw, sx = unit_scaled_product(x, self.pair.w8, self.pair.one, biased=False)
        h = swiglu_rescale(raw, sx, self.pair.sw, x.dtype)
        return self.down_proj(h.reshape(*x.shape[:-1], self.width))


def _fuse_shared_inputs(model, targets: list) -> list:
    """`model`'s tensor-scaled FP8 projections that read one input as one product: q/k/v (an `Fp8Group`)
    and, in a SiLU-gated MLP, gate/up with the SwiGLU in the rescale pass (`Fp8SwiGLU`). Returns `targets`
    with each fused projection's sink replaced by its member (which loads into the group's rows)."""
    swap: dict[int, nn.Module] = {}
    silu = getattr(model.config, "hidden_act", None) in ("silu", "swish")
    for name, mod in list(model.named_modules()):
        qkv = [getattr(mod, n, None) for n in ("q_proj", "k_proj", "v_proj")]
        if (
            all(isinstance(p, Fp8Linear) and p.tensor_scaled for p in qkv)
            and len({p.in_features for p in qkv}) == 1
            and len({p.bias is None for p in qkv}) == 1
        ):
            biases = None if qkv[0].bias is None else [p.bias for p in qkv]
            group = Fp8Group([p.out_features for p in qkv], qkv[0].in_features, biases, qkv[0].w8.device)
            for i, (leaf, p) in enumerate(zip(("q_proj", "k_proj", "v_proj"), qkv, strict=True)):
                member = Fp8Slice(group, i)
                setattr(mod, leaf, member)
                swap[id(p)] = member
        glu = [getattr(mod, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if silu and all(isinstance(p, Fp8Linear) and p.tensor_scaled for p in glu):
            gate, up, down = glu
            if gate.bias is None and up.bias is None and gate.out_features == up.out_features:
                fused = Fp8SwiGLU(gate, up, down)
                parent, _, leaf = name.rpartition(".")
                model.get_submodule(parent).register_module(leaf, fused)
                swap[id(gate)], swap[id(up)] = fused.gate, fused.up
    return [(layer, swap.get(id(sink), sink)) for layer, sink in targets]


class MergedCopy:
    """A plain-model twin of `peft_model` (LoRA on an unquantized base) for sampling."""

    def __init__(self, peft_model, liger: bool = False, fp8: bool = False, fp8_tensor_scaled: bool = False):
        from peft.tuners.lora import LoraLayer

        base = peft_model.get_base_model()
        with torch.device("meta"):
            copy = type(base)(base.config)
        # (LoRA layer, where its merged weight goes: the copy's bf16 weight, or an Fp8Linear to load)
        self.targets: list[tuple[LoraLayer, torch.Tensor | Fp8Linear]] = []
        self._scratch: torch.Tensor | None = None  # FP8: one merge buffer, as large as the largest weight
        for name, mod in copy.named_modules():
            src = base.get_submodule(name) if name else base
            if isinstance(src, LoraLayer):
                w, bias = src.get_base_layer().weight, src.get_base_layer().bias
                if fp8 and Fp8Linear.fits(w):
                    sink = Fp8Linear(w.shape[0], w.shape[1], bias, w.device, tensor_scaled=fp8_tensor_scaled)
                    parent, _, leaf = name.rpartition(".")
                    copy.get_submodule(parent).register_module(leaf, sink)
                    if self._scratch is None or self._scratch.numel() < w.numel():
                        self._scratch = torch.empty(w.numel(), dtype=w.dtype, device=w.device)
                    self.targets.append((src, sink))
                    continue
                merged = torch.empty(w.shape, dtype=w.dtype, device=w.device)
                mod.weight = nn.Parameter(merged, requires_grad=False)
                if getattr(mod, "bias", None) is not None:
                    mod.bias = bias
                self.targets.append((src, merged))
                continue
            for pname, _ in list(mod.named_parameters(recurse=False)):
                setattr(mod, pname, getattr(src, pname))
            for bname, _ in list(mod.named_buffers(recurse=False)):
                persistent = bname not in mod._non_persistent_buffers_set
                mod.register_buffer(bname, getattr(src, bname), persistent=persistent)
        leftover = [n for n, t in [*copy.named_parameters(), *copy.named_buffers()] if t.is_meta]
        if leftover:
            raise RuntimeError(f"merged copy: no weights for {leftover[:3]}")
        copy.generation_config = base.generation_config
        copy.eval()
        self.model = copy
        self.fp8 = any(isinstance(sink, Fp8Linear) for _, sink in self.targets)
        self.liger = liger and liger_kernels(copy)
        if fp8_tensor_scaled:  # (after Liger, whose SwiGLU would otherwise take the fused MLP's forward)
            self.targets = _fuse_shared_inputs(copy, self.targets)

    def sampling(self):
        """While the copy samples: Liger's RoPE in place of transformers' (`liger_rope`)."""
        return liger_rope(self.liger)

    @staticmethod
    def supports(model) -> bool:
        """LoRA on an unquantized base (a 4-bit base would need a dequantized copy: the memory it saves)."""
        from peft import PeftModel

        if not isinstance(model, PeftModel):
            return False
        from peft.tuners.lora import LoraLayer
        from torch.distributed.tensor import DTensor

        layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        weights = [m.get_base_layer().weight for m in layers]
        # Sharded weights (FSDP2's DTensors, ZeRO-3's partitioned parameters, which carry a `ds_id`) stay
        # with TRL's path, which gathers them for generation.
        return bool(layers) and all(
            w.dtype.is_floating_point and not isinstance(w, DTensor) and not hasattr(w, "ds_id")
            for w in weights
        )

    @torch.no_grad()
    def sync(self) -> None:
        """Write W + scale·B·A of the active adapter(s) into the copy's projections."""
        for layer, sink in self.targets:
            w = layer.get_base_layer().weight
            merged = sink if isinstance(sink, torch.Tensor) else self._scratch[: w.numel()].view(w.shape)
            merged.copy_(w)
            for name in layer.active_adapters:
                if name in layer.lora_A:
                    merged += layer.get_delta_weight(name).to(merged.dtype)
            if not isinstance(sink, torch.Tensor):  # an Fp8Linear, or a member of a fused group
                sink.load(merged)

    def generate(self, **kwargs):
        self.sync()
        with self.sampling():
            return self.model.generate(**kwargs)
