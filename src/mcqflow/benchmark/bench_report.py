"""`mcqflow bench`'s results: the targets of the GPU-speed issues, checked; multi-GPU scaling; the
markdown page and the JSON file a run leaves in experiments/bench/."""

from __future__ import annotations

import collections
import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

# Targets from the GPU-speed issues (one H100, Qwen2.5-7B architecture): round 1's ratios to vanilla, round
# 2's rates and its ratios to round 1's `fast` (the `-padded` and `-hf-generate` variants) on ragged shapes.
TARGETS = {
    "sft": {"tokens_per_s": 20000, "ratio": 2.4, "ragged_ratio": 1.5},
    "predict": {"questions_per_s": 200},
    "grpo": {"completions_per_s": 20, "ratio": 10, "ragged_ratio": 2.0},
    "scaling": {"per_2_gpus": 1.8},  # the multi-GPU issue: DDP SFT tokens/s on 2 GPUs over 1
}
# Round 3 (issue 33), on an H200: SFT 32 x 256 and ragged GRPO rates; on any card, padding-free ragged SFT
# within 5% of the same profile's rate on the fixed shape (tokens/s of real tokens against tokens/s).
TARGETS_H200 = {"sft_tokens_per_s": 25000, "grpo_ragged_completions_per_s": 16}
RAGGED_SFT_OF_FIXED = 0.95


@dataclass
class BenchResult:
    arch: str
    device: str
    versions: dict
    shapes: dict
    processes: int = 1
    rows: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0
    baseline: str | None = None  # the results file of fewer processes that scaling compares with
    distributed: str = "NO"  # what accelerate ran the processes as (MULTI_GPU is DDP; FSDP; ...)
    config: str | None = None  # the accelerate config under --processes
    scaling: list[dict] = field(default_factory=list)
    weights: str | None = None  # real weights (`embedded` or a model folder); None: random-init `arch`


def padded_twin(variant: str) -> str:
    """The SFT variant that differs from `variant` by padded batches alone (fast-bf16-ragged ->
    fast-bf16-padded-ragged)."""
    return variant.replace("-bf16", "-bf16-padded", 1)


def _get(rows, bench, variant, key):
    for r in rows:
        if r["bench"] == bench and r["variant"] == variant and key in r:
            return r[key]
    return None


