"""Where the GPU time of GRPO's decode step and of a LoRA training step goes (Qwen2.5-7B architecture, random
weights, one GPU): the measurements behind the next levers of issue #17, not a benchmark of the pipeline
(`mcqflow bench` is that).

decode  graph-decoded generation of 128 x 256 new tokens after a 160-token prompt (`decode.Decoder`) through
        a merged copy (`merged.MergedCopy`); then eager decode steps under torch.profiler, their kernels
        grouped, so that the graph's ms a step can be split. (Commit 27da937 also measured q/k/v and gate/up
        fused into one matmul each: 11.55 -> 11.26 ms a step, not taken.)
train   one forward + backward of a batch with LoRA r16 on all seven projections under bf16 autocast (as the
        `fast` SFT profile runs it: bf16 LoRA inputs, no recompute), against the same with dropout 0 and
        against no adapters at all (the frozen model's own forward + backward, the floor LoRA adds to).

liger   decode plain and with Liger's kernels in the copy (`MergedCopy(liger=True)`), and the training step
        with Liger's kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy), as the SFT `fast` profile.
fused   the training step with PEFT's LoRA layers and with the fused ones, Liger on.
fp8     the fused training step with the bf16 base and with the FP8 base (`fuse_lora(fp8=True)`), the FP8
        one with its Triton quantiser, an eager one and a `torch.compile`d one (run 2231 also ran the
        variant `-fp8-fastacc`, fast accumulation in backward); each step's GPU-busy share (kernel time over wall time), to tell a GPU-bound step from one
        the CPU holds back. First each quantiser alone: CPU time a call (a small tensor) and GPU time (a
        large one), and whether its bits equal `quantize_rows`'.
decode-fp8  decode with Liger's kernels in the copy, then the same with the FP8 copy (`MergedCopy(fp8=True)`)
decode-rows the decode step of `fast`'s copy (Liger, FP8 tensor-scaled) at 128, 96, 64 and 16 rows, 480 new
            tokens (the graph replayed over ~640 slots), with its eager kernels by class at each
mm-decode   each projection shape of the 7B (and q/k/v, gate/up fused) at decode's 128, 64 and 16 rows, in a
            CUDA graph over 28 distinct weights: bf16, FP8 with row scales, FP8 with one scale a tensor, and the
            input's quantiser; microseconds a layer and weight GB/s

dropout     LoRA's dropout inside the adapter's products (`fused_dropout`) against torch's: one projection's
            adapter work alone (8192 tokens, inputs 3584 and 18944 wide), then the training step

swiglu-pass the fused MLP's passes (`lora_swiglu`: h = silu(G + ug Bgᵀ) (U + uu Buᵀ) and its backward) at SFT's
            8192 tokens on the 7B's MLP (18944 wide, rank 16, G and U as one stacked tensor), in several tiles,
            against what they replace: the two adds of the adapters' products (`addmm_`) and Liger's SwiGLU

Usage: python bench/profile_gpu.py decode|train|liger|fused|fp8|decode-fp8|decode-rows|mm-decode|dropout|swiglu-pass [...]   (prints a report; JSON lines prefixed `ROW `)
"""

from __future__ import annotations

import copy as copy_module
import functools
import json
import sys
import time
from collections import defaultdict

import torch

ROWS: list[dict] = []


def row(**kw) -> None:
    ROWS.append(kw)
    print("ROW " + json.dumps(kw), flush=True)


