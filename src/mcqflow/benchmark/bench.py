"""`mcqflow bench`: the project's own sft, predict and grpo code paths against the vanilla recipe, side by
side in one run on one device, on random-init weights of a named architecture, or on real weights
(`--weights embedded` or a model folder), where GRPO's completions end where the policy ends them.

Every figure comes from the code the pipeline runs (train_sft, predict_records, train_grpo) with the
profile under test; `vanilla` is the same code with TRL's defaults (train.profile=vanilla), plus plain
HF `generate` / forward loops for predict. Rates are taken after warm-up steps, from the trainer's own
step boundaries (CUDA synchronised), and peak memory from torch's allocator.

This module runs the benches (timing, the workloads, their variants, `run`); the shapes, their records and
MFU are in `bench_shapes`, the targets and the results page in `bench_report`.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from mcqflow.benchmark.bench_report import (
    REAL_SHAPES,
    BenchResult,
    check_targets,
    markdown,
    padded_twin,
    scaling,
    write,
)
from mcqflow.benchmark.bench_shapes import (
    Shapes,
    corpus,
    device_name,
    make_records,
    matmul_weights,
    mfu,
    ragged_lengths,
    sft_length,
)
from mcqflow.core.errors import UserError
from mcqflow.core.schema import Record
from mcqflow.modeling.architectures import ARCHITECTURES
from mcqflow.modeling.models import build_random, on_gpu, synchronize, train_tokenizer
from mcqflow.train.launch import is_main_process, world_size
from mcqflow.train.profiles import PROFILES, Profile, use_fp8, use_fp8_sampling

# ------------------------------------------------------------------------------------------ timing


def _reset_memory():
    gc.collect()
    if on_gpu():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 1) if on_gpu() else None


def _peaks() -> dict:
    """Peak allocated GiB: the largest over the processes, and each process's (one GPU each). Every rank
    must call it at the same point (it is a collective under several processes)."""
    mine = _peak_gib()
    if mine is None:
        return {"peak_gib": None}
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        every: list = [None] * dist.get_world_size()
        dist.all_gather_object(every, mine)
        return {"peak_gib": max(every), "peak_gib_per_gpu": every}
    return {"peak_gib": mine}


def _distributed() -> str:
    """What accelerate runs these processes as: NO, MULTI_GPU (DDP), MULTI_CPU, FSDP, DEEPSPEED. (The
    launcher's environment says FSDP or DeepSpeed before any Accelerator exists; PartialState alone would
    call an FSDP run MULTI_GPU.)"""
    from accelerate.state import PartialState

    from mcqflow.modeling.models import under_fsdp

    if under_fsdp():
        return "FSDP"
    if on_gpu() and os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true"):
        return "DEEPSPEED"
    return PartialState().distributed_type.value


def step_timer():
    """A TrainerCallback that records the time at the start of training and the end of every step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = []  # a run the OOM back-off restarted: only the attempt that finished counts

        def on_step_begin(self, args, state, control, **kwargs):
            if not self.marks:
                synchronize()
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            synchronize()
            self.marks.append(time.perf_counter())

        def timed_from(self, warmup: int) -> float | None:
            """When the steps after `warmup` began (perf_counter), None if they did not."""
            return self.marks[warmup] if len(self.marks) > warmup else None

        def durations(self) -> list[float]:
            """Seconds of every step, warm-up included."""
            return [round(b - a, 3) for a, b in zip(self.marks, self.marks[1:], strict=False)]

        def rate(self, warmup: int, per_step: float) -> tuple[float, float]:
            """(units/s, median s/step) over the steps after `warmup`, for `per_step` units a step."""
            marks = self.marks[warmup:]
            if len(marks) < 2:
                raise RuntimeError("benchmark: too few steps after warm-up")
            dt = [b - a for a, b in zip(marks, marks[1:], strict=False)]
            return per_step * len(dt) / sum(dt), statistics.median(dt)

    return StepTimer()


