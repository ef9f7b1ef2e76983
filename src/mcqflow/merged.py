"""Generation through a merged copy of a LoRA policy (the GRPO `fast` profile).

Sampling through a PEFT model runs, for each of the 7 projections in every layer, the frozen matmul
plus dropout, A, B, scaling and an add: at decode time, where each token is a handful of tiny matmuls,
those extra launches cost more than the base model. A copy of the model whose projection weights are
W + scale·B·A runs plain matmuls instead. Only the adapted projections get their own memory (the
embeddings, norms and head are shared with the policy), and `sync()` rewrites them from the current
adapter before each generation, so the samples come from the policy being trained.

Merging in place (PEFT's merge_adapter / unmerge_adapter) would be cheaper, but unmerging in bf16
does not give back the frozen weights bit for bit, and the error would build up over thousands of steps.

With `fuse=True` the projections that read the same input (q/k/v, gate/up) keep their merged weights
side by side in one buffer and run as one matmul (`_Fused`): at decode time a batch-128 step is a row of
small matmuls, and the k and v ones (512 of 3584 rows each) are too small to read their weights at the
card's bandwidth. Each projection module stays (its weight a view into the buffer), so `sync()` and the
model's own forward are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))  # projections of one input, fused


class _Fused:
    """Projections of one input as one matmul over their weights side by side (`weight`, `bias`: the
    buffers their modules' weights and biases are views of). The first of them called with an input
    computes all; the others, called with the same tensor, take their slice. Called with another input
    (some other caller), a projection computes its own slice alone, so the answer is always its own."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, sizes: list[int]):
        self.weight, self.bias, self.sizes = weight, bias, sizes
        self.bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self._x: torch.Tensor | None = None
        self._parts: tuple[torch.Tensor, ...] = ()
        self._left: set[int] = set()

    def part(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if x is not self._x or i not in self._left:
            if self._left and x is self._x:  # asked twice before the others: compute it alone
                lo, hi = self.bounds[i], self.bounds[i + 1]
                b = None if self.bias is None else self.bias[lo:hi]
                return nn.functional.linear(x, self.weight[lo:hi], b)
            self._parts = nn.functional.linear(x, self.weight, self.bias).split(self.sizes, dim=-1)
            self._x, self._left = x, set(range(len(self.sizes)))
        self._left.discard(i)
        out = self._parts[i]
        if not self._left:  # every projection served: let go of the input and the output
            self._x, self._parts = None, ()
        return out


def _fusable(copy: nn.Module, base: nn.Module, parent: str, names: tuple[str, ...]) -> bool:
    from peft.tuners.lora import LoraLayer

    prefix = f"{parent}." if parent else ""
    mods = [copy.get_submodule(prefix + n) for n in names]
    srcs = [base.get_submodule(prefix + n) for n in names]
    return (
        all(isinstance(s, LoraLayer) for s in srcs)
        and all(type(m) is nn.Linear for m in mods)
        and len({m.in_features for m in mods}) == 1
        and len({m.bias is None for m in mods}) == 1
    )


def _fuse(copy: nn.Module, base: nn.Module) -> dict[str, torch.Tensor]:
    """Give each fusable group of `copy` one weight buffer, its modules views of it and a forward that runs
    the group's matmul once. Returns the views by module name (the merged weights `sync()` writes)."""
    views: dict[str, torch.Tensor] = {}
    parents = {name.rpartition(".")[0] for name, _ in copy.named_modules()}
    for parent in sorted(parents):
        for names in FUSED:
            try:
                ok = _fusable(copy, base, parent, names)
            except AttributeError:
                continue
            if not ok:
                continue
            prefix = f"{parent}." if parent else ""
            srcs = [base.get_submodule(prefix + n).get_base_layer() for n in names]
            sizes = [s.weight.shape[0] for s in srcs]
            w0 = srcs[0].weight
            weight = torch.empty(sum(sizes), w0.shape[1], dtype=w0.dtype, device=w0.device)
            bias = None
            if srcs[0].bias is not None:
                bias = torch.cat([s.bias.detach() for s in srcs])  # frozen: copied once
            group = _Fused(weight, bias, sizes)
            for i, (n, lo, hi) in enumerate(zip(names, group.bounds, group.bounds[1:], strict=False)):
                mod = copy.get_submodule(prefix + n)
                mod.weight = nn.Parameter(weight[lo:hi], requires_grad=False)
                mod.bias = None if bias is None else nn.Parameter(bias[lo:hi], requires_grad=False)
                mod.forward = lambda x, i=i, group=group: group.part(i, x)
                views[prefix + n] = weight[lo:hi]
    return views


class MergedCopy:
    """A plain-model twin of `peft_model` (LoRA on an unquantized base) for sampling; `fuse` runs the
    projections of one input (q/k/v, gate/up) as one matmul each."""

    def __init__(self, peft_model, fuse: bool = False):
        from peft.tuners.lora import LoraLayer

        base = peft_model.get_base_model()
        with torch.device("meta"):
            copy = type(base)(base.config)
        fused = _fuse(copy, base) if fuse else {}
        self.targets: list[tuple[LoraLayer, torch.Tensor]] = []
        for name, mod in copy.named_modules():
            src = base.get_submodule(name) if name else base
            if isinstance(src, LoraLayer) and name in fused:
                self.targets.append((src, fused[name]))
                continue
            if isinstance(src, LoraLayer):
                w = src.get_base_layer().weight
                merged = torch.empty(w.shape, dtype=w.dtype, device=w.device)
                mod.weight = nn.Parameter(merged, requires_grad=False)
                if getattr(mod, "bias", None) is not None:
                    mod.bias = src.get_base_layer().bias
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
        for layer, merged in self.targets:
            merged.copy_(layer.get_base_layer().weight)
            for name in layer.active_adapters:
                if name in layer.lora_A:
                    merged += layer.get_delta_weight(name).to(merged.dtype)

    def generate(self, **kwargs):
        self.sync()
        return self.model.generate(**kwargs)