def _collapsed(rows: list[dict]) -> list[dict]:
    """The rows that ran, one a (bench, variant, processes): a variant run more than once (A, B, B, A) counts
    by the mean of its runs' rates, neither its best run nor its first."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "skipped" not in r:
            groups.setdefault((r["bench"], r["variant"], r.get("processes", 1)), []).append(r)
    out = []
    for runs in groups.values():
        row, key = dict(runs[0]), _UNIT[runs[0]["bench"]]
        if len(runs) > 1 and all(key in r for r in runs):
            row[key] = statistics.mean(r[key] for r in runs)
        out.append(row)
    return out


def check_targets(rows: list[dict], base_rows: list[dict] | None = None, device: str = "") -> list[dict]:
    """Each target of the GPU-speed issues, measured value against the goal (7B architecture only); the
    third round's rates where `device` is an H200, the card they were set for; with `base_rows` (a
    single-process run), the multi-GPU issue's SFT scaling of every variant both have. A variant run more
    than once counts by its runs' mean."""
    checks = []
    rows = _collapsed(rows)
    base_rows = _collapsed(base_rows or [])
    scaled = [r for r in rows if r.get("processes", 1) > 1]
    rows = [r for r in rows if r.get("processes", 1) == 1]  # the speed targets are for one GPU

    def add(what, value, goal):
        if value is not None:
            checks.append({"target": what, "value": round(value, 2), "goal": goal, "met": value >= goal})

    fixed = [r for r in rows if r.get("shape", "fixed") == "fixed"]
    sft_fast = max(
        (r.get("tokens_per_s", 0) for r in fixed if r["bench"] == "sft" and r.get("profile") != "vanilla"),
        default=None,
    )
    sft_vanilla = _get(rows, "sft", "vanilla-qlora", "tokens_per_s")
    add("sft tokens/s", sft_fast, TARGETS["sft"]["tokens_per_s"])
    if sft_fast and sft_vanilla:
        add("sft ratio to vanilla QLoRA", sft_fast / sft_vanilla, TARGETS["sft"]["ratio"])
    # Each padding-free ragged run against the same run with padded batches, and against the same variant
    # on the fixed shape
    for r in rows:
        if r["bench"] != "sft" or r.get("shape") != "ragged" or not r.get("padding_free"):
            continue
        before = _get(rows, "sft", padded_twin(r["variant"]), "tokens_per_s")
        if before:
            add(f"sft ragged: {r['variant']} over padded batches", r["tokens_per_s"] / before,
                TARGETS["sft"]["ragged_ratio"])  # fmt: skip
        fixed_rate = _get(fixed, "sft", r["variant"].removesuffix("-ragged"), "tokens_per_s")
        if fixed_rate:
            add(f"sft ragged: {r['variant']} of the fixed shape's rate", r["tokens_per_s"] / fixed_rate,
                RAGGED_SFT_OF_FIXED)  # fmt: skip
    letter = max(
        (r["questions_per_s"] for r in rows if r["bench"] == "predict" and "letter" in r["variant"]),
        default=None,
    )
    add("predict letter questions/s", letter, TARGETS["predict"]["questions_per_s"])
    grpo = max(
        (r["completions_per_s"] for r in fixed if r["bench"] == "grpo" and r["profile"] != "vanilla"),
        default=None,
    )
    grpo_vanilla = _get(rows, "grpo", "vanilla", "completions_per_s")
    add("grpo completions/s", grpo, TARGETS["grpo"]["completions_per_s"])
    if grpo and grpo_vanilla:
        add("grpo ratio to vanilla TRL", grpo / grpo_vanilla, TARGETS["grpo"]["ratio"])
    for r in rows:  # graph decoding on the ragged shape against HF generate from the merged copy
        if r["bench"] != "grpo" or r.get("shape") != "ragged" or "hf-generate" in r["variant"]:
            continue
        before = _get(
            rows, "grpo", r["variant"].replace("-ragged", "-hf-generate-ragged"), "completions_per_s"
        )
        if before:
            add(
                f"grpo ragged: {r['variant']} over HF generate",
                r["completions_per_s"] / before,
                TARGETS["grpo"]["ragged_ratio"],
            )
    if "H200" in device:  # today's `fast` itself, not a lever's variant
        fast = [r for r in rows if r.get("profile") == "fast"]
        sft = max((r["tokens_per_s"] for r in fast if r["bench"] == "sft" and r in fixed), default=None)
        grpo_ragged = max(
            (r["completions_per_s"] for r in fast if r["bench"] == "grpo" and r.get("shape") == "ragged"),
            default=None,
        )
        add("sft tokens/s on an H200", sft, TARGETS_H200["sft_tokens_per_s"])
        add(
            "grpo ragged completions/s on an H200", grpo_ragged, TARGETS_H200["grpo_ragged_completions_per_s"]
        )
    for r in scaled:
        one = _get(base_rows or [], "sft", r["variant"], "tokens_per_s")
        if r["bench"] == "sft" and one and "tokens_per_s" in r:
            goal = TARGETS["scaling"]["per_2_gpus"] * r["processes"] / 2
            add(f"sft {r['variant']} on {r['processes']} GPUs over 1", r["tokens_per_s"] / one, goal)
    return checks


def scaling(rows: list[dict], base_rows: list[dict]) -> list[dict]:
    """SFT tokens/s of each variant against the same variant in a run of fewer processes (the same
    per-GPU batch, so ideal scaling is the ratio of the process counts)."""
    out = []
    for r in rows:
        if r["bench"] != "sft" or "tokens_per_s" not in r:
            continue
        base = next(
            (
                b
                for b in base_rows
                if b["bench"] == "sft" and b["variant"] == r["variant"] and "tokens_per_s" in b
            ),
            None,
        )
        if base is None or base.get("processes", 1) >= r.get("processes", 1):
            continue
        ideal = r["processes"] / base.get("processes", 1)
        speedup = r["tokens_per_s"] / base["tokens_per_s"]
        out.append(
            {
                "variant": r["variant"],
                "processes": r["processes"],
                "base_processes": base.get("processes", 1),
                "tokens_per_s": r["tokens_per_s"],
                "base_tokens_per_s": base["tokens_per_s"],
                "speedup": round(speedup, 3),
                "ideal": ideal,
                "efficiency": round(speedup / ideal, 3),
            }
        )
    return out