def random_7b():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mcqflow.modeling.models import ARCHITECTURES, QWEN2_5_COMMON

    cfg = Qwen2Config(**QWEN2_5_COMMON, **ARCHITECTURES["qwen2.5-7b"], eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    return model


def kernel_groups(prof) -> dict[str, float]:
    """GPU microseconds by kernel class (matmul, attention, elementwise, norm, sampling, ...)."""
    groups: dict[str, float] = defaultdict(float)
    rules = [
        ("matmul", ("gemm", "gemv", "cutlass", "sm90_xmma", "nvjet", "splitk")),
        ("attention", ("flash", "fmha", "attention", "efficient")),
        ("softmax/sampling", ("softmax", "multinomial", "sort", "cumsum", "scan", "argmax", "topk")),
        ("reduce/norm", ("reduce", "norm", "rsqrt", "mean")),
        ("copy/cat/index", ("copy", "cat", "index", "gather", "scatter", "fill")),
        ("elementwise", ("elementwise", "vectorized", "unrolled")),
    ]
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", 0) or getattr(ev, "cuda_time_total", 0)
        if (
            not t
            or ev.key.startswith(("aten::", "cuda", "Memcpy", "Memset"))
            or ev.key.startswith("ProfilerStep")
        ):
            continue
        name = ev.key.lower()
        kind = next((k for k, keys in rules if any(s in name for s in keys)), "other")
        groups[kind] += t
    return dict(groups)


def top_kernels(prof, n=15) -> list[tuple[str, float, int]]:
    evs = [
        (e.key[:90], getattr(e, "device_time_total", 0) or getattr(e, "cuda_time_total", 0), e.count)
        for e in prof.key_averages()
        if not e.key.startswith(("aten::", "cuda", "ProfilerStep"))
    ]
    return sorted(evs, key=lambda x: -x[1])[:n]


def _liger(model, **kw) -> None:
    """Liger's Triton kernels (RMSNorm, RoPE, SwiGLU; fused linear cross-entropy if asked) on `model`. The
    RoPE function is patched module-wide, so this part runs after the others."""
    from liger_kernel.transformers import apply_liger_kernel_to_qwen2

    apply_liger_kernel_to_qwen2(rope=True, rms_norm=True, swiglu=True, cross_entropy=False, model=model, **kw)


def decode(variants=("plain",), batches=(128,), new: int = 256) -> None:
    from peft import get_peft_model
    from transformers import GenerationConfig

    from mcqflow.train.fast.merged import MergedCopy
    from mcqflow.train.training import SFTParams, lora_config

    policy = get_peft_model(random_7b(), lora_config(SFTParams(finetune="lora")))
    prompt = 160
    gc = GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new,
                          eos_token_id=2, pad_token_id=0)  # fmt: skip
    for variant in variants:
        copy = MergedCopy(policy, liger="liger" in variant, fp8="fp8" in variant,
                          fp8_tensor_scaled="tensor" in variant)  # fmt: skip
        copy.sync()
        for batch in batches:
            ids = torch.randint(10, 30000, (batch, prompt), device="cuda")
            mask = torch.ones_like(ids)
            with copy.sampling():
                row(part="decode", variant=variant, rows=batch, new=new, **_decode_times(copy, ids, mask, gc))
            torch.cuda.empty_cache()
        del copy
        torch.cuda.empty_cache()