class TritonCompiles:
    """Triton's JIT compilations in this process while the block runs, each (kernel, start, end) on
    `time.perf_counter`'s clock, through Triton's compile hooks (`triton.knobs.runtime.jit_cache_hook`, called
    before a kernel is compiled for a specialization the process has not run yet, and `jit_post_compile_hook`
    after), chained to any hooks already set and restored on exit.

    Why: a Triton kernel (Liger's, the fused LoRA layers') is compiled the first time the process runs it for
    a new specialization (argument dtypes, integers divisible by 16 or not, pointers aligned or not), and the
    process keeps it for every later variant. Ragged shapes meet new specializations after the warm-up steps,
    so the first variant of a bench process can pay compilations inside its timed steps that the next variant
    does not. A row says how many compilations fell inside its timed steps, and how long they took. Measured
    (docs/speed.md, sixteenth round): one kernel, 0.15-0.17 s of ~21 s of ragged GRPO steps on an H100, too
    little to be the fourteenth round's order effect."""

    def __init__(self):
        self.events: list[tuple[str, float, float]] = []
        self._starts: list[tuple[str, float]] = []
        self._runtime = None
        self.counting = False  # Triton's hooks were there and set

    def __enter__(self) -> TritonCompiles:
        try:
            from triton import knobs
        except ImportError:  # no Triton (or one older than its knobs): nothing is counted
            return self
        rt = knobs.runtime
        if not hasattr(rt, "jit_cache_hook") or not hasattr(rt, "jit_post_compile_hook"):
            return self
        self._runtime, self._saved = rt, (rt.jit_cache_hook, rt.jit_post_compile_hook)
        before, after = self._saved

        def cache_hook(**kwargs):
            self._starts.append((kwargs["fn"].name, time.perf_counter()))
            skip = before(**kwargs) if before else None
            if skip:  # the earlier hook took the compilation over: Triton compiles nothing
                self._starts.pop()
            return skip

        def post_compile_hook(**kwargs):
            if self._starts:
                name, start = self._starts.pop()
                self.events.append((name, start, time.perf_counter()))
            return after(**kwargs) if after else None

        rt.jit_cache_hook, rt.jit_post_compile_hook = cache_hook, post_compile_hook
        self.counting = True
        return self

    def __exit__(self, *exc) -> None:
        if self._runtime is not None:
            self._runtime.jit_cache_hook, self._runtime.jit_post_compile_hook = self._saved
            self._runtime = None

    def since(self, t0: float | None) -> dict:
        """The compilations that began at or after `t0` (the timed steps' start): their count and seconds.
        Empty where Triton's hooks were not there to count with."""
        if not self.counting or t0 is None:
            return {}
        timed = [(end - start) for _, start, end in self.events if start >= t0]
        return {"triton_compiles_timed": len(timed), "triton_compile_s_timed": round(sum(timed), 3)}


# ------------------------------------------------------------------------------------------ benches


def _runs(variants: list[tuple]):
    """Each variant with its place in the list (1-based, the row's `order`) and the name of its work folder.
    A list may name a variant again (A, B, B, A: in one process the variant run later can be the faster for
    that alone, docs/speed.md's fourteenth round); each run trains into a folder of its own, so no run's
    outputs (or checkpoints, were a run to save any) stand in another's."""
    seen: collections.Counter = collections.Counter()
    for order, v in enumerate(variants, 1):
        seen[v[0]] += 1
        yield order, v[0] if seen[v[0]] == 1 else f"{v[0]}-run{seen[v[0]]}", v


def bench_sft(model_dir: str, tokenizer, shapes: Shapes, work: Path, variants: list[tuple]):
    """Each variant trains `sft_steps` optimizer steps of `sft_batch x sft_accum` examples per process;
    under N processes the global batch is N times larger, so each GPU does the single-GPU work. A variant's
    shape is `fixed` (every example `sft_tokens` long) or `ragged` (lengths drawn from the reasoning range)."""
    from mcqflow.train.training import SFTParams, train_sft

    if not variants:
        return
    procs = world_size()
    per_step = shapes.sft_batch * shapes.sft_accum * procs
    n = per_step * shapes.sft_steps
    n_weights = matmul_weights(model_dir)
    data: dict[str, tuple[list[Record], float]] = {}

    def shaped(shape: str) -> tuple[list[Record], float]:
        if shape not in data:
            budget = (
                shapes.sft_tokens
                if shape == "fixed"
                else ragged_lengths(n, shapes.sft_ragged_min, shapes.sft_ragged_max)
            )
            records = make_records(tokenizer, n, budget, "sft")
            # Every record is seen once, so a step's tokens (prompt + completion, no padding) are the mean.
            data[shape] = records, per_step * statistics.mean(sft_length(tokenizer, r) for r in records)
        return data[shape]

    losses: dict[str, float] = {}
    for order, folder, (name, profile, quantization, extra, shape) in _runs(variants):
        if quantization == "nf4" and not on_gpu():
            yield {"bench": "sft", "variant": name, "order": order, "skipped": "NF4 needs a CUDA GPU"}
            continue
        records, tokens_per_step = shaped(shape)
        longest = shapes.sft_tokens if shape == "fixed" else shapes.sft_ragged_max
        params = SFTParams(
            finetune="lora",
            learning_rate=2e-4,
            num_train_epochs=1,
            per_device_train_batch_size=shapes.sft_batch,
            gradient_accumulation_steps=shapes.sft_accum
            * procs,  # split_batch gives each process sft_batch x sft_accum
            max_length=longest + 8,
            logging_steps=1000,
            trainer={"max_steps": shapes.sft_steps, "disable_tqdm": True, **extra},
        )
        timer = step_timer()
        _reset_memory()
        traced = []
        if trace := os.environ.get("MCQFLOW_BENCH_TRACE"):  # a folder: one measured step's top operators
            traced.append(trace_step(Path(trace) / f"sft-{folder}.txt", shapes.sft_warmup + 1))
        if timeline := os.environ.get("MCQFLOW_BENCH_TIMELINE"):  # a folder: the next step's Chrome trace
            traced.append(trace_whole_step(Path(timeline) / f"sft-{folder}.json.gz", shapes.sft_warmup + 2))
        try:
            with TritonCompiles() as compiles:
                metrics = train_sft(
                    records, "plain", model_dir, work / f"sft-{folder}", params, quantization=quantization,
                    profile=profile, callbacks=[timer, *traced],
                )  # fmt: skip
        except (torch.OutOfMemoryError, UserError) as e:
            if "out of memory" not in str(e).lower() and not isinstance(e, torch.OutOfMemoryError):
                raise
            yield {"bench": "sft", "variant": name, "order": order, "skipped": "CUDA out of memory"}
            continue
        tps, step_s = timer.rate(shapes.sft_warmup, per_step=tokens_per_step)
        losses[name] = metrics.get("train_loss")
        row = {
            "bench": "sft",
            "variant": name,
            "order": order,
            "shape": shape,
            "profile": profile.name,
            "levers": dataclasses.asdict(profile),
            "fp8": use_fp8(profile),  # the lever asked for and the card has FP8
            "quantization": quantization,
            "processes": procs,
            "tokens_per_s": round(tps, 1),
            "samples_per_s": round(per_step / step_s, 2),
            "step_s": round(step_s, 4),
            "steps_s": timer.durations(),
            "mfu": mfu(tps / procs, n_weights),
            **_peaks(),
            "distributed": metrics["distributed"],
            "micro_batch": metrics["micro_batch"],
            "grad_accum": metrics["grad_accum"],
            "effective_batch": metrics["effective_batch"],
            "padding_free": metrics.get("padding_free", False),
            "extra": extra,
            "train_loss": metrics.get("train_loss"),
            **compiles.since(timer.timed_from(shapes.sft_warmup)),
        }
        padded = padded_twin(name)  # the same run with padded batches, if it ran
        if row["padding_free"] and losses.get(padded) is not None and row["train_loss"] is not None:
            row["loss_vs_padded"] = round(row["train_loss"] - losses[padded], 5)
        yield row