def markdown(res: BenchResult) -> str:
    lines = [
        f"# mcqflow bench: {res.arch}{' (real weights)' if res.weights else ''} on {res.device}"
        + (
            f" x {res.processes} processes ({_KIND.get(res.distributed, res.distributed)})"
            if res.processes > 1
            else ""
        ),
        "",
        f"Started {res.started}, {res.seconds:.0f} s. Versions: "
        + ", ".join(f"{k} {v}" for k, v in res.versions.items() if v)
        + (f". Accelerate config: {res.config}" if res.config else "")
        + (f". Scaling against the run {Path(res.baseline).name}." if res.baseline else ""),
        "",
        "| bench | variant | batch | rate | step | peak GiB | vs vanilla | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    means = _collapsed(res.rows)  # vanilla run more than once: each row against its runs' mean
    for r in res.rows:
        if "skipped" in r:
            lines.append(f"| {r['bench']} | {r['variant']} | | skipped: {r['skipped']} | | | | |")
            continue
        key = _UNIT[r["bench"]]
        ref = _get(means, r["bench"], _vanilla_of(res.rows, r), key)
        ratio = f"{r[key] / ref:.2f}x" if ref and r.get("shape", "fixed") in ("fixed", *REAL_SHAPES) else ""
        step = f"{r['step_s']} s" if "step_s" in r else ""
        use = f"{r['mfu']:.0%}" if r.get("mfu") else ""
        lines.append(
            f"| {r['bench']} | {r['variant']} | {_batch(r)} | {r[key]:,} {key.replace('_per_s', '/s')} | {step} "
            f"| {_peak(r)} | {ratio} | {use} |"
        )
    compiled = [r for r in res.rows if r.get("triton_compiles_timed")]
    if compiled:
        lines += [
            "",
            "Triton compiled kernels inside the timed steps of "
            + ", ".join(
                f"{r['bench']} {r['variant']} (place {r.get('order', '?')}: {r['triton_compiles_timed']}, "
                f"{r['triton_compile_s_timed']} s)"
                for r in compiled
            )
            + ": a compilation the process keeps for every later variant, so those rates carry a cost the "
            "variants after them do not.",
        ]
    repeated = repeats(res.rows)
    if repeated:
        lines += [
            "",
            "Variants run more than once, each run by its place in its bench's list (a variant run after another "
            "in the same process can be the faster for that alone):",
            "",
            "| bench | variant | each run (place: rate) | mean |",
            "| --- | --- | --- | --- |",
            *(
                f"| {bench} | {variant} | "
                + ", ".join(f"{place}: {rate:,}" for place, rate in runs)
                + f" | {statistics.mean(rate for _, rate in runs):,.{_DIGITS[bench]}f} |"
                for (bench, variant), runs in repeated.items()
            ),
        ]
    prompts = [r for r in res.rows if r["bench"] == "predict" and "prompt_tokens" in r]
    if prompts:
        lines += [
            "",
            f"Predict prompts are {prompts[0]['prompt_tokens']:g} tokens each (chat template included); read at:",
            "",
            "| predict variant | questions/s | prompt tokens/s |",
            "| --- | --- | --- |",
            *(
                f"| {r['variant']} | {r['questions_per_s']:,} | {r['prompt_tokens_per_s']:,} |"
                for r in prompts
            ),
        ]
    sampled = [r for r in res.rows if "completion_tokens_per_s" in r]
    if sampled:
        lines += [
            "",
            "| grpo variant | mode | completions/s | sampled tokens a completion | completion tokens/s |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {r['variant']} | {r.get('mode', 'plain')} | {r['completions_per_s']:,} | "
                f"{r['mean_completion_tokens']:g} | {r['completion_tokens_per_s']:,} |"
                for r in sampled
            ),
        ]
    if any(r.get("mfu") for r in res.rows):
        lines += [
            "",
            "MFU: 4N FLOP a token (LoRA: forward 2N, activation gradients 2N), N = every weight but the "
            "input embedding, attention FLOPs left out, against the 989 TFLOP/s dense bf16 peak.",
        ]
    split = [r for r in res.rows if r.get("split_s")]
    if split:
        parts = ("generation", "merge", "scoring", "forward_backward", "other", "total")
        lines += ["", "| grpo variant | " + " | ".join(p.replace("_", "+") for p in parts) + " |"]
        lines += ["| --- |" + " --- |" * len(parts)]
        lines += [
            f"| {r['variant']} | " + " | ".join(f"{r['split_s'].get(p, 0):.2f} s" for p in parts) + " |"
            for r in split
        ]
        # a variant run more than once (A, B, B, A): each phase's mean, and its lowest to highest run, since
        # a lever is read from the phase it changes (generation replays graphs; training waits on the host)
        for variant in (v for b, v in repeated if b == "grpo"):
            each = [r["split_s"] for r in split if r["variant"] == variant]
            if len(each) < 2:  # runs without a split (older files) give none
                continue
            lines.append(
                f"| {variant}, mean of {len(each)} (lowest–highest) | "
                + " | ".join(
                    f"{statistics.mean(s.get(p, 0) for s in each):.2f} s "
                    f"({min(s.get(p, 0) for s in each):.2f}–{max(s.get(p, 0) for s in each):.2f})"
                    for p in parts
                )
                + " |"
            )
    if res.scaling:
        lines += ["", "| sft variant | GPUs | tokens/s | against | speedup | ideal | efficiency |"]
        lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [
            f"| {c['variant']} | {c['processes']} | {c['tokens_per_s']:,} | {c['base_tokens_per_s']:,} on "
            f"{c['base_processes']} | {c['speedup']:.2f}x | {c['ideal']:.0f}x | {c['efficiency']:.0%} |"
            for c in res.scaling
        ]
    if res.checks:
        lines += ["", "| target | measured | goal | met |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {c['target']} | {c['value']:,} | {c['goal']:,} | {'yes' if c['met'] else 'NO'} |"
            for c in res.checks
        ]
    return "\n".join(lines) + "\n"