def _decode_times(copy, ids, mask, gc) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from mcqflow.train.fast import decode as decode_module
    from mcqflow.train.fast.decode import ATTENTION, Decoder, _attention

    dec = Decoder(copy.model)
    for _ in range(2):  # capture + warm-up
        dec.generate(ids, mask, gc)
    torch.cuda.synchronize()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        dec.generate(ids, mask, gc)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    gen_s = min(times)
    # replays alone: the decode step without the prefill. The run ended at its last slot, so its
    # counters (slot, step, position, the cache's write positions) go back 60 steps first.
    run = next(iter(dec.runs.values()))
    for t in [run.slot, run.step, run.position, *Decoder._state(run)[7:]]:
        t.sub_(60)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    widest = run.graphs[max(run.graphs)]  # the last window's graph: it covers every slot written
    for _ in range(50):
        widest.replay()
    torch.cuda.synchronize()
    step_ms = (time.perf_counter() - t0) / 50 * 1e3
    # eager decode steps under the profiler: kernels by class
    eager = Decoder(copy.model, use_graph=False)
    short = copy_module.deepcopy(gc)
    short.max_new_tokens = (
        gc.max_new_tokens - 8
    )  # the graph's cache length (448 slots), room for 5 more steps
    with _attention(copy.model, ATTENTION):
        eager._generate(ids, mask, short, None)
        decode_module._current_window[0] = None  # the eager steps attend to the whole cache
        erun = next(iter(eager.runs.values()))
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                erun.decode_step([], [2], 0, False)
            torch.cuda.synchronize()
    groups = {k: round(v / 5 / 1e3, 3) for k, v in kernel_groups(prof).items()}  # ms a step
    return dict(generation_s=round(gen_s, 3), graph_step_ms=round(step_ms, 2),
        eager_gpu_ms_by_class=groups, eager_gpu_ms=round(sum(groups.values()), 2),
        top=[(k, round(t / 5 / 1e3, 3), c // 5) for k, t, c in top_kernels(prof)],
        peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1))  # fmt: skip


def train(
    shapes=((16, 256), (32, 256), (16, 416)),
    names=("lora-dropout0.05", "lora-dropout0.0", "frozen-no-adapter"),
    liger: bool = False,
    busy_share: bool = False,
) -> None:
    from peft import get_peft_model

    from mcqflow.train.fast.lora_fused import fuse_lora
    from mcqflow.train.training import SFTParams, keep_adapter_inputs_in_compute_dtype, lora_config

    base = random_7b()
    base.config.use_cache = False
    if liger:
        _liger(base, fused_linear_cross_entropy=True)
    n = sum(p.numel() for name, p in base.named_parameters() if "embed_tokens" not in name)
    variants = {}
    for dropout in (0.05, 0.0):
        cfg = lora_config(SFTParams(finetune="lora"))
        cfg.lora_dropout = dropout
        variants[f"lora-dropout{dropout}"] = cfg
    for name in names:
        if name == "frozen-no-adapter":
            model = base
            model.requires_grad_(False)
            model.enable_input_require_grads()  # something to differentiate: the input embeddings' output
        else:
            cfg_name, _, how = name.partition("-fused")
            model = get_peft_model(base, variants[cfg_name])
            keep_adapter_inputs_in_compute_dtype(model)
            if name.endswith("-fused") or how:
                fuse_lora(model, fp8="fp8" in how, fused_dropout="fdrop" in how)
            restore = _fp8_variant(how)
        model.train()
        for b, t in shapes:
            ids = torch.randint(10, 30000, (b, t), device="cuda")
            try:
                times = []
                for i in range(4):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        out = model(input_ids=ids, labels=ids)
                    out.loss.backward()
                    torch.cuda.synchronize()
                    if i:
                        times.append(time.perf_counter() - t0)
                    model.zero_grad(set_to_none=True)
                    del out
                s = min(times)
                busy = _gpu_busy(model, ids) if busy_share else None
                row(part="train", variant=name + "-liger" * liger, batch=b, tokens=t, step_s=round(s, 4),
                    tokens_per_s=round(b * t / s), mfu_4n=round(4 * n * b * t / s / 989e12, 3),
                    peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1), gpu_busy=busy)  # fmt: skip
            except torch.OutOfMemoryError:
                row(part="train", variant=name + "-liger" * liger, batch=b, tokens=t, skipped="out of memory")
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        if name != "frozen-no-adapter":
            restore()
            base = model.unload()  # the plain model back, for the next variant


def _fp8_variant(how: str):
    """Patch lora_fused for a variant of the FP8 path (`-fp8-eagerq`: the eager quantiser, `-fp8-compiled`: it
    under `torch.compile`, both in place of the Triton kernel; `-fp8-fastacc`: fast accumulation in
    backward's products too); returns the undo."""
    from mcqflow.train.fast import lora_fused

    saved = lora_fused.row_quantizer, lora_fused._mm8
    if how.endswith("-eagerq"):
        lora_fused.row_quantizer = lambda device_type: lora_fused.quantize_rows
    if how.endswith("-compiled"):
        lora_fused.row_quantizer = lambda device_type: _compiled_quantizer()
    if how.endswith("-fastacc"):

        def fast_mm8(a, b8, sb):
            a8, sa = saved[0](a.device.type)(a)
            return torch._scaled_mm(a8, b8.t(), sa, sb, out_dtype=torch.bfloat16, use_fast_accum=True)

        lora_fused._mm8 = fast_mm8

    def restore():
        lora_fused.row_quantizer, lora_fused._mm8 = saved

    return restore