def bench_predict(model_dir: str, shapes: Shapes, profile: Profile) -> list[dict]:
    from mcqflow.core.prompts import render_prompt
    from mcqflow.evaluation.evaluate import score
    from mcqflow.evaluation.predict import predict_records
    from mcqflow.modeling.models import load_for_inference

    _reset_memory()
    model, tok = load_for_inference(model_dir)
    records = make_records(tok, shapes.predict_questions, shapes.predict_tokens)
    prompts = [render_prompt(tok, r, "plain") for r in records]
    prompt_tokens = statistics.mean(len(tok(p, add_special_tokens=False).input_ids) for p in prompts)
    rows = []

    @torch.inference_mode()
    def vanilla(kind: str) -> None:
        for s in range(0, len(prompts), shapes.predict_batch):
            enc = tok(prompts[s : s + shapes.predict_batch], return_tensors="pt", padding=True).to(
                model.device
            )
            if kind == "generate":
                model.generate(
                    **enc,
                    max_new_tokens=shapes.predict_new_tokens,
                    min_new_tokens=shapes.predict_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                )
            else:
                model(**enc).logits[:, -1].float().softmax(-1)

    def ours(batch: int) -> None:
        predict_records(records, model, tok, "letter", "plain", batch, share_prefix=profile.share_prefix)

    def evaluate(protocol: str, rotations: tuple[int, ...], batch: int) -> None:
        score(records, model, tok, protocol, rotations=rotations, batch_size=batch)

    b = shapes.predict_batch
    cases = [
        ("vanilla-generate", lambda: vanilla("generate"), shapes.predict_batch),
        ("vanilla-forward", lambda: vanilla("forward"), shapes.predict_batch),
        (f"{profile.name}-letter", lambda: ours(shapes.predict_batch), shapes.predict_batch),
        (f"{profile.name}-letter-b4x", lambda: ours(4 * shapes.predict_batch), 4 * shapes.predict_batch),
        # `mcqflow evaluate`'s protocols, each question counted once (its four rotations or options included)
        ("evaluate-letter", lambda: evaluate("letter", (0,), b), b),
        ("evaluate-circular", lambda: evaluate("letter", (0, 1, 2, 3), b), b),
        ("evaluate-cloze", lambda: evaluate("cloze", (0,), 4 * b), 4 * b),  # batch in options: b questions
        ("evaluate-calibrated", lambda: evaluate("calibrated", (0,), b), b),
    ]
    for name, fn, batch in cases:
        _reset_memory()
        fn()  # warm-up: kernels chosen, allocator grown
        synchronize()
        t = time.perf_counter()
        fn()
        synchronize()
        dt = time.perf_counter() - t
        rows.append(
            {
                "bench": "predict",
                "variant": name,
                "batch": batch,
                "questions_per_s": round(len(prompts) / dt, 1),
                # one prompt's tokens (chat template included) and the rate they are read at (a rotation or
                # an option scored is not counted again: per question, as `questions_per_s`)
                "prompt_tokens": round(prompt_tokens, 1),
                "prompt_tokens_per_s": round(len(prompts) * prompt_tokens / dt),
                "peak_gib": _peak_gib(),
            }
        )
    return rows