REAL_SHAPES = ("plain", "reasoning")  # GRPO shapes whose completions the (real) policy ends
_UNIT = {"sft": "tokens_per_s", "predict": "questions_per_s", "grpo": "completions_per_s"}
_DIGITS = {"sft": 1, "predict": 2, "grpo": 3}  # as the rows round their rates


def repeats(rows: list[dict]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(bench, variant) -> [(place in its bench's list, rate), ...] for each variant that ran more than once
    (rows without `order`, from older files, by their place among the bench's rows)."""
    runs: dict[tuple[str, str], list[tuple[int, float]]] = {}
    places: collections.Counter = collections.Counter()
    for r in rows:
        places[r["bench"]] += 1
        if "skipped" not in r:
            runs.setdefault((r["bench"], r["variant"]), []).append(
                (r.get("order", places[r["bench"]]), r[_UNIT[r["bench"]]])
            )
    return {k: v for k, v in runs.items() if len(v) > 1}


def _vanilla_of(rows: list[dict], r: dict) -> str:
    """The vanilla row a row is compared with: QLoRA SFT (bf16 where no QLoRA row ran, as on real weights),
    HF forward for predict, TRL's GRPO at the same shape (a real-weights mode: its vanilla twin)."""
    if r["bench"] == "sft":
        return "vanilla-qlora" if _get(rows, "sft", "vanilla-qlora", "tokens_per_s") else "vanilla-bf16"
    if r["bench"] == "grpo" and r.get("shape") in REAL_SHAPES:
        return f"vanilla-{r['shape']}"
    return {"predict": "vanilla-forward", "grpo": "vanilla"}[r["bench"]]


def _peak(r: dict) -> str:
    per = r.get("peak_gib_per_gpu")
    if per and len(per) > 1:
        return f"{r['peak_gib']} (per GPU {' / '.join(str(x) for x in per)})"
    return str(r.get("peak_gib") or "")


_KIND = {"MULTI_GPU": "DDP", "MULTI_CPU": "DDP over gloo", "FSDP": "FSDP", "DEEPSPEED": "DeepSpeed"}


def _batch(r: dict) -> str:
    """What one step holds: micro-batch x accumulation (SFT), completions / micro-batch (GRPO), per GPU."""
    procs = f" x {r['processes']} GPUs" if r.get("processes", 1) > 1 else ""
    if r["bench"] == "sft" and "grad_accum" in r:
        return f"{r['micro_batch']} x {r['grad_accum']}{procs}"
    if r["bench"] == "grpo":
        return f"{r['completions_per_step'] // r.get('processes', 1)} / {r['micro_batch']}{procs}"
    return str(r.get("batch", r.get("micro_batch", "")))


def write(res: BenchResult, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in res.device.lower()).strip("-")
    when = res.started[:16].replace("T", "-").replace(":", "")  # 2026-11-25-1752: a day's runs apart
    kind = "" if res.distributed in ("NO", "MULTI_GPU", "MULTI_CPU") else f"-{res.distributed.lower()}"
    stem = f"{when}-{res.arch}-{slug}" + (f"-x{res.processes}{kind}" if res.processes > 1 else "")
    (out / f"{stem}.json").write_text(json.dumps(dataclasses.asdict(res), indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown(res), encoding="utf-8")
    return out / stem