@functools.cache
def _compiled_quantizer():
    """`quantize_rows` under `torch.compile` (the FP8 path's first quantiser), compiled once for both uses."""
    from mcqflow.train.fast import lora_fused

    return torch.compile(lora_fused.quantize_rows, dynamic=True, fullgraph=True)


def _gpu_busy(model, ids) -> float:
    """Kernel time over wall time of one training step under the profiler (1.0: the GPU never waited)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    kernels = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type.name == "CUDA") / 1e6
    return round(kernels / wall, 3)


def liger() -> None:
    """The decode step and the training step again with Liger's kernels (the SFT `fast` profile's)."""
    decode(("plain", "liger"))
    train(shapes=((16, 256), (32, 256)), names=("frozen-no-adapter", "lora-dropout0.05"), liger=True)


def fused() -> None:
    """The training step with PEFT's LoRA layers and with the fused ones (`fuse_lora`), Liger on, as `fast`."""
    train(shapes=((32, 256), (16, 416)), names=("lora-dropout0.05", "lora-dropout0.05-fused"), liger=True)


def quantizers() -> None:
    """Each row quantiser alone: CPU microseconds a call on a 16 x 3584 tensor (GPU work negligible), GPU
    microseconds on 8192 x 18944 (the gate/up gradient of a 32 x 256 batch), bits against `quantize_rows`."""
    from mcqflow.train.fast import lora_fused

    kinds = {
        "eager": lora_fused.quantize_rows,
        "compiled": _compiled_quantizer(),
        "triton": lora_fused._triton_quantizer(),
    }
    small = torch.randn(16, 3584, device="cuda", dtype=torch.bfloat16)
    big = (
        torch.randn(8192, 18944, device="cuda", dtype=torch.bfloat16)
        * torch.logspace(-4, 4, 8192, device="cuda").reshape(-1, 1).bfloat16()
    )
    want = lora_fused.quantize_rows(big)
    for name, fn in kinds.items():
        for t in (small, big, small[:, :1000], big[:7]):
            fn(t)  # compile / warm up for each shape
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(2000):
            fn(small)
        torch.cuda.synchronize()
        cpu_us = (time.perf_counter() - t0) / 2000 * 1e6
        t0 = time.perf_counter()
        for _ in range(20):
            fn(big)
        torch.cuda.synchronize()
        gpu_us = (time.perf_counter() - t0) / 20 * 1e6
        got = fn(big)
        same = bool(
            torch.equal(got[1], want[1]) and torch.equal(got[0].view(torch.uint8), want[0].view(torch.uint8))
        )
        row(part="quantizer", kind=name, us_a_call_small=round(cpu_us, 1), us_big=round(gpu_us, 1),
            big_gb_per_s=round(big.numel() * 3 / gpu_us / 1e3, 1), same_bits_as_eager=same)  # fmt: skip


def decode_fp8() -> None:
    """The decode step of the Liger sampling copy (`fast`'s before the 9th round) and of the FP8 one."""
    decode(("liger", "liger-fp8"))


def decode_rows() -> None:
    """`fast`'s sampling copy (Liger's kernels, FP8 tensor-scaled) by the rows a decode step runs: what a
    finished row still costs after compaction's buckets, and where a 128-row step's time goes now."""
    decode(("liger-fp8-tensor",), batches=(128, 96, 64, 16), new=480)