def trace_step(out: Path, step: int):
    """A callback that runs training step `step` (1-based) under torch.profiler and writes where its time
    went to `out`: the GPU-busy share (kernel time over wall time) and the top operators by GPU and by CPU
    time. Set by MCQFLOW_BENCH_TRACE=folder; the traced step is slower, so a traced run's rates are not
    results."""
    from torch.autograd import DeviceType
    from transformers import TrainerCallback

    class Trace(TrainerCallback):
        prof = None
        t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == step:
                from torch.profiler import ProfilerActivity, profile

                synchronize()
                self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
                self.prof.__enter__()
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.prof is None:
                return
            synchronize()
            wall = time.perf_counter() - self.t0
            self.prof.__exit__(None, None, None)
            events = self.prof.key_averages()
            # the kernels' own rows (an operator's row repeats the time of the kernels it launched)
            busy = sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA) / 1e6
            lines = [f"step {step}: wall {wall:.2f} s, GPU kernels {busy:.2f} s ({busy / wall:.0%} busy)", ""]
            for key in ("self_device_time_total", "self_cpu_time_total"):
                lines += [events.table(sort_by=key, row_limit=30, max_name_column_width=70), ""]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(lines), encoding="utf-8")
            self.prof = None

    return Trace()


def trace_micro_batches(out: Path, step: int, first: int = 2, last: int = 4):
    """A callback that records training step `step`'s micro-batches `first`..`last` (1-based; the first one
    also generates) as a Chrome trace, `out` (gzipped JSON; `bench/timeline_gaps.py` reads it): where the GPU
    waits between kernels and what the host is doing meanwhile. Set by MCQFLOW_BENCH_TIMELINE=folder; a few
    micro-batches only, because a whole step is about a million events. The traced step is slower, so a
    traced run's rates are not results."""
    from transformers import TrainerCallback

    class Timeline(TrainerCallback):
        prof = None
        seen = 0

        def on_step_begin(self, args, state, control, **kwargs):
            self.seen = 0

        def on_substep_end(self, args, state, control, **kwargs):
            self.seen += 1
            if state.global_step + 1 != step:
                return
            if self.seen == first - 1:
                self.prof = _start_chrome_trace()
            elif self.seen == last and self.prof is not None:
                _write_chrome_trace(self.prof, out)
                self.prof = None

    return Timeline()


def _start_chrome_trace():
    """torch.profiler recording host operators, and GPU kernels where there is a GPU; entered."""
    from torch.profiler import ProfilerActivity, profile

    gpu = [ProfilerActivity.CUDA] if torch.cuda.is_available() else []
    prof = profile(activities=[ProfilerActivity.CPU, *gpu])
    prof.__enter__()
    return prof


def _write_chrome_trace(prof, out: Path) -> None:
    """Stop `prof` once the GPU has caught up and write its Chrome trace to `out` (gzipped, for a name ending
    in .gz)."""
    synchronize()
    prof.__exit__(None, None, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(out))


def trace_whole_step(out: Path, step: int):
    """A callback that records training step `step` (1-based) whole as a Chrome trace, `out` (gzipped
    JSON; `bench/timeline_gaps.py` reads it), from the end of the step before: the span `step_timer` times,
    so the next batch's loading and the trainer's own work between steps are in it. For SFT, whose step is
    one micro-batch under `whole_batch`. Set by MCQFLOW_BENCH_TIMELINE=folder; the traced step is slower, so
    a traced run's rates are not results."""
    from transformers import TrainerCallback

    class Timeline(TrainerCallback):
        prof = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step - 1:
                synchronize()
                self.prof = _start_chrome_trace()
            elif state.global_step == step and self.prof is not None:
                _write_chrome_trace(self.prof, out)
                self.prof = None

    return Timeline()