def mm_decode(rows=(128, 64, 16), layers: int = 28) -> None:
    """One projection of every layer at decode time, as a decode graph runs it: `layers` distinct weights
    (so nothing is served from L2), replayed in a CUDA graph (no launch cost), for the 7B's projection
    shapes and the fused q/k/v and gate/up ones. bf16 `mm`, FP8 `_scaled_mm` with row scales (the sampling
    copy's `Fp8Linear`) and with one scale a tensor, and the row quantiser alone: microseconds a layer and
    the weight bytes read a second."""
    from mcqflow.train.fast.lora_fused import row_quantizer

    quantize = row_quantizer("cuda")
    shapes = {"q/o": (3584, 3584), "k/v": (512, 3584), "qkv": (4608, 3584), "gate/up": (18944, 3584),
              "gate_up": (37888, 3584), "down": (3584, 18944)}  # fmt: skip
    for name, (n, k) in shapes.items():
        w = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(layers)]
        w8 = [quantize(t) for t in w]
        for m in rows:
            for way, fn in _mm_ways(torch.randn(m, k, device="cuda", dtype=torch.bfloat16), w, w8, quantize):
                try:
                    us = _graph_us(fn) / layers
                except RuntimeError as e:  # a kernel this torch has no FP8 path for
                    row(part="mm-decode", shape=name, rows=m, way=way, error=str(e).splitlines()[0][:120])
                    continue
                nbytes = m * k * 3 if way == "quantise-input" else n * k * (2 if way == "bf16" else 1)
                row(part="mm-decode", shape=name, n=n, k=k, rows=m, way=way, us=round(us, 2),
                    gb_per_s=round(nbytes / us / 1e3, 1))  # fmt: skip
        w.clear(), w8.clear()
        torch.cuda.empty_cache()


def _mm_ways(x, w, w8, quantize):
    """(name, a function running one layer's product for every weight) for `mm_decode`."""
    x8, sx = quantize(x)
    one = torch.ones((), device=x.device)
    bf16 = torch.bfloat16
    yield "bf16", lambda: [x @ t.t() for t in w]
    yield (
        "fp8-row",
        lambda: [torch._scaled_mm(x8, t.t(), sx, s.reshape(1, -1), out_dtype=bf16) for t, s in w8],
    )
    yield "fp8-tensor", lambda: [torch._scaled_mm(x8, t.t(), one, one, out_dtype=bf16) for t, _ in w8]
    yield "quantise-input", lambda: [quantize(x) for _ in w]