def bench_grpo(model_dir: str, tokenizer, shapes: Shapes, work: Path, variants: list[tuple]):
    """Each variant trains `grpo_steps` GRPO steps. `fixed`: every completion runs to grpo_new_tokens (random
    weights never choose the end token). `ragged`: each completion ends at a length drawn from the reasoning
    range, forced through the end token, the same lengths in the same order for every ragged variant.
    `plain` and `reasoning` (real weights only): the pipeline's two GRPO modes, each completion ending where
    the policy ends it (at most grpo_new_tokens, grpo_reasoning_new_tokens); their rows give the sampled
    completion tokens a step and per second."""
    from mcqflow.train.grpo import GRPOParams, StepSplit, train_grpo
    from mcqflow.train.training import SFTParams, lora_config

    procs = world_size()
    for order, folder, (name, profile, prompts_per_step, micro, shape) in _runs(variants):
        prompts_per_step *= procs  # each process generates and trains what one GPU does alone
        per_step = prompts_per_step * shapes.grpo_num_generations
        records = make_records(tokenizer, prompts_per_step * (shapes.grpo_steps + 1), 160)
        ragged = shape == "ragged"
        mode = shape if shape in REAL_SHAPES else "plain"
        new_tokens = {"ragged": shapes.grpo_ragged_max, "reasoning": shapes.grpo_reasoning_new_tokens}.get(
            shape, shapes.grpo_new_tokens
        )
        end_lengths = None
        if ragged:
            import random

            rng = random.Random(0)

            def end_lengths(n, rng=rng):
                lo, hi = shapes.grpo_ragged_min, shapes.grpo_ragged_max
                return torch.tensor([rng.randint(lo, hi) for _ in range(n)])

        params = GRPOParams(
            init="base",
            mode=mode,
            learning_rate=1e-6,
            max_steps=shapes.grpo_steps,
            prompts_per_step=prompts_per_step,
            num_generations=shapes.grpo_num_generations,
            micro_batch=micro,
            max_completion_length=new_tokens,
            save_steps=10**6,
            logging_steps=10**6,
            shuffle_options=False,
            rewards={"correctness": 1.0, "format": 0.2, "neutrality": 0.1},
            trainer={"disable_tqdm": True},
        )
        timer = step_timer()
        split = StepSplit()
        _reset_memory()
        trace = os.environ.get("MCQFLOW_BENCH_TRACE")  # a folder: one measured step under torch.profiler
        traced = [trace_step(Path(trace) / f"grpo-{folder}.txt", shapes.grpo_warmup + 1)] if trace else []
        timeline = os.environ.get("MCQFLOW_BENCH_TIMELINE")  # a folder: a few micro-batches' Chrome trace
        if timeline:
            traced.append(
                trace_micro_batches(Path(timeline) / f"grpo-{folder}.json.gz", shapes.grpo_warmup + 1)
            )
        try:
            with TritonCompiles() as compiles:
                train_grpo(
                    records, model_dir, work / f"grpo-{folder}", work / f"grpo-{folder}.ckpt", params,
                    finetune="lora", lora_config=lora_config(SFTParams(finetune="lora")), profile=profile,
                    callbacks=[timer, *traced], step_split=split, end_lengths=end_lengths,
                )  # fmt: skip
        except torch.OutOfMemoryError:
            yield {
                "bench": "grpo",
                "variant": name,
                "order": order,
                "skipped": f"CUDA out of memory at micro-batch {micro}",
            }
            continue
        cps, step_s = timer.rate(shapes.grpo_warmup, per_step=per_step)
        sampled = split.tokens_per_s(shapes.grpo_warmup)
        yield (
            {
                "bench": "grpo",
                "variant": name,
                "order": order,
                "shape": shape,
                "mode": mode,
                "profile": profile.name,
                "levers": dataclasses.asdict(profile),
                "fp8": use_fp8(profile),
                "fp8_sampling": use_fp8_sampling(profile),  # the lever asked for and the card has FP8
                "processes": procs,
                "completions_per_step": per_step,
                "micro_batch": micro or per_step,
                "new_tokens": new_tokens,
                "completions_per_s": round(cps, 3),
                "step_s": round(step_s, 2),
                "steps_s": timer.durations(),  # every step, warm-up included: a slow first timed step shows
                "split_s": split.mean(shapes.grpo_warmup),
                # sampled completion tokens (end token included): a step's, per completion, and per second
                **(
                    {
                        "completion_tokens_per_step": round(sampled[0], 1),
                        "mean_completion_tokens": round(sampled[0] / per_step, 1),
                        "completion_tokens_per_s": round(sampled[1], 1),
                    }
                    if sampled
                    else {}
                ),
                **_peaks(),
                "distributed": _distributed(),
                **compiles.since(timer.timed_from(shapes.grpo_warmup)),
            }
        )


# --------------------------------------------------------------------------------------------- run


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "liger-kernel"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _flipped(ours: Profile, lever: str) -> Profile:
    """`ours` with one boolean lever the other way, named for it: fast-fused-lora, fast-no-liger-sampling."""
    on = getattr(ours, lever)
    label = ("no-" if on else "") + lever.replace("_", "-")
    return dataclasses.replace(ours, name=f"{ours.name}-{label}", **{lever: not on})


def known_sft_variants(ours: Profile) -> dict[str, tuple]:
    """SFT variants by name: (profile, quantization, extra SFTConfig fields, shape). The `-micro16`, `-cast`
    and `-padded` variants take one lever out of `ours` each, to show what it is worth; `-ragged` ones run
    the reasoning-length shape."""
    vanilla = PROFILES["vanilla"]
    no_liger = dataclasses.replace(ours, name=f"{ours.name}-no-liger", liger=False)
    padded = dataclasses.replace(ours, name=f"{ours.name}-padded", padding_free=False)
    fused, fp8 = _flipped(ours, "fused_lora"), _flipped(ours, "fp8_base")
    dropout, ahead = _flipped(ours, "fused_dropout"), _flipped(ours, "host_runs_ahead")
    swiglu, qkv = _flipped(ours, "fused_swiglu"), _flipped(ours, "fused_qkv")
    return {
        "vanilla-qlora": (vanilla, "nf4", {}, "fixed"),
        "vanilla-bf16": (vanilla, "none", {}, "fixed"),
        "memory-qlora": (PROFILES["memory"], "nf4", {}, "fixed"),
        f"{ours.name}-bf16-padded": (padded, "none", {}, "fixed"),
        f"{ours.name}-bf16": (ours, "none", {}, "fixed"),
        f"{ours.name}-bf16-seed7": (ours, "none", {"seed": 7}, "fixed"),  # dropout masks only: the loss noise
        f"{ours.name}-bf16-micro16": (
            dataclasses.replace(ours, name=f"{ours.name}-micro16", whole_batch=False),
            "none",
            {},
            "fixed",
        ),
        f"{ours.name}-bf16-cast": (
            dataclasses.replace(ours, name=f"{ours.name}-cast", bf16_adapter_inputs=False),
            "none",
            {},
            "fixed",
        ),
        f"{no_liger.name}-bf16": (no_liger, "none", {}, "fixed"),
        f"{ours.name}-bf16-compile": (ours, "none", {"torch_compile": True}, "fixed"),
        f"{no_liger.name}-bf16-compile": (no_liger, "none", {"torch_compile": True}, "fixed"),
        "vanilla-qlora-ragged": (vanilla, "nf4", {}, "ragged"),
        f"{ours.name}-bf16-padded-ragged": (padded, "none", {}, "ragged"),
        f"{ours.name}-bf16-ragged": (ours, "none", {}, "ragged"),
        f"{fused.name}-bf16": (fused, "none", {}, "fixed"),
        f"{fused.name}-bf16-ragged": (fused, "none", {}, "ragged"),
        f"{fp8.name}-bf16": (fp8, "none", {}, "fixed"),
        f"{fp8.name}-bf16-ragged": (fp8, "none", {}, "ragged"),
        f"{dropout.name}-bf16": (dropout, "none", {}, "fixed"),
        f"{dropout.name}-bf16-ragged": (dropout, "none", {}, "ragged"),
        f"{ahead.name}-bf16": (ahead, "none", {}, "fixed"),
        f"{swiglu.name}-bf16": (swiglu, "none", {}, "fixed"),
        f"{swiglu.name}-bf16-ragged": (swiglu, "none", {}, "ragged"),
        f"{qkv.name}-bf16": (qkv, "none", {}, "fixed"),
        f"{qkv.name}-bf16-ragged": (qkv, "none", {}, "ragged"),
    }


SFT_DEFAULT = ["vanilla-qlora", "{p}-bf16-padded", "{p}-bf16", "{p}-bf16-padded-ragged", "{p}-bf16-ragged"]


GRPO_DEFAULT = ["vanilla", "{p}-hf-generate", "{p}", "{p}-micro16", "{p}-hf-generate-ragged", "{p}-ragged"]

# Real weights (`--weights`): no NF4 base (the small real model is trained in bf16, as the pipeline's
# experiments do), and GRPO in the pipeline's two modes with the policy's own end tokens.
SFT_REAL = ["vanilla-bf16", "{p}-bf16-padded", "{p}-bf16", "{p}-bf16-padded-ragged", "{p}-bf16-ragged"]
GRPO_REAL = [
    "vanilla-plain", "{p}-hf-generate-plain", "{p}-plain",
    "vanilla-reasoning", "{p}-hf-generate-reasoning", "{p}-reasoning",
]  # fmt: skip