def _graph_us(fn, replays: int = 20) -> float:
    """Microseconds one call of `fn` takes replayed in a CUDA graph (after a warm-up on a side stream)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(replays):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / replays * 1e6


def dropout() -> None:
    """LoRA's dropout drawn inside the adapter's products (`fused_dropout`, lora_dropout.py) against torch's
    (the fused layer without the lever): first one projection's adapter work alone, forward and backward,
    at SFT's 8192 tokens for the 7B's two input widths; then the training step (FP8 base, Liger), with
    dropout 0 as the floor."""
    for k in (3584, 18944):
        for name, us in _dropout_ways(8192, k).items():
            row(part="dropout-kernels", way=name, tokens=8192, k=k, us=round(us, 1),
                x_gb_per_s=round(8192 * k * 2 / us / 1e3, 1))  # fmt: skip
        torch.cuda.empty_cache()
    names = ("lora-dropout0.05-fused-fp8", "lora-dropout0.05-fused-fp8-fdrop", "lora-dropout0.0-fused-fp8")
    train(shapes=((32, 256), (8, 416)), names=names, liger=True, busy_share=True)


def _dropout_ways(t: int, k: int, p: float = 0.05, r: int = 16) -> dict[str, float]:
    """Microseconds of one projection's adapter work with dropout (forward's u, backward's grad_A and the
    input gradient added to grad_x), torch's way and the fused kernels'."""
    from mcqflow.train.fast import lora_dropout
    from mcqflow.train.fast.lora_fused import _dropout, _undrop

    x, gx = (torch.randn(t, k, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    a = torch.randn(r, k, device="cuda", dtype=torch.bfloat16)
    gu = torch.randn(t, r, device="cuda", dtype=torch.bfloat16)
    seed = lora_dropout.new_seed(x.device)

    def torch_way():
        u = _dropout(x, p)[0] @ a.t()
        xd, mask = _dropout(x, p)  # backward's redraw
        gx.add_(_undrop(gu @ a, mask, p))
        return u, gu.t() @ xd

    def fused_way():
        return lora_dropout.forward(x, a, p, seed), lora_dropout.backward(x, a, gu, gx, p, seed)

    out = {}
    for name, fn in (("torch", torch_way), ("fused", fused_way)):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        out[name] = (time.perf_counter() - t0) / 20 * 1e6
    return out


SWIGLU_TILES = (
    dict(BT=64, BN=64, num_warps=4),  # lora_swiglu's
    dict(BT=64, BN=128, num_warps=4),
    dict(BT=64, BN=128, num_warps=8),
    dict(BT=32, BN=128, num_warps=4),
    dict(BT=128, BN=64, num_warps=8),
    dict(BT=32, BN=256, num_warps=8),
)


def swiglu_pass(t: int = 8192, n: int = 18944, r: int = 16) -> None:
    """Microseconds of the fused MLP's forward and backward passes by tile, and of the work they replace."""
    from mcqflow.train.fast import lora_swiglu

    def cuda(*shape, scale=1.0):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16) * scale

    stacked, ug, uu, dh = cuda(t, 2 * n), cuda(t, r), cuda(t, r), cuda(t, n)
    bg, bu = cuda(n, r, scale=0.1), cuda(n, r, scale=0.1)
    g, u = stacked[:, :n], stacked[:, n:]
    h = torch.empty(t, n, device="cuda", dtype=torch.bfloat16)
    k = lora_swiglu.kernels()
    for tile in SWIGLU_TILES:
        fwd = functools.partial(lora_swiglu._launch, k.swiglu_lora_forward_kernel, t, n, g, u, ug, bg, uu, bu,
                                out=h, tile=tile)  # fmt: skip
        bwd = functools.partial(lora_swiglu._launch, k.swiglu_lora_backward_kernel, t, n, g, u, ug, bg, uu, bu,
                                dh=dh, tile=tile)  # fmt: skip
        for way, fn in (("fused-forward", fwd), ("fused-backward", bwd)):
            row(part="swiglu-pass", way=way, tile=tile, us=round(_eager_us(fn), 1))
    gate, up = cuda(t, n), cuda(t, n)
    row(
        part="swiglu-pass",
        way="addmm-two",
        us=round(_eager_us(lambda: (gate.addmm_(ug, bg.t()), up.addmm_(uu, bu.t()))), 1),
    )
    try:
        from liger_kernel.ops.swiglu import LigerSiLUMulFunction
    except ImportError:
        print("liger-kernel not installed: no Liger reference", flush=True)
        return
    a, b = gate.clone().requires_grad_(), up.clone().requires_grad_()

    def liger_both():  # (autograd.grad: no accumulation into a.grad and b.grad timed with it)
        torch.autograd.grad(LigerSiLUMulFunction.apply(a, b), (a, b), dh)

    row(
        part="swiglu-pass",
        way="liger-forward",
        us=round(_eager_us(lambda: LigerSiLUMulFunction.apply(a, b)), 1),
    )
    row(part="swiglu-pass", way="liger-forward-backward", us=round(_eager_us(liger_both), 1))


def _eager_us(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps * 1e6


def fp8() -> None:
    """The quantisers alone, then the fused training step with the bf16 base and the FP8 base (and variants
    of the FP8 path)."""
    quantizers()
    names = ("lora-dropout0.05-fused", "lora-dropout0.05-fused-fp8", "lora-dropout0.05-fused-fp8-compiled",
             "lora-dropout0.05-fused-fp8-eagerq", "lora-dropout0.05-fused-fp8", "lora-dropout0.05-fused")  # fmt: skip
    train(shapes=((32, 256), (8, 416)), names=names, liger=True, busy_share=True)


if __name__ == "__main__":
    for part in sys.argv[1:] or ["decode", "train"]:
        parts = {"decode": decode, "train": train, "liger": liger, "fused": fused, "fp8": fp8}
        more = {
            "decode-fp8": decode_fp8,
            "decode-rows": decode_rows,
            "mm-decode": mm_decode,
            "dropout": dropout,
            "swiglu-pass": swiglu_pass,
        }
        {**parts, **more}[part]()