def known_grpo_variants(ours: Profile, shapes: Shapes) -> dict[str, tuple]:
    """GRPO variants by name: (profile, prompts per step, micro-batch, shape). `-hf-generate` samples with
    HF `generate` from the merged copy (round 1's `fast`), `-micro16` trains 16 completions at a time."""
    hf = dataclasses.replace(ours, name=f"{ours.name}-hf-generate", graph_decode=False)
    kernels, fused = _flipped(ours, "liger_sampling"), _flipped(ours, "fused_lora")
    fp8, compact = _flipped(ours, "fp8_base"), _flipped(ours, "compact_decode")
    lengths, packed = _flipped(ours, "length_batches"), _flipped(ours, "packed_grpo")
    ahead, liger = _flipped(ours, "host_runs_ahead"), _flipped(ours, "liger_training")
    packed_ahead, packed_liger = _flipped(packed, "host_runs_ahead"), _flipped(packed, "liger_training")
    fp8_sampling, windows = _flipped(ours, "fp8_sampling"), _flipped(ours, "decode_windows")
    dropout, tensor_scaled = _flipped(ours, "fused_dropout"), _flipped(ours, "fp8_tensor_sampling")
    swiglu, once = _flipped(ours, "fused_swiglu"), _flipped(ours, "prefill_once")
    shared, qkv = _flipped(ours, "shared_prompts"), _flipped(ours, "fused_qkv")
    big, micro = shapes.grpo_prompts, shapes.grpo_micro_batch
    return {
        "vanilla": (PROFILES["vanilla"], shapes.grpo_vanilla_prompts, micro, "fixed"),
        f"{ours.name}-same-batch": (ours, shapes.grpo_vanilla_prompts, micro, "fixed"),
        f"{hf.name}": (hf, big, micro, "fixed"),
        ours.name: (ours, big, micro, "fixed"),
        f"{ours.name}-micro16": (ours, big, 2 * micro, "fixed"),
        kernels.name: (kernels, big, micro, "fixed"),
        f"{kernels.name}-micro16": (kernels, big, 2 * micro, "fixed"),
        f"{kernels.name}-ragged": (kernels, big, shapes.grpo_ragged_micro_batch, "ragged"),
        fused.name: (fused, big, micro, "fixed"),
        fp8.name: (fp8, big, micro, "fixed"),
        f"{fp8.name}-micro16": (fp8, big, 2 * micro, "fixed"),
        f"{fp8.name}-ragged": (fp8, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{hf.name}-ragged": (hf, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{ours.name}-ragged": (ours, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{compact.name}-ragged": (compact, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{lengths.name}-ragged": (lengths, big, shapes.grpo_ragged_micro_batch, "ragged"),
        packed.name: (packed, big, micro, "fixed"),
        f"{packed.name}-ragged": (packed, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{ahead.name}-ragged": (ahead, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{packed_ahead.name}-ragged": (packed_ahead, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{liger.name}-ragged": (liger, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{packed_liger.name}-ragged": (packed_liger, big, shapes.grpo_ragged_micro_batch, "ragged"),
        fp8_sampling.name: (fp8_sampling, big, micro, "fixed"),
        f"{fp8_sampling.name}-ragged": (fp8_sampling, big, shapes.grpo_ragged_micro_batch, "ragged"),
        windows.name: (windows, big, micro, "fixed"),
        f"{windows.name}-ragged": (windows, big, shapes.grpo_ragged_micro_batch, "ragged"),
        dropout.name: (dropout, big, micro, "fixed"),
        f"{dropout.name}-ragged": (dropout, big, shapes.grpo_ragged_micro_batch, "ragged"),
        tensor_scaled.name: (tensor_scaled, big, micro, "fixed"),
        f"{tensor_scaled.name}-ragged": (tensor_scaled, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{swiglu.name}-ragged": (swiglu, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{once.name}-ragged": (once, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{shared.name}-ragged": (shared, big, shapes.grpo_ragged_micro_batch, "ragged"),
        f"{shared.name}-plain": (shared, big, micro, "plain"),
        f"{qkv.name}-ragged": (qkv, big, shapes.grpo_ragged_micro_batch, "ragged"),
        # real weights only: the policy ends its completions (plain: a letter; reasoning: a chain)
        "vanilla-plain": (PROFILES["vanilla"], shapes.grpo_vanilla_prompts, micro, "plain"),
        f"{hf.name}-plain": (hf, big, micro, "plain"),
        f"{ours.name}-plain": (ours, big, micro, "plain"),
        "vanilla-reasoning": (PROFILES["vanilla"], shapes.grpo_vanilla_prompts, micro, "reasoning"),
        f"{hf.name}-reasoning": (hf, big, shapes.grpo_ragged_micro_batch, "reasoning"),
        f"{ours.name}-reasoning": (ours, big, shapes.grpo_ragged_micro_batch, "reasoning"),
        f"{compact.name}-reasoning": (compact, big, shapes.grpo_ragged_micro_batch, "reasoning"),
        f"{lengths.name}-reasoning": (lengths, big, shapes.grpo_ragged_micro_batch, "reasoning"),
        f"{packed.name}-reasoning": (packed, big, shapes.grpo_ragged_micro_batch, "reasoning"),
    }


def _pick(known: dict, names: list[str] | None, default: list[str], what: str) -> list[tuple]:
    names = names or default
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown {what} variant(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [(n, *known[n]) for n in names]


def _continue(path: str | Path, res: BenchResult) -> list[dict]:
    """The rows of an earlier results file that this run continues (same architecture, device, processes)."""
    old = _results_file(path, "--continue-from", ("rows", "started", "arch", "device"))
    rows, started = old["rows"], old["started"]
    same = (old["arch"], old["device"], old.get("processes", 1))
    if same != (res.arch, res.device, res.processes):
        raise UserError(
            f"bench: --continue-from {path} ran {same[0]} on {same[1]} x {same[2]}; this run is "
            f"{res.arch} on {res.device} x {res.processes}"
        )
    res.started = started  # one run: its results file keeps the first part's name
    res.seconds = float(old.get("seconds", 0.0))
    return [r for r in rows if "skipped" not in r]  # a variant that was skipped (out of memory) runs again


def _read_rows(path: str | Path) -> list[dict]:
    return _results_file(path, "--baseline", ("rows",))["rows"]


def _results_file(path: str | Path, option: str, keys: tuple[str, ...]) -> dict:
    """A results file of mcqflow bench named by `option`, with `keys`, or one line saying what it is not."""
    try:
        res = json.loads(Path(path).read_text(encoding="utf-8"))
        missing = [k for k in keys if k not in res]
        if missing:
            raise KeyError(", ".join(missing))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"bench: {option} {path}: not a results file of mcqflow bench ({e})") from None
    return res


def ensure_weights(arch: str, work: str | Path, log=print, weights: str | None = None) -> str:
    """The model the bench runs: `weights` (real ones: `embedded`, converted once, or a model folder), else
    the random-init model of `arch` under `work` (built once; reused by later runs on that folder)."""
    if weights:
        from mcqflow.modeling import embedded

        if embedded.is_embedded(weights):
            return embedded.ensure()
        if not (Path(weights) / "config.json").is_file():
            raise UserError(f"--weights {weights}: not a model folder (no config.json) and not `embedded`")
        return str(weights)
    model_dir = Path(work) / f"random-{arch}"
    if not (model_dir / "config.json").exists():
        if arch == "tiny":
            from mcqflow.modeling.models import build_tiny

            build_tiny(corpus(), model_dir, hidden_size=64, intermediate_size=128)
        else:
            build_random(arch, train_tokenizer(corpus(), 3000), model_dir)
            _reset_memory()  # built on the GPU: hand the memory back (under --processes, to rank 0's card)
        log(f"bench: random-init {arch} in {model_dir}")
    return str(model_dir)


def label(arch: str, weights: str | None) -> str:
    """What a results file is named for: the architecture, or the real weights (`embedded`, a folder's name)."""
    return (Path(weights).name or "weights") if weights else arch


def run(
    arch: str,
    out_dir: str | Path,
    work: str | Path,
    only: tuple[str, ...] = ("sft", "predict", "grpo"),
    shapes: Shapes | None = None,
    profile: str = "fast",
    log=print,
    sft_variants: list[str] | None = None,
    grpo_variants: list[str] | None = None,
    baseline: str | Path | None = None,
    previous: str | Path | None = None,
    weights: str | None = None,
) -> BenchResult:
    """Build random weights of `arch` under `work`, run the benches, write JSON and markdown to `out_dir`.

    Under `accelerate launch` (N processes, `mcqflow bench --processes N`) every process runs the same
    benches with N times the global batch, and rank 0 alone writes; `baseline`, a single-process results
    file, gives the scaling figure of each SFT variant both runs have. `previous`, a results file of the same
    architecture, device and process count, is continued: its rows are kept and its variants not run again
    (but for those it skipped). `weights` runs real weights instead (`embedded` or a model folder): the
    defaults are then the bf16 SFT variants and GRPO in the pipeline's plain and reasoning modes, whose
    completions end where the policy ends them."""
    shapes = shapes or Shapes()
    work = Path(work)
    ours = PROFILES[profile]
    config = os.environ.get("MCQFLOW_ACCELERATE_CONFIG") if world_size() > 1 else None
    main = is_main_process()
    log = log if main else (lambda _: None)
    res = BenchResult(
        label(arch, weights), device_name(), _versions(), dataclasses.asdict(shapes), processes=world_size(),
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        baseline=str(baseline) if baseline else None, config=config,
        distributed=_distributed() if world_size() > 1 else "NO", weights=weights,
    )  # fmt: skip
    base_rows = _read_rows(baseline) if baseline else []
    if previous:
        res.rows = _continue(previous, res)
    done = {(r["bench"], r["variant"]) for r in res.rows}
    prior = res.seconds
    default = [v.format(p=ours.name) for v in (SFT_REAL if weights else SFT_DEFAULT)]
    sft_list = _pick(known_sft_variants(ours), sft_variants, default, "sft") if "sft" in only else []
    known = known_grpo_variants(ours, shapes)
    default = [v.format(p=ours.name) for v in (GRPO_REAL if weights else GRPO_DEFAULT)]
    grpo_list = _pick(known, grpo_variants, default, "grpo") if "grpo" in only else []
    real = [v[0] for v in grpo_list if v[-1] in REAL_SHAPES]
    if real and not weights:
        raise UserError(
            f"grpo variant(s) {', '.join(real)}: random weights never end a completion; give --weights "
            f"(embedded or a model folder)"
        )
    sft_list = [v for v in sft_list if ("sft", v[0]) not in done]
    grpo_list = [v for v in grpo_list if ("grpo", v[0]) not in done]
    t0 = time.perf_counter()
    model_dir = ensure_weights(arch, work, log, weights)
    from mcqflow.modeling.models import load_tokenizer

    tokenizer = load_tokenizer(model_dir)

    def save():
        if not main:
            return
        res.seconds = round(prior + time.perf_counter() - t0, 1)
        res.checks = (
            check_targets(res.rows, base_rows, res.device) if arch == "qwen2.5-7b" and not weights else []
        )
        res.scaling = scaling(res.rows, base_rows)
        write(res, out_dir)

    def record(row):
        res.rows.append(row)
        log(f"bench: {row}")
        save()

    for row in bench_sft(model_dir, tokenizer, shapes, work, sft_list):
        record(row)
    if "predict" in only and not any(b == "predict" for b, _ in done):
        for row in bench_predict(model_dir, shapes, ours):
            record(row)
    for row in bench_grpo(model_dir, tokenizer, shapes, work, grpo_list):
        record(row)
    save()
    return res


__all__ = [
    "ARCHITECTURES",
    "BenchResult",
    "Shapes",
    "check_targets",
    "make_records",
    "markdown",
    "run",
    "scaling",
    "sft_length",
]
